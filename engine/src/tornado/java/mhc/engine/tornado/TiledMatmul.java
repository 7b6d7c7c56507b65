package mhc.engine.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.WorkerGrid2D;

/**
 * The three products of {@code mhc.kernels.Matmul} in the device form: each work-group of
 * {@link #TILE} x {@link #TILE} work-items computes one output tile, staging tiles of both
 * operands in local memory so that every element read from global memory serves {@link #TILE}
 * multiply-adds instead of one. Same layouts and the same summation order as the plain kernels
 * (each output sums its products in increasing index order), so the results differ from them
 * only where the device contracts multiply-adds. Odd shapes are padded to whole tiles; the
 * padding loads zeros and writes nothing.
 *
 * <p>These need an explicit grid ({@link #grid}): the global size rounded up to whole tiles,
 * and a local size of one tile.
 */
public final class TiledMatmul {
    private TiledMatmul() {
    }

    /** Tile edge: 16 x 16 = 256 work-items per group, which every OpenCL and CUDA device allows. */
    public static final int TILE = 16;

    /** The grid for an output of {@code rows x cols}: whole tiles, one tile per work-group. */
    public static WorkerGrid grid(int rows, int cols) {
        WorkerGrid g = new WorkerGrid2D(roundUp(cols), roundUp(rows));
        g.setLocalWork(TILE, TILE, 1);
        return g;
    }

    private static int roundUp(int x) {
        return (x + TILE - 1) / TILE * TILE;
    }

    /** {@code out[r][o] = sum_i inp[r][i] w[i][o]}; x: o, y: r. */
    public static void matmulForward(KernelContext ctx, float[] out, float[] inp, float[] w, int wOff, int N, int IN, int OUT) {
        int lx = ctx.localIdx, ly = ctx.localIdy;
        int o = ctx.groupIdx * TILE + lx, r = ctx.groupIdy * TILE + ly;
        float[] a = ctx.allocateFloatLocalArray(TILE * TILE); // inp[r][t + k] at [ly][k]
        float[] b = ctx.allocateFloatLocalArray(TILE * TILE); // w[t + k][o] at [k][lx]
        float s = 0f;
        for (int t = 0; t < IN; t += TILE) {
            int ia = t + lx, ib = t + ly;
            a[ly * TILE + lx] = r < N && ia < IN ? inp[r * IN + ia] : 0f;
            b[ly * TILE + lx] = ib < IN && o < OUT ? w[wOff + ib * OUT + o] : 0f;
            ctx.localBarrier();
            for (int k = 0; k < TILE; k++) {
                s += a[ly * TILE + k] * b[k * TILE + lx];
            }
            ctx.localBarrier();
        }
        if (r < N && o < OUT) {
            out[r * OUT + o] = s;
        }
    }

    /** {@code dinp[r][i] += sum_o dout[r][o] w[i][o]}; x: i, y: r. */
    public static void matmulBackwardInput(KernelContext ctx, float[] dinp, float[] dout, float[] w, int wOff, int N, int IN, int OUT) {
        int lx = ctx.localIdx, ly = ctx.localIdy;
        int i0 = ctx.groupIdx * TILE;
        int i = i0 + lx, r = ctx.groupIdy * TILE + ly;
        float[] a = ctx.allocateFloatLocalArray(TILE * TILE); // dout[r][t + k] at [ly][k]
        float[] b = ctx.allocateFloatLocalArray(TILE * TILE); // w[i0 + j][t + k] at [j][k]
        float s = 0f;
        for (int t = 0; t < OUT; t += TILE) {
            int oc = t + lx, ib = i0 + ly;
            a[ly * TILE + lx] = r < N && oc < OUT ? dout[r * OUT + oc] : 0f;
            b[ly * TILE + lx] = ib < IN && oc < OUT ? w[wOff + ib * OUT + oc] : 0f;
            ctx.localBarrier();
            for (int k = 0; k < TILE; k++) {
                s += a[ly * TILE + k] * b[lx * TILE + k];
            }
            ctx.localBarrier();
        }
        if (r < N && i < IN) {
            dinp[r * IN + i] += s;
        }
    }

    /** {@code dw[i][o] += sum_r inp[r][i] dout[r][o]}; x: o, y: i. */
    public static void matmulBackwardWeight(KernelContext ctx, float[] dw, float[] inp, float[] dout, int wOff, int N, int IN, int OUT) {
        int lx = ctx.localIdx, ly = ctx.localIdy;
        int i0 = ctx.groupIdy * TILE;
        int o = ctx.groupIdx * TILE + lx, i = i0 + ly;
        float[] a = ctx.allocateFloatLocalArray(TILE * TILE); // inp[t + k][i0 + j] at [k][j]
        float[] b = ctx.allocateFloatLocalArray(TILE * TILE); // dout[t + k][o] at [k][lx]
        float s = 0f;
        for (int t = 0; t < N; t += TILE) {
            int ra = t + ly, ic = i0 + lx;
            a[ly * TILE + lx] = ra < N && ic < IN ? inp[ra * IN + ic] : 0f;
            b[ly * TILE + lx] = ra < N && o < OUT ? dout[ra * OUT + o] : 0f;
            ctx.localBarrier();
            for (int k = 0; k < TILE; k++) {
                s += a[k * TILE + ly] * b[k * TILE + lx];
            }
            ctx.localBarrier();
        }
        if (i < IN && o < OUT) {
            dw[wOff + i * OUT + o] += s;
        }
    }
}
