package mhc.engine.jvm;

import mhc.engine.model.HelperThreads;
import mhc.engine.model.Ops;
import mhc.kernels.MhcFused;
import mhc.kernels.RmsNorm;

/**
 * The JVM fast path: the model's hot operations on the Vector API ({@code jdk.incubator.vector}).
 * What it replaces, each checked against the plain kernel by the Fast*Test classes:
 *
 * <ul>
 *   <li>the three products of every linear map: {@link FastGemm}, packed and blocked;
 *   <li>attention: {@link FastAttention}, tiled with an online softmax; its state is the per-row
 *       log-sum-exp (B*H*T floats), not the probabilities;
 *   <li>SwiGLU, RMSNorm (also HC's unweighted one, which calls it with all-ones weights), RoPE,
 *       cross-entropy and AdamW: {@link FastElementwise};
 *   <li>the connections: {@link FastMhc} (mHC, with the projection {@code h = v · phi} and its
 *       gradients on the GEMM, and the mix and the next connection in one pass across a
 *       sublayer boundary) and {@link FastHc} (HC), the work of the scalar fused kernels of
 *       {@link FusedOps}, vectorized.
 * </ul>
 *
 * <p>Results are deterministic and independent of the thread count. By default an instance runs
 * single-threaded: the data-parallel {@code StepRunner} already runs one model replica, each with
 * its own {@code FastOps}, per core. {@link #FastOps(int)} splits the GEMM's output tiles, the
 * attention's (row, head) pairs and the mHC connection's blocks of tokens over threads instead,
 * for one large model on all cores, or for the threads a batch has beyond its sequences.
 *
 * <p>Loaded only by reflection from {@code mhc.engine.Backend} when the {@code jdk.incubator.vector}
 * module is present; nothing else refers to this package, so the engine runs without the module.
 */
public class FastOps extends Ops {
    private Workers workers; // set once more, by lendHelpers, before the instance's first call

    /** Single-threaded (the default backend instance: one per model replica). */
    public FastOps() {
        this(Workers.SINGLE);
    }

    /** Splits each GEMM, attention and mHC connection call over {@code threads} threads. */
    public FastOps(int threads) {
        this(threads == 1 ? Workers.SINGLE : new Workers(threads));
    }

    public FastOps(Workers workers) {
        this.workers = workers;
    }

    private WeightPacks packs = new WeightPacks();

    @Override
    public void holdParameters() {
        packs.hold();
    }

    /** A single-threaded instance splits its calls when helpers are idle, and they take part. */
    @Override
    public void lendHelpers(HelperThreads helpers) {
        if (workers == Workers.SINGLE) {
            workers = Workers.borrowing(helpers);
        }
    }

    /** The packed weights: each weight packed once per step for all replicas, and kept once. */
    @Override
    public void shareHeldParameters(Ops other) {
        if (other instanceof FastOps fast && fast != this) {
            packs = fast.packs;
        }
    }

    @Override
    public void releaseParameters() {
        packs.release();
    }

    public int threads() {
        return workers.threads();
    }

    @Override
    public void close() {
        if (workers != Workers.SINGLE) {
            workers.close();
        }
    }

    /** The width of the fast kernels' vectors in bits (the machine's, or {@code -Dmhc.vector.bits}). */
    public static int vectorBits() {
        return VectorMath.SP.vectorBitSize();
    }

    /** The machine's preferred vector width in bits, whatever {@code -Dmhc.vector.bits} says. */
    public static int machineVectorBits() {
        return jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize();
    }

    // ------------------------------------------------------------------ linear maps

    @Override
    public void matmulForward(float[] out, float[] inp, float[] w, int wOff, int N, int IN, int OUT) {
        FastGemm.matmulForward(workers, packs, out, inp, w, wOff, N, IN, OUT);
    }

    @Override
    public void matmulBackwardInput(float[] dinp, float[] dout, float[] w, int wOff, int N, int IN, int OUT) {
        FastGemm.matmulBackwardInput(workers, packs, dinp, dout, w, wOff, N, IN, OUT);
    }

    @Override
    public void matmulBackwardWeight(float[] dw, float[] inp, float[] dout, int wOff, int N, int IN, int OUT) {
        FastGemm.matmulBackwardWeight(workers, dw, inp, dout, wOff, N, IN, OUT);
    }

    // ------------------------------------------------------------------ attention

    /** Only the log-sum-exp of each query row: (B, H, T). */
    @Override
    public int attentionStateSize(int B, int T, int H) {
        return FastAttention.stateSize(B, T, H);
    }

    /** {@code att} receives the per-row log-sum-exp, not the probabilities. */
    @Override
    public void attentionForward(float[] out, float[] att, float[] q, float[] k, float[] v, int B, int T, int C, int H) {
        FastAttention.forward(workers, out, att, q, k, v, B, T, C, H);
    }

    /** Recomputes the probabilities block by block from q, k and the forward's log-sum-exp. */
    @Override
    public void attentionBackward(float[] dq, float[] dk, float[] dv, float[] dout, float[] att, float[] q, float[] k,
                                  float[] v, float[] out, int B, int T, int C, int H) {
        FastAttention.backward(workers, dq, dk, dv, dout, att, q, k, v, out, B, T, C, H);
    }

    // ------------------------------------------------------------------ element- and row-wise

    @Override
    public void swigluForward(float[] out, float[] h1, float[] h3, int N, int F) {
        FastElementwise.swigluForward(out, h1, h3, N, F);
    }

    @Override
    public void swigluBackward(float[] dh1, float[] dh3, float[] dout, float[] h1, float[] h3, int N, int F) {
        FastElementwise.swigluBackward(dh1, dh3, dout, h1, h3, N, F);
    }

    @Override
    public void rmsnormForward(float[] out, float[] rstd, float[] x, float[] w, int N, int C) {
        FastElementwise.rmsnormForward(out, rstd, x, w, N, C, RmsNorm.EPS);
    }

    @Override
    public void rmsnormBackward(float[] dx, float[] dout, float[] x, float[] w, float[] rstd, int N, int C) {
        FastElementwise.rmsnormBackward(dx, dout, x, w, rstd, N, C);
    }

    @Override
    public void rmsnormWeightBackward(float[] dw, float[] dout, float[] x, float[] rstd, int N, int C) {
        FastElementwise.rmsnormWeightBackward(dw, dout, x, rstd, N, C);
    }

    @Override
    public void ropeForward(float[] out, float[] inp, float[] cos, float[] sin, int N, int T, int C, int H) {
        FastElementwise.ropeForward(out, inp, cos, sin, N, T, C, H);
    }

    @Override
    public void ropeBackward(float[] dinp, float[] dout, float[] cos, float[] sin, int N, int T, int C, int H) {
        FastElementwise.ropeBackward(dinp, dout, cos, sin, N, T, C, H);
    }

    @Override
    public void embeddingForward(float[] x, int[] tokens, float[] embed, int N, int n, int C) {
        FastElementwise.embeddingForward(x, tokens, embed, N, n, C);
    }

    @Override
    public void embeddingBackward(float[] dembed, float[] dx, int[] tokens, int N, int n, int C) {
        FastElementwise.embeddingBackward(dembed, dx, tokens, N, n, C);
    }

    @Override
    public void aggregateForward(float[] u, float[] x, float[] hpre, int N, int n, int C) {
        FastElementwise.aggregateForward(u, x, hpre, N, n, C);
    }

    @Override
    public void aggregateBackwardStreams(float[] dx, float[] du, float[] hpre, int N, int n, int C) {
        FastElementwise.aggregateBackwardStreams(dx, du, hpre, N, n, C);
    }

    @Override
    public void collapseForward(float[] u, float[] x, int N, int n, int C) {
        FastElementwise.collapseForward(u, x, N, n, C);
    }

    @Override
    public void collapseBackward(float[] dx, float[] du, int N, int n, int C) {
        FastElementwise.collapseBackward(dx, du, N, n, C);
    }

    @Override
    public void crossEntropyForward(float[] losses, float[] probs, float[] logits, int[] targets, int N, int V) {
        FastElementwise.crossEntropyForward(losses, probs, logits, targets, N, V);
    }

    @Override
    public void crossEntropyBackward(float[] dlogits, float[] probs, int[] targets, float dloss, int N, int V) {
        FastElementwise.crossEntropyBackward(dlogits, probs, targets, dloss, N, V);
    }

    @Override
    public void adamwUpdate(float[] param, float[] grad, float[] m, float[] v, float lr, float beta1, float beta2,
                            float eps, float weightDecay, float gradScale, float bc1, float bc2, int size) {
        int tasks = Math.min(workers.threads(), size / ADAMW_SPLIT);
        if (tasks <= 1) {
            FastElementwise.adamwUpdate(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, gradScale, bc1, bc2, size);
            return;
        }
        // ranges of whole vectors; each element's update is the same wherever its range starts
        int chunk = (size / tasks + VectorMath.VL - 1) / VectorMath.VL * VectorMath.VL;
        workers.run(tasks, t -> FastElementwise.adamwUpdateRange(param, grad, m, v, lr, beta1, beta2, eps, weightDecay,
                gradScale, bc1, bc2, Math.min(size, t * chunk), Math.min(size, (t + 1) * chunk)));
    }

    /**
     * Elements per thread below which AdamW stays on the calling thread. The update is
     * memory-bound: gpt-small's 5.17M parameters took 4.2-4.9 ms on one Zen 3 core and 3.3-4.1
     * ms on two (paired ratio 0.79-0.81, alternated in one JVM); the serial step is Amdahl's
     * part on machines with more cores.
     */
    static final int ADAMW_SPLIT = 1 << 16;

    // The mHC connection: the projection h = v · phi and its two gradient products on the blocked
    // GEMM above (its N x nC x (n*n+2n) products are the bulk of the connection's arithmetic),
    // everything else per token in FastMhc (vectorized along C, and across tokens for the
    // coefficients and Sinkhorn-Knopp).

    @Override
    public void mhcPreForward(float[] u, float[] hpre, float[] hpost, float[] hres, float[] rms, float[] h,
                              float[] zres, float[] x, float[] phi, float[] alpha, float[] bias,
                              int N, int n, int C, int iters) {
        float[] p = phiPanels(phi, n * C, n * n + 2 * n);
        int tasks = tokenTasks(N);
        float[][] work = taskScratch("fast.mhcWork", tasks, FastMhc.workSize(n, iters));
        float[][] rows = taskScratch("fast.groupRows", tasks, FastGemm.GROUP * Math.max(n * C, n * n + 2 * n));
        float[][] tile = taskScratch("fast.groupTile", tasks, FastGemm.GROUP * 2 * VectorMath.VL);
        workers.run(tasks, t -> {
            int from = t * FastMhc.TOKEN_BLOCK, to = tasks == 1 ? N : Math.min(N, from + FastMhc.TOKEN_BLOCK);
            FastMhc.projectPreForward(u, hpre, hpost, hres, zres, rms, h, x, p, alpha, bias, work[t], rows[t], tile[t],
                    from, to, n, C, iters);
        });
    }

    /**
     * phi (K x M) as the row-group kernels of {@link FastMhc#projectPreForward} and
     * {@link FastMhc#mixPreForward} read it: phi itself where {@link FastMhc#projectionInPlace},
     * else its packed panels (kept with the weight packs, or packed into scratch).
     */
    private float[] phiPanels(float[] phi, int K, int M) {
        if (FastMhc.projectionInPlace(M)) {
            return phi;
        }
        float[] panels = packs.panels(phi, 0, M, 1, K, M);
        if (panels == null) {
            panels = scratch("fast.phiPanels", FastGemm.panelsSize(K, M));
            FastGemm.packPanels(panels, phi, 0, M, 1, K, M);
        }
        return panels;
    }

    @Override
    public void mhcPreBackward(float[] dx, float[] dphi, float[] dalpha, float[] dbias, float[] du,
                               float[] dhpost, float[] dhres, float[] x, float[] hpre, float[] hpost,
                               float[] rms, float[] h, float[] zres, float[] phi, float[] alpha,
                               int N, int n, int C, int iters) {
        int M = n * n + 2 * n;
        int K = n * C;
        float[] workDz = scratch("fast.mhcWorkDz", N * M);
        float[] workDh = scratch("fast.mhcWorkDh", N * M);
        FastMhc.preBackward(dx, workDz, workDh, du, dhpost, dhres, x, hpre, hpost, rms, h, zres, alpha,
                scratch("fast.mhcWork", FastMhc.workSize(n, iters)), N, n, C, iters);
        matmulBackwardInput(dx, workDh, phi, 0, N, K, M);
        matmulBackwardWeight(dphi, x, workDh, 0, N, K, M);
        mhcCoeffParamBackward(dalpha, dbias, workDz, h, rms, N, n);
    }

    @Override
    public void mhcCoeffParamBackward(float[] dalpha, float[] dbias, float[] workDz, float[] h, float[] rms, int N, int n) {
        FastMhc.coeffParamBackward(dalpha, dbias, workDz, h, rms, N, n);
    }

    // The HC connection on the Vector API (FastHc): the fused kernels' work, vectorized along C.

    /**
     * Does not write {@code xbar}: {@link #hcPreBackward} recomputes {@code x * xrstd} instead,
     * as in {@link FusedOps}. The two HC methods go together.
     */
    @Override
    public void hcPreForward(float[] u, float[] hpre, float[] hpost, float[] hres, float[] xbar, float[] xrstd,
                             float[] tpre, float[] tpost, float[] tres, float[] x, float[] wPre, float[] wPost,
                             float[] wRes, float[] pre, float[] post, float[] res, float[] scale,
                             int N, int n, int C) {
        float[] wResT = scratch("fast.wResT", n * C);
        MhcFused.transpose(wResT, wRes, C, n);
        FastHc.preForward(u, hpre, hpost, hres, xrstd, tpre, tpost, tres, x, wPre, wPost, wResT, pre, post, res, scale,
                scratch("fast.lanes", VectorMath.VL), N, n, C);
    }

    /** Does not read {@code xbar} (see {@link #hcPreForward}). */
    @Override
    public void hcPreBackward(float[] dx, float[] dwPre, float[] dwPost, float[] dwRes, float[] dpre, float[] dpost,
                              float[] dres, float[] dscale, float[] du, float[] dhpost, float[] dhres, float[] x,
                              float[] hpre, float[] xbar, float[] xrstd, float[] tpre, float[] tpost, float[] tres,
                              float[] wPre, float[] wPost, float[] wRes, float[] scale, int N, int n, int C) {
        float[] wResT = scratch("fast.wResT", n * C);
        MhcFused.transpose(wResT, wRes, C, n);
        float[] dhpre = scratch("fast.hcDhpre", N * n);
        float[] gp = scratch("fast.hcWorkPre", N * n);
        float[] gq = scratch("fast.hcWorkPost", N * n);
        float[] gr = scratch("fast.hcWorkRes", N * n * n);
        FastHc.preBackwardTokens(dx, dhpre, gp, gq, gr, scratch("fast.hcDxbar", C), du, dhpost, dhres, x, hpre, xrstd,
                tpre, tpost, tres, wPre, wPost, wResT, scale, scratch("fast.lanes", VectorMath.VL), N, n, C);
        FastHc.weightsBackward(dwPre, dwPost, dwRes, scratch("fast.hcWorkW", (2 + n) * C), gp, gq, gr, x, xrstd,
                N, n, C);
        hcCoeffBackwardStatic(dpre, dpost, dres, dscale, dhpre, dhpost, dhres, tpre, tpost, tres, N, n);
    }

    // Across two sublayers: the mix and the next connection on a group of tokens while its
    // streams are in cache (FastMhc.mixPreForward), and the connection's whole backward
    // (FastMhc.backward), on FastGemm's row-group kernels.

    @Override
    public void mixMhcPreForward(float[] xout, float[] x, float[] hres, float[] hpost, float[] y,
                                 float[] u, float[] hpreN, float[] hpostN, float[] hresN, float[] rmsN, float[] hN,
                                 float[] zresN, float[] phiN, float[] alphaN, float[] biasN,
                                 int N, int n, int C, int iters) {
        int K = n * C;
        int M = n * n + 2 * n;
        float[] panels = phiPanels(phiN, K, M);
        int tasks = tokenTasks(N);
        float[][] work = taskScratch("fast.mhcWork", tasks, FastMhc.workSize(n, iters));
        float[][] rows = taskScratch("fast.groupRows", tasks, FastGemm.GROUP * Math.max(K, M));
        float[][] tile = taskScratch("fast.groupTile", tasks, FastGemm.GROUP * 2 * VectorMath.VL);
        float[] p = panels;
        workers.run(tasks, t -> {
            int from = t * FastMhc.TOKEN_BLOCK, to = tasks == 1 ? N : Math.min(N, from + FastMhc.TOKEN_BLOCK);
            FastMhc.mixPreForward(xout, x, hres, hpost, y, u, hpreN, hpostN, hresN, zresN, rmsN, hN, p, alphaN, biasN,
                    work[t], rows[t], tile[t], from, to, n, C, iters);
        });
    }

    /**
     * Tasks for a call over N tokens: one on one thread; else blocks of
     * {@link FastMhc#TOKEN_BLOCK} tokens, whose results do not depend on the split. Not split for
     * borrowed helpers: the split backward reads the streams again for phi's gradient (by ranges
     * of its columns), and a helper on another core reads them from there; mhc steps took as
     * long or longer with the connection split as without (paired, alternated in one JVM).
     */
    private int tokenTasks(int N) {
        return workers.threads() == 1 || workers.fewTasks() ? 1 : (N + FastMhc.TOKEN_BLOCK - 1) / FastMhc.TOKEN_BLOCK;
    }

    /** One scratch array per task, taken on the calling thread (the scratch map is not for concurrent use). */
    private float[][] taskScratch(String name, int tasks, int size) {
        float[][] a = new float[tasks][];
        for (int t = 0; t < tasks; t++) {
            a[t] = scratch(t == 0 ? name : name + "#" + t, size);
        }
        return a;
    }

    @Override
    public boolean mhcBackwardInPlace() {
        return true; // FastMhc.backward; the composition in Ops is not
    }

    @Override
    public void mhcBackward(float[] dx, float[] dyPrev, float[] dphi, float[] dalpha, float[] dbias,
                            float[] dxout, float[] du, float[] x, float[] y, float[] hpre, float[] hpost, float[] hres,
                            float[] rms, float[] h, float[] zres, float[] phi, float[] alpha, float[] hpostPrev,
                            int N, int n, int C, int iters) {
        int K = n * C;
        int M = n * n + 2 * n;
        float[] panels = packs.panels(phi, 0, 1, M, M, K); // phi^T: (m, k) at phi[k*M + m]
        if (panels == null) {
            panels = scratch("fast.phiTPanels", FastGemm.panelsSize(M, K));
            FastGemm.packPanels(panels, phi, 0, 1, M, M, K);
        }
        float[] workDz = scratch("fast.mhcWorkDz", N * M);
        float[] workDh = scratch("fast.mhcWorkDh", N * M);
        int Mp = FastMhc.projRows(M);
        float[] dphiT = scratch("fast.mhcDphiT", Mp * K);
        java.util.Arrays.fill(dphiT, 0, Mp * K, 0f);
        float[] dhpost = scratch("fast.mhcDhpost", N * n), dhres = scratch("fast.mhcDhres", N * n * n);
        int tasks = tokenTasks(N);
        float[][] work = taskScratch("fast.mhcWork", tasks, FastMhc.workSize(n, iters));
        float[][] rows = taskScratch("fast.groupRows", tasks, FastGemm.GROUP * Math.max(K, M));
        float[][] tile = taskScratch("fast.groupTile", tasks, FastGemm.GROUP * 2 * VectorMath.VL);
        float[] p = panels;
        if (tasks == 1) {
            FastMhc.backward(dx, dyPrev, workDz, workDh, dhpost, dhres, dphiT, scratch("fast.mhcDhGroup", FastMhc.DPHI_TOKENS * Mp),
                    dxout, du, x, y, hpre, hpost, hres, rms, h, zres, alpha, p, hpostPrev, work[0], rows[0], tile[0], N, n, C, iters);
        } else {
            // the per-token work by blocks of tokens, then phi's gradient (a sum over the tokens)
            // by ranges of its columns: the same bits as the one-thread sweep
            workers.run(tasks, t -> {
                int from = t * FastMhc.TOKEN_BLOCK, to = Math.min(N, from + FastMhc.TOKEN_BLOCK);
                FastMhc.backward(dx, dyPrev, workDz, workDh, dhpost, dhres, null, null, dxout, du, x, y, hpre, hpost, hres,
                        rms, h, zres, alpha, p, hpostPrev, work[t], rows[t], tile[t], from, to, n, C, iters);
            });
            int colTasks = Math.min(workers.threads(), (K + FastGemm.NR - 1) / FastGemm.NR);
            int width = (K / colTasks + FastGemm.NR - 1) / FastGemm.NR * FastGemm.NR;
            float[][] dhGroup = taskScratch("fast.mhcDhGroup", colTasks, FastMhc.DPHI_TOKENS * Mp);
            workers.run(colTasks, t -> {
                int j0 = Math.min(K, t * width), j1 = t == colTasks - 1 ? K : Math.min(K, j0 + width);
                if (j0 < j1) {
                    FastMhc.dphiColumns(dphiT, workDh, x, dhGroup[t], N, n, C, j0, j1);
                }
            });
        }
        FastMhc.addTransposed(dphi, dphiT, K, M);
        mhcCoeffParamBackward(dalpha, dbias, workDz, h, rms, N, n);
    }

    // ------------------------------------------------------------------ the mix after each sublayer

    @Override
    public void mixForward(float[] xout, float[] x, float[] hres, float[] hpost, float[] y, int N, int n, int C) {
        FastMhc.mixForward(xout, x, hres, hpost, y, N, n, C);
    }

    @Override
    public void mixBackwardOutput(float[] dy, float[] dxout, float[] hpost, int N, int n, int C) {
        FastMhc.mixBackwardOutput(dy, dxout, hpost, N, n, C);
    }

    /** Streams and coefficients in one pass per token, overwriting (see {@link FastMhc#mixBackward}). */
    @Override
    public void mixBackward(float[] dx, float[] dy, float[] dhres, float[] dhpost, float[] dxout, float[] x,
                            float[] hres, float[] hpost, float[] y, boolean coeffs, int N, int n, int C) {
        FastMhc.mixBackward(dx, dy, dhres, dhpost, dxout, x, hres, hpost, y, coeffs,
                scratch("fast.mixLanes", (n * n + n) * VectorMath.VL), N, n, C);
    }
}
