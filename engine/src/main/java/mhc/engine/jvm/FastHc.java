package mhc.engine.jvm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import mhc.kernels.HcFused;
import mhc.kernels.RmsNorm;

/**
 * The HC connection on the Vector API: {@link HcFused}'s kernels vectorized along C. The
 * forward's per-stream dot products (the sum of squares for the RMS, and the products with
 * w_pre, w_post and each column of w_res) and the aggregate; the backward's per-token pass
 * (dxbar built in one C-long row, its dot product with x, the update of dx) and the weight
 * gradients (one axpy per stream and weight row). Like the fused kernels it keeps no xbar and
 * recomputes {@code x * xrstd} where needed. tanh stays {@code Math.tanh} in double, as in the
 * plain kernel.
 */
final class FastHc {
    private static final VectorSpecies<Float> SP = VectorMath.SP;
    private static final int VL = VectorMath.VL;

    private FastHc() {
    }

    static void preForward(float[] u, float[] hpre, float[] hpost, float[] hres, float[] xrstd, float[] tpre,
                           float[] tpost, float[] tres, float[] x, float[] wPre, float[] wPost, float[] wResT,
                           float[] pre, float[] post, float[] res, float[] scale, float[] tmp, int N, int n, int C) {
        for (int r = 0; r < N; r++) {
            for (int j = 0; j < n; j++) {
                int xo = (r * n + j) * C;
                float ss = FastMhc.sumSquares(x, xo, C, tmp, 0);
                float s = (float) (1.0 / Math.sqrt(ss / C + RmsNorm.EPS));
                xrstd[r * n + j] = s;
                float tp = (float) Math.tanh(FastMhc.dot(x, xo, wPre, 0, C, tmp, 0) * s);
                float tq = (float) Math.tanh(FastMhc.dot(x, xo, wPost, 0, C, tmp, 0) * s);
                tpre[r * n + j] = tp;
                tpost[r * n + j] = tq;
                hpre[r * n + j] = scale[0] * tp + pre[j];
                hpost[r * n + j] = scale[1] * tq + post[j];
                // column j of Hres depends on stream j: Hres[k][j] for every k
                for (int k = 0; k < n; k++) {
                    float t = (float) Math.tanh(FastMhc.dot(x, xo, wResT, k * C, C, tmp, 0) * s);
                    tres[(r * n + k) * n + j] = t;
                    hres[(r * n + k) * n + j] = scale[0] * t + res[j * n + k];
                }
            }
            FastMhc.aggregate(u, r * C, x, r * n * C, hpre, r * n, n, C);
        }
    }
    /**
     * {@link HcFused#hcPreBackwardTokens}, with the token's dxbar in the one C-long row
     * {@code dxbar} instead of a row per token.
     */
    static void preBackwardTokens(float[] dx, float[] workDhpre, float[] workPre, float[] workPost, float[] workRes,
                                  float[] dxbar, float[] du, float[] dhpost, float[] dhres, float[] x, float[] hpre,
                                  float[] xrstd, float[] tpre, float[] tpost, float[] tres, float[] wPre,
                                  float[] wPost, float[] wResT, float[] scale, float[] tmp, int N, int n, int C) {
        int bound = SP.loopBound(C);
        for (int r = 0; r < N; r++) {
            int uo = r * C;
            for (int b = r * n * n; b < (r + 1) * n * n; b++) {
                workRes[b] = dhres[b] * scale[0] * (1f - tres[b] * tres[b]);
            }
            for (int j = 0; j < n; j++) {
                int a = r * n + j;
                int xo = a * C;
                float dhp = FastMhc.dot(du, uo, x, xo, C, tmp, 0);
                workDhpre[a] = dhp;
                float gp = dhp * scale[0] * (1f - tpre[a] * tpre[a]);
                float gq = dhpost[a] * scale[1] * (1f - tpost[a] * tpost[a]);
                workPre[a] = gp;
                workPost[a] = gq;
                // dxbar = gp w_pre + gq w_post + sum_k gres[k][j] w_res[:, k]
                FloatVector vp = FloatVector.broadcast(SP, gp);
                FloatVector vq = FloatVector.broadcast(SP, gq);
                int c = 0;
                for (; c < bound; c += VL) {
                    FloatVector acc = FloatVector.fromArray(SP, wPre, c).mul(vp);
                    acc = FloatVector.fromArray(SP, wPost, c).fma(vq, acc);
                    for (int k = 0; k < n; k++) {
                        acc = FloatVector.fromArray(SP, wResT, k * C + c)
                                .fma(FloatVector.broadcast(SP, workRes[(r * n + k) * n + j]), acc);
                    }
                    acc.intoArray(dxbar, c);
                }
                for (; c < C; c++) {
                    float acc = wPre[c] * gp;
                    acc = Math.fma(wPost[c], gq, acc);
                    for (int k = 0; k < n; k++) {
                        acc = Math.fma(wResT[k * C + c], workRes[(r * n + k) * n + j], acc);
                    }
                    dxbar[c] = acc;
                }
                // through xbar = x s: dx += Hpre[j] du + s dxbar - x s^3 (dxbar · x) / C
                float s = xrstd[a];
                float kk = FastMhc.dot(dxbar, 0, x, xo, C, tmp, 0) * s * s * s / C;
                float w = hpre[a];
                FloatVector vw = FloatVector.broadcast(SP, w);
                FloatVector vs = FloatVector.broadcast(SP, s);
                FloatVector vk = FloatVector.broadcast(SP, -kk);
                c = 0;
                for (; c < bound; c += VL) {
                    FloatVector t = FloatVector.fromArray(SP, du, uo + c).mul(vw);
                    t = FloatVector.fromArray(SP, dxbar, c).fma(vs, t);
                    t = FloatVector.fromArray(SP, x, xo + c).fma(vk, t);
                    FloatVector.fromArray(SP, dx, xo + c).add(t).intoArray(dx, xo + c);
                }
                for (; c < C; c++) {
                    float t = du[uo + c] * w;
                    t = Math.fma(dxbar[c], s, t);
                    t = Math.fma(x[xo + c], -kk, t);
                    dx[xo + c] += t;
                }
            }
        }
    }

    /**
     * {@link HcFused#hcWeightsBackward}: {@code workW} ((2 + n) rows of C) collects
     * {@code sum_{r,j} g[r][j] xrstd[r][j] x[r][j]} for the pre, post and each res row, over all
     * tokens in order, then is added to the gradients.
     */
    static void weightsBackward(float[] dwPre, float[] dwPost, float[] dwRes, float[] workW, float[] workPre,
                                float[] workPost, float[] workRes, float[] x, float[] xrstd, int N, int n, int C) {
        java.util.Arrays.fill(workW, 0, (2 + n) * C, 0f);
        for (int r = 0; r < N; r++) {
            for (int j = 0; j < n; j++) {
                int rj = r * n + j;
                int xo = rj * C;
                float s = xrstd[rj];
                axpy(workW, 0, workPre[rj] * s, x, xo, C);
                axpy(workW, C, workPost[rj] * s, x, xo, C);
                for (int k = 0; k < n; k++) {
                    axpy(workW, (2 + k) * C, workRes[(r * n + k) * n + j] * s, x, xo, C);
                }
            }
        }
        for (int c = 0; c < C; c++) {
            dwPre[c] += workW[c];
            dwPost[c] += workW[C + c];
            for (int k = 0; k < n; k++) {
                dwRes[c * n + k] += workW[(2 + k) * C + c];
            }
        }
    }

    /** {@code y[yo..yo+C) += a x[xo..xo+C)}. */
    private static void axpy(float[] y, int yo, float a, float[] x, int xo, int C) {
        FloatVector va = FloatVector.broadcast(SP, a);
        int c = 0;
        for (int bound = SP.loopBound(C); c < bound; c += VL) {
            FloatVector.fromArray(SP, x, xo + c).fma(va, FloatVector.fromArray(SP, y, yo + c)).intoArray(y, yo + c);
        }
        for (; c < C; c++) {
            y[yo + c] = Math.fma(x[xo + c], a, y[yo + c]);
        }
    }
}
