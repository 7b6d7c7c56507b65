package mhc.engine.model;

import mhc.kernels.AdamW;
import mhc.kernels.Attention;
import mhc.kernels.CrossEntropy;
import mhc.kernels.Embedding;
import mhc.kernels.HyperConn;
import mhc.kernels.Matmul;
import mhc.kernels.Mhc;
import mhc.kernels.Moe;
import mhc.kernels.RmsNorm;
import mhc.kernels.Rope;
import mhc.kernels.Sinkhorn;
import mhc.kernels.Streams;
import mhc.kernels.SwiGlu;

import java.util.Arrays;
import java.util.HashMap;

/**
 * How the model's operations are computed: this class runs the plain kernels of kernels-java,
 * one call each, and is the reference. A faster or device backend extends it and overrides
 * what it does better (a vectorized GEMM, a fused connection), and is checked against it.
 * Signatures are the kernels' own (outputs first, sizes last; backwards accumulate).
 */
public class Ops {
    private final HashMap<String, float[]> scratch = new HashMap<>();

    // ------------------------------------------------------------------ connections

    /**
     * mHC before the sublayer: the coefficients from the streams and the sublayer input
     * {@code u = sum_j Hpre[j] x[j]}. Keeps {@code rms}, {@code h} (= v · phi) and the Hres logits
     * {@code zres} for the backward.
     */
    public void mhcPreForward(float[] u,     // (N, C)
                              float[] hpre,  // (N, n)
                              float[] hpost, // (N, n)
                              float[] hres,  // (N, n, n)
                              float[] rms,   // (N)
                              float[] h,     // (N, n*n+2n)
                              float[] zres,  // (N, n, n)
                              float[] x,     // (N, n, C)
                              float[] phi,   // (nC, n*n+2n)
                              float[] alpha, // (3)
                              float[] bias,  // (n*n+2n)
                              int N, int n, int C, int iters) {
        int M = n * n + 2 * n;
        rmsForward(rms, x, N, n * C);
        matmulForward(h, x, phi, 0, N, n * C, M);
        mhcCoeffForward(hpre, hpost, zres, h, rms, alpha, bias, N, n);
        sinkhornForward(hres, zres, N, n, iters);
        aggregateForward(u, x, hpre, N, n, C);
    }

    /**
     * Undoes {@link #mhcPreForward} given the gradients of u, Hpost and Hres: adds into the
     * streams' gradient {@code dx} and the parameter gradients. Recomputes the Sinkhorn steps.
     */
    public void mhcPreBackward(float[] dx,     // (N, n, C)
                               float[] dphi,   // (nC, n*n+2n)
                               float[] dalpha, // (3)
                               float[] dbias,  // (n*n+2n)
                               float[] du,     // (N, C)
                               float[] dhpost, // (N, n)
                               float[] dhres,  // (N, n, n)
                               float[] x,      // (N, n, C)
                               float[] hpre,   // (N, n)
                               float[] hpost,  // (N, n)
                               float[] rms,    // (N)
                               float[] h,      // (N, n*n+2n)
                               float[] zres,   // (N, n, n)
                               float[] phi,    // (nC, n*n+2n)
                               float[] alpha,  // (3)
                               int N, int n, int C, int iters) {
        int M = n * n + 2 * n;
        aggregateBackwardStreams(dx, du, hpre, N, n, C);
        float[] dhpre = zeros("dhpre", N * n);
        aggregateBackwardCoeffs(dhpre, du, x, N, n, C);
        float[] dzres = zeros("dzres", N * n * n);
        sinkhornBackward(dzres, dhres, zres, scratch("sinkhornWork", Sinkhorn.workSize(N, n, iters)), N, n, iters);
        float[] dh = zeros("dh", N * M);
        float[] drms = zeros("drms", N);
        float[] workDz = scratch("workDz", N * M);
        mhcCoeffBackward(dh, drms, workDz, dhpre, dhpost, dzres, hpre, hpost, h, rms, alpha, N, n);
        mhcCoeffParamBackward(dalpha, dbias, workDz, h, rms, N, n);
        matmulBackwardWeight(dphi, x, dh, 0, N, n * C, M);
        matmulBackwardInput(dx, dh, phi, 0, N, n * C, M);
        rmsBackward(dx, drms, x, rms, N, n * C);
    }

    /**
     * The mix after sublayer l ({@link #mixForward}: {@code xout = Hres x + Hpost y}) and then the
     * mHC connection before sublayer l+1 on {@code xout} ({@link #mhcPreForward}, whose outputs
     * and parameters are the ones named {@code ...N}). One call, so that a backend can do both
     * on a token while its streams are in cache.
     */
    public void mixMhcPreForward(float[] xout, float[] x, float[] hres, float[] hpost, float[] y,
                                 float[] u, float[] hpreN, float[] hpostN, float[] hresN, float[] rmsN, float[] hN,
                                 float[] zresN, float[] phiN, float[] alphaN, float[] biasN,
                                 int N, int n, int C, int iters) {
        mixForward(xout, x, hres, hpost, y, N, n, C);
        mhcPreForward(u, hpreN, hpostN, hresN, rmsN, hN, zresN, xout, phiN, alphaN, biasN, N, n, C, iters);
    }

    /**
     * The mHC connection's whole backward around sublayer l, once the sublayer's own backward
     * has given {@code du}: the mix after the sublayer ({@link #mixBackward} from {@code dxout},
     * the gradient of the mix's output streams; its {@code dy} was needed before the sublayer's
     * backward and came from {@link #mixBackwardOutput}), then the connection before it
     * ({@link #mhcPreBackward}), which completes {@code dx}, the gradient of the sublayer's
     * input streams (overwritten). With {@code hpostPrev} (the previous sublayer's Hpost; null
     * for the first sublayer) it also overwrites {@code dyPrev} with the previous sublayer's
     * output gradient, {@code sum_i hpostPrev[i] dx[i]}.
     *
     * <p>One call, so that a backend can read each token's streams and their gradient once
     * (here: four passes over the n*C stream arrays, and the mix's dy computed a second time
     * and dropped). Where {@link #mhcBackwardInPlace} says so, {@code dx} may be {@code dxout}
     * itself.
     */
    public void mhcBackward(float[] dx,        // (N, n, C) out
                            float[] dyPrev,    // (N, C) out, only with hpostPrev
                            float[] dphi,      // (nC, n*n+2n)
                            float[] dalpha,    // (3)
                            float[] dbias,     // (n*n+2n)
                            float[] dxout,     // (N, n, C)
                            float[] du,        // (N, C)
                            float[] x,         // (N, n, C)
                            float[] y,         // (N, C)
                            float[] hpre,      // (N, n)
                            float[] hpost,     // (N, n)
                            float[] hres,      // (N, n, n)
                            float[] rms,       // (N)
                            float[] h,         // (N, n*n+2n)
                            float[] zres,      // (N, n, n)
                            float[] phi,       // (nC, n*n+2n)
                            float[] alpha,     // (3)
                            float[] hpostPrev, // (N, n) or null
                            int N, int n, int C, int iters) {
        float[] dhres = scratch("mhcBackward.dhres", N * n * n);
        float[] dhpost = scratch("mhcBackward.dhpost", N * n);
        mixBackward(dx, scratch("mhcBackward.dy", N * C), dhres, dhpost, dxout, x, hres, hpost, y, true, N, n, C);
        mhcPreBackward(dx, dphi, dalpha, dbias, du, dhpost, dhres, x, hpre, hpost, rms, h, zres, phi, alpha,
                N, n, C, iters);
        if (hpostPrev != null) {
            zero(dyPrev, N * C);
            mixBackwardOutput(dyPrev, dx, hpostPrev, N, n, C);
        }
    }

    /**
     * Whether {@link #mhcBackward} may write {@code dx} over {@code dxout} (the same array):
     * then the stream gradient is written into cache lines the call has just read, instead of
     * into a second N*n*C array that has to come from memory first. Not here: the mix's
     * backward writes dx while it still reads dxout.
     */
    public boolean mhcBackwardInPlace() {
        return false;
    }

    /**
     * HC before the sublayer: the normalized streams {@code xbar}, the coefficients (keeping the
     * tanh values) and the sublayer input {@code u = sum_j Hpre[j] x[j]}.
     */
    public void hcPreForward(float[] u,     // (N, C)
                             float[] hpre,  // (N, n)
                             float[] hpost, // (N, n)
                             float[] hres,  // (N, n, n)
                             float[] xbar,  // (N, n, C)
                             float[] xrstd, // (N n)
                             float[] tpre,  // (N, n)
                             float[] tpost, // (N, n)
                             float[] tres,  // (N, n, n)
                             float[] x,     // (N, n, C)
                             float[] wPre,  // (C)
                             float[] wPost, // (C)
                             float[] wRes,  // (C, n)
                             float[] pre,   // (n)
                             float[] post,  // (n)
                             float[] res,   // (n, n)
                             float[] scale, // (2)
                             int N, int n, int C) {
        rmsnormForward(xbar, xrstd, x, ones(C), N * n, C);
        hcCoeffForward(hpre, hpost, hres, tpre, tpost, tres, xbar, wPre, wPost, wRes, pre, post, res, scale, N, n, C);
        aggregateForward(u, x, hpre, N, n, C);
    }

    /** Undoes {@link #hcPreForward} given the gradients of u, Hpost and Hres. */
    public void hcPreBackward(float[] dx,     // (N, n, C)
                              float[] dwPre,  // (C)
                              float[] dwPost, // (C)
                              float[] dwRes,  // (C, n)
                              float[] dpre,   // (n)
                              float[] dpost,  // (n)
                              float[] dres,   // (n, n)
                              float[] dscale, // (2)
                              float[] du,     // (N, C)
                              float[] dhpost, // (N, n)
                              float[] dhres,  // (N, n, n)
                              float[] x,      // (N, n, C)
                              float[] hpre,   // (N, n)
                              float[] xbar,   // (N, n, C)
                              float[] xrstd,  // (N n)
                              float[] tpre,   // (N, n)
                              float[] tpost,  // (N, n)
                              float[] tres,   // (N, n, n)
                              float[] wPre,   // (C)
                              float[] wPost,  // (C)
                              float[] wRes,   // (C, n)
                              float[] scale,  // (2)
                              int N, int n, int C) {
        aggregateBackwardStreams(dx, du, hpre, N, n, C);
        float[] dhpre = zeros("dhpre", N * n);
        aggregateBackwardCoeffs(dhpre, du, x, N, n, C);
        float[] gp = scratch("hcWorkPre", N * n);
        float[] gq = scratch("hcWorkPost", N * n);
        float[] gr = scratch("hcWorkRes", N * n * n);
        hcCoeffBackwardDots(gp, gq, gr, dhpre, dhpost, dhres, tpre, tpost, tres, scale, N, n);
        float[] dxbar = zeros("dxbar", N * n * C);
        hcCoeffBackwardInput(dxbar, gp, gq, gr, wPre, wPost, wRes, N, n, C);
        hcCoeffBackwardWeights(dwPre, dwPost, dwRes, gp, gq, gr, xbar, N, n, C);
        hcCoeffBackwardStatic(dpre, dpost, dres, dscale, dhpre, dhpost, dhres, tpre, tpost, tres, N, n);
        rmsnormBackward(dx, dxbar, x, ones(C), xrstd, N * n, C);
    }

    /**
     * The backward of the mix after a sublayer ({@link #mixForward}): writes the streams'
     * gradient {@code dx} and the sublayer output's {@code dy}, and, for the dynamic connections
     * ({@code coeffs}), the coefficient gradients {@code dhres} and {@code dhpost}. Unlike the
     * kernels, it overwrites: these are the first contributions to each, and a fast path saves
     * the zeroing pass over the n*C stream gradient.
     */
    public void mixBackward(float[] dx,     // (N, n, C)
                            float[] dy,     // (N, C)
                            float[] dhres,  // (N, n, n), only with coeffs
                            float[] dhpost, // (N, n), only with coeffs
                            float[] dxout,  // (N, n, C) gradient of the mix's output
                            float[] x,      // (N, n, C)
                            float[] hres,   // (N, n, n)
                            float[] hpost,  // (N, n)
                            float[] y,      // (N, C)
                            boolean coeffs, int N, int n, int C) {
        zero(dx, N * n * C);
        zero(dy, N * C);
        mixBackwardStreams(dx, dy, dxout, hres, hpost, N, n, C);
        if (coeffs) {
            zero(dhres, N * n * n);
            zero(dhpost, N * n);
            mixBackwardCoeffs(dhres, dhpost, dxout, x, y, N, n, C);
        }
    }

    // ------------------------------------------------------------------ attention

    /**
     * Floats the attention forward keeps for its backward: here the probabilities (B, H, T, T).
     * A tiled attention that keeps only per-row statistics returns less.
     */
    public int attentionStateSize(int B, int T, int H) {
        return B * H * T * T;
    }

    /** Undoes {@link #attentionForward}: adds into dq, dk, dv (RoPE already applied to q and k). */
    public void attentionBackward(float[] dq,   // (B, T, C)
                                  float[] dk,   // (B, T, C)
                                  float[] dv,   // (B, T, C)
                                  float[] dout, // (B, T, C)
                                  float[] att,  // the attention state of the forward
                                  float[] q,    // (B, T, C)
                                  float[] k,    // (B, T, C)
                                  float[] v,    // (B, T, C)
                                  float[] out,  // (B, T, C) the forward's output
                                  int B, int T, int C, int H) {
        float[] work = scratch("attentionWork", B * H * T * T);
        attentionBackwardScores(work, dout, att, v, B, T, C, H);
        attentionBackwardQuery(dq, work, k, B, T, C, H);
        attentionBackwardKeyValue(dk, dv, work, att, q, dout, B, T, C, H);
    }

    // ------------------------------------------------------------------ scratch

    /** An array of exactly {@code size} floats, reused between calls with the same name; contents undefined. */
    protected float[] scratch(String name, int size) {
        float[] a = scratch.get(name);
        if (a == null || a.length != size) {
            a = new float[size];
            scratch.put(name, a);
        }
        return a;
    }

    protected float[] zeros(String name, int size) {
        float[] a = scratch(name, size);
        zero(a, size);
        return a;
    }

    /**
     * Until {@link #releaseParameters}, the parameters given to this instance's calls do not
     * change (a training step holds them while its replicas run): a backend may keep what it
     * derives from them and reuse it across calls (the fast path keeps each weight packed for
     * its GEMM instead of packing it for every sequence). Here, nothing.
     */
    public void holdParameters() {
    }

    /** The parameters may change from now on: what was derived from them is stale. */
    public void releaseParameters() {
    }

    /**
     * Keep what is derived from held parameters ({@link #holdParameters}) together with
     * {@code other}, an instance of the same backend that runs on the same parameter arrays at
     * the same time (another replica of a training step): derived once for both, and in memory
     * once. Each still holds and releases for itself; what is derived stays valid until the last
     * of them releases. Call it before either holds. Here, nothing.
     */
    public void shareHeldParameters(Ops other) {
    }

    /**
     * Let the threads idle in {@code helpers} take part in this instance's calls (a replica of a
     * training step, helped at the step's end by the threads that have no sequence left): a
     * backend whose calls split into tasks runs some of them there. Only for an instance that
     * has no threads of its own; the results are the same. Here, nothing.
     */
    public void lendHelpers(HelperThreads helpers) {
    }

    /**
     * Releases what this instance holds besides heap memory, once it is no longer used: the
     * fast path's own threads, TornadoVM's device memory. Here, nothing.
     */
    public void close() {
    }

    /** {@code a[0..size) = 0}: a kernel like the others, so that a device backend clears its own copy. */
    public void zero(float[] a, int size) {
        Arrays.fill(a, 0, size, 0f);
    }

    // ------------------------------------------------------------------ capture and replay

    /**
     * Whether this backend can record the kernel calls of a forward and backward pass and replay
     * them as one unit with the buffers kept where the kernels run ({@link #beginCapture}).
     * The JVM backends run each call as it comes and cannot.
     */
    public boolean canCapture() {
        return false;
    }

    /** From here to {@link #endCapture}, kernel calls are recorded, not run. */
    public void beginCapture() {
        throw new UnsupportedOperationException("this backend cannot capture a pass");
    }

    /**
     * Ends the recording. {@code in}: the arrays the host changes between replays (copied to
     * the device before each); {@code out}: the arrays the host reads after each (copied back).
     * Every other array the calls touch is copied to the device once and then stays there.
     */
    public void endCapture(Object[] in, Object[] out) {
        endCapture(in, out, new Object[0]);
    }

    /**
     * {@link #endCapture(Object[], Object[])} with {@code resident} arrays that live on the
     * device from the first replay on: copied there once, updated there by the replays (the
     * parameters and optimizer moments of a training step run on the device), and copied back
     * only by {@link #pullResident}. After the host changes one, {@link #residentChanged} makes
     * the next replay copy them all again.
     */
    public void endCapture(Object[] in, Object[] out, Object[] resident) {
        throw new UnsupportedOperationException("this backend cannot capture a pass");
    }

    /** Copies the resident arrays of the captured pass back to the host (nothing before the first replay). */
    public void pullResident() {
        throw new UnsupportedOperationException("this backend cannot capture a pass");
    }

    /** The host changed resident arrays: the next replay copies all of them to the device again. */
    public void residentChanged() {
        throw new UnsupportedOperationException("this backend cannot capture a pass");
    }

    /** Runs the recorded calls once, with the transfers {@link #endCapture} set up. */
    public void replay() {
        throw new UnsupportedOperationException("this backend cannot capture a pass");
    }

    /**
     * Whether the model should use forms whose array sizes do not depend on the data (MoE's
     * packed form, {@link Moe#moePack}), so that a pass can be recorded once and replayed: a
     * device backend. The JVM backends take the per-expert form, which skips idle experts.
     */
    public boolean prefersFixedShapes() {
        return false;
    }

    /**
     * The part of the model the next calls belong to ({@code "blocks.1.attn"}, {@code "head"},
     * ...), for a backend that names its device tasks after the model. Ignored here.
     */
    public void scope(String part) {
    }

    /** All ones: the weight of the unweighted RMSNorm of HC. */
    protected float[] ones(int size) {
        float[] a = scratch.get("ones");
        if (a == null || a.length != size) {
            a = new float[size];
            Arrays.fill(a, 1f);
            scratch.put("ones", a);
        }
        return a;
    }

    // ------------------------------------------------------------------ kernels, one call each

    /** One AdamW step on a flat tensor (the optimizer's update; see {@link AdamW}). */
    public void adamwUpdate(float[] param, float[] grad, float[] m, float[] v, float lr, float beta1, float beta2,
                            float eps, float weightDecay, float gradScale, float bc1, float bc2, int size) {
        AdamW.adamwUpdate(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, gradScale, bc1, bc2, size);
    }

    /** {@link AdamW#adamwUpdateScheduled}: AdamW with the step's learning rate, bias corrections and clip scale in {@code hp}. */
    public void adamwUpdateScheduled(float[] param, float[] grad, float[] m, float[] v, float[] hp,
                                     float beta1, float beta2, float eps, float weightDecay, int size) {
        AdamW.adamwUpdateScheduled(param, grad, m, v, hp, beta1, beta2, eps, weightDecay, size);
    }

    /** {@link AdamW#sumOfSquares}: one tensor's share of the gradient norm. */
    public void sumOfSquares(float[] partials, float[] x, int slot, int size, int parts) {
        AdamW.sumOfSquares(partials, x, slot, size, parts);
    }

    /** {@link AdamW#clipScale}: the gradient norm, the clip scale and the loss sum of a step. */
    public void clipScale(float[] stats, float[] hp, float[] partials, float[] losses, int count, int N, float clip) {
        AdamW.clipScale(stats, hp, partials, losses, count, N, clip);
    }

    public void attentionBackwardKeyValue(float[] dk, float[] dv, float[] workScores, float[] att, float[] q, float[] dout, int B, int T, int C, int H) {
        Attention.attentionBackwardKeyValue(dk, dv, workScores, att, q, dout, B, T, C, H);
    }

    public void attentionBackwardQuery(float[] dq, float[] workScores, float[] k, int B, int T, int C, int H) {
        Attention.attentionBackwardQuery(dq, workScores, k, B, T, C, H);
    }

    public void attentionBackwardScores(float[] workScores, float[] dout, float[] att, float[] v, int B, int T, int C, int H) {
        Attention.attentionBackwardScores(workScores, dout, att, v, B, T, C, H);
    }

    public void attentionForward(float[] out, float[] att, float[] q, float[] k, float[] v, int B, int T, int C, int H) {
        Attention.attentionForward(out, att, q, k, v, B, T, C, H);
    }

    public void crossEntropyBackward(float[] dlogits, float[] probs, int[] targets, float dloss, int N, int V) {
        CrossEntropy.crossEntropyBackward(dlogits, probs, targets, dloss, N, V);
    }

    public void crossEntropyForward(float[] losses, float[] probs, float[] logits, int[] targets, int N, int V) {
        CrossEntropy.crossEntropyForward(losses, probs, logits, targets, N, V);
    }

    public void embeddingBackward(float[] dembed, float[] dx, int[] tokens, int N, int n, int C) {
        Embedding.embeddingBackward(dembed, dx, tokens, N, n, C);
    }

    public void embeddingForward(float[] x, int[] tokens, float[] embed, int N, int n, int C) {
        Embedding.embeddingForward(x, tokens, embed, N, n, C);
    }

    public void hcCoeffBackwardDots(float[] workPre, float[] workPost, float[] workRes, float[] dhpre, float[] dhpost, float[] dhres, float[] tpre, float[] tpost, float[] tres, float[] scale, int N, int n) {
        HyperConn.hcCoeffBackwardDots(workPre, workPost, workRes, dhpre, dhpost, dhres, tpre, tpost, tres, scale, N, n);
    }

    public void hcCoeffBackwardInput(float[] dxbar, float[] workPre, float[] workPost, float[] workRes, float[] wPre, float[] wPost, float[] wRes, int N, int n, int C) {
        HyperConn.hcCoeffBackwardInput(dxbar, workPre, workPost, workRes, wPre, wPost, wRes, N, n, C);
    }

    public void hcCoeffBackwardStatic(float[] dpre, float[] dpost, float[] dres, float[] dscale, float[] dhpre, float[] dhpost, float[] dhres, float[] tpre, float[] tpost, float[] tres, int N, int n) {
        HyperConn.hcCoeffBackwardStatic(dpre, dpost, dres, dscale, dhpre, dhpost, dhres, tpre, tpost, tres, N, n);
    }

    public void hcCoeffBackwardWeights(float[] dwPre, float[] dwPost, float[] dwRes, float[] workPre, float[] workPost, float[] workRes, float[] xbar, int N, int n, int C) {
        HyperConn.hcCoeffBackwardWeights(dwPre, dwPost, dwRes, workPre, workPost, workRes, xbar, N, n, C);
    }

    public void hcCoeffForward(float[] hpre, float[] hpost, float[] hres, float[] tpre, float[] tpost, float[] tres, float[] xbar, float[] wPre, float[] wPost, float[] wRes, float[] pre, float[] post, float[] res, float[] scale, int N, int n, int C) {
        HyperConn.hcCoeffForward(hpre, hpost, hres, tpre, tpost, tres, xbar, wPre, wPost, wRes, pre, post, res, scale, N, n, C);
    }

    public void matmulBackwardInput(float[] dinp, float[] dout, float[] w, int wOff, int N, int IN, int OUT) {
        Matmul.matmulBackwardInput(dinp, dout, w, wOff, N, IN, OUT);
    }

    public void matmulBackwardWeight(float[] dw, float[] inp, float[] dout, int wOff, int N, int IN, int OUT) {
        Matmul.matmulBackwardWeight(dw, inp, dout, wOff, N, IN, OUT);
    }

    public void matmulForward(float[] out, float[] inp, float[] w, int wOff, int N, int IN, int OUT) {
        Matmul.matmulForward(out, inp, w, wOff, N, IN, OUT);
    }

    public void mhcCoeffBackward(float[] dh, float[] drms, float[] workDz, float[] dhpre, float[] dhpost, float[] dzres, float[] hpre, float[] hpost, float[] h, float[] rms, float[] alpha, int N, int n) {
        Mhc.mhcCoeffBackward(dh, drms, workDz, dhpre, dhpost, dzres, hpre, hpost, h, rms, alpha, N, n);
    }

    public void mhcCoeffForward(float[] hpre, float[] hpost, float[] zres, float[] h, float[] rms, float[] alpha, float[] bias, int N, int n) {
        Mhc.mhcCoeffForward(hpre, hpost, zres, h, rms, alpha, bias, N, n);
    }

    public void mhcCoeffParamBackward(float[] dalpha, float[] dbias, float[] workDz, float[] h, float[] rms, int N, int n) {
        Mhc.mhcCoeffParamBackward(dalpha, dbias, workDz, h, rms, N, n);
    }

    public void rmsBackward(float[] dv, float[] drms, float[] v, float[] rms, int N, int K) {
        Mhc.rmsBackward(dv, drms, v, rms, N, K);
    }

    public void rmsForward(float[] rms, float[] v, int N, int K) {
        Mhc.rmsForward(rms, v, N, K);
    }

    public void moePack(int[] order, int[] slotOf, int[] expertOf, int[] position, int[] offsets, int[] counts, int[] sel, int N, int E, int K) {
        Moe.moePack(order, slotOf, expertOf, position, offsets, counts, sel, N, E, K);
    }

    public void moeGatherPacked(float[] out, float[] a, int[] order, int R, int C) {
        Moe.moeGatherPacked(out, a, order, R, C);
    }

    public void moeGatherBackwardPacked(float[] da, float[] dout, int[] position, int[] sel, int N, int E, int K, int C) {
        Moe.moeGatherBackwardPacked(da, dout, position, sel, N, E, K, C);
    }

    public void moeCombinePacked(float[] y, float[] ye, float[] gates, int[] position, int[] sel, int N, int E, int K, int C) {
        Moe.moeCombinePacked(y, ye, gates, position, sel, N, E, K, C);
    }

    public void moeCombineBackwardPacked(float[] dye, float[] dgates, float[] dy, float[] ye, float[] gates, int[] order, int[] slotOf, int R, int C, int K) {
        Moe.moeCombineBackwardPacked(dye, dgates, dy, ye, gates, order, slotOf, R, C, K);
    }

    public void matmulForwardGrouped(float[] out, float[] inp, float[] w, int[] expertOf, int R, int IN, int OUT) {
        Matmul.matmulForwardGrouped(out, inp, w, expertOf, R, IN, OUT);
    }

    public void matmulBackwardInputGrouped(float[] dinp, float[] dout, float[] w, int[] expertOf, int R, int IN, int OUT) {
        Matmul.matmulBackwardInputGrouped(dinp, dout, w, expertOf, R, IN, OUT);
    }

    public void matmulBackwardWeightGrouped(float[] dw, float[] inp, float[] dout, int[] offsets, int E, int IN, int OUT) {
        Matmul.matmulBackwardWeightGrouped(dw, inp, dout, offsets, E, IN, OUT);
    }

    public void moeAddShared(float[] y, float[] ys, int N, int C) {
        Moe.moeAddShared(y, ys, N, C);
    }

    public void moeCombine(float[] y, float[] ye, float[] gates, int[] rows, int[] slots, int off, int cnt, int C, int K) {
        Moe.moeCombine(y, ye, gates, rows, slots, off, cnt, C, K);
    }

    public void moeCombineBackward(float[] dye, float[] dgates, float[] dy, float[] ye, float[] gates, int[] rows, int[] slots, int off, int cnt, int C, int K) {
        Moe.moeCombineBackward(dye, dgates, dy, ye, gates, rows, slots, off, cnt, C, K);
    }

    public void moeDispatch(int[] rows, int[] slots, int[] counts, int[] sel, int N, int E, int K) {
        Moe.moeDispatch(rows, slots, counts, sel, N, E, K);
    }

    public void moeGather(float[] out, float[] a, int[] rows, int off, int cnt, int C) {
        Moe.moeGather(out, a, rows, off, cnt, C);
    }

    public void moeGatherBackward(float[] da, float[] dout, int[] rows, int off, int cnt, int C) {
        Moe.moeGatherBackward(da, dout, rows, off, cnt, C);
    }

    public void moeRouteBackward(float[] dlogits, float[] dgates, float[] scores, float[] gates, int[] sel, int N, int E, int K) {
        Moe.moeRouteBackward(dlogits, dgates, scores, gates, sel, N, E, K);
    }

    public void moeRouteForward(int[] sel, float[] gates, float[] scores, float[] logits, float[] routerBias, int N, int E, int K) {
        Moe.moeRouteForward(sel, gates, scores, logits, routerBias, N, E, K);
    }

    public void rmsnormBackward(float[] dx, float[] dout, float[] x, float[] w, float[] rstd, int N, int C) {
        RmsNorm.rmsnormBackward(dx, dout, x, w, rstd, N, C);
    }

    public void rmsnormForward(float[] out, float[] rstd, float[] x, float[] w, int N, int C) {
        RmsNorm.rmsnormForward(out, rstd, x, w, N, C);
    }

    public void rmsnormWeightBackward(float[] dw, float[] dout, float[] x, float[] rstd, int N, int C) {
        RmsNorm.rmsnormWeightBackward(dw, dout, x, rstd, N, C);
    }

    public void ropeBackward(float[] dinp, float[] dout, float[] cos, float[] sin, int N, int T, int C, int H) {
        Rope.ropeBackward(dinp, dout, cos, sin, N, T, C, H);
    }

    public void ropeForward(float[] out, float[] inp, float[] cos, float[] sin, int N, int T, int C, int H) {
        Rope.ropeForward(out, inp, cos, sin, N, T, C, H);
    }

    public void sinkhornBackward(float[] dz, float[] dout, float[] z, float[] work, int N, int n, int iters) {
        Sinkhorn.sinkhornBackward(dz, dout, z, work, N, n, iters);
    }

    public void sinkhornForward(float[] out, float[] z, int N, int n, int iters) {
        Sinkhorn.sinkhornForward(out, z, N, n, iters);
    }

    public void aggregateBackwardCoeffs(float[] dhpre, float[] du, float[] x, int N, int n, int C) {
        Streams.aggregateBackwardCoeffs(dhpre, du, x, N, n, C);
    }

    public void aggregateBackwardStreams(float[] dx, float[] du, float[] hpre, int N, int n, int C) {
        Streams.aggregateBackwardStreams(dx, du, hpre, N, n, C);
    }

    public void aggregateForward(float[] u, float[] x, float[] hpre, int N, int n, int C) {
        Streams.aggregateForward(u, x, hpre, N, n, C);
    }

    public void collapseBackward(float[] dx, float[] du, int N, int n, int C) {
        Streams.collapseBackward(dx, du, N, n, C);
    }

    public void collapseForward(float[] u, float[] x, int N, int n, int C) {
        Streams.collapseForward(u, x, N, n, C);
    }

    public void mixBackwardCoeffs(float[] dhres, float[] dhpost, float[] dxout, float[] x, float[] y, int N, int n, int C) {
        Streams.mixBackwardCoeffs(dhres, dhpost, dxout, x, y, N, n, C);
    }

    public void mixBackwardOutput(float[] dy, float[] dxout, float[] hpost, int N, int n, int C) {
        Streams.mixBackwardOutput(dy, dxout, hpost, N, n, C);
    }

    public void mixBackwardStreams(float[] dx, float[] dy, float[] dxout, float[] hres, float[] hpost, int N, int n, int C) {
        Streams.mixBackwardStreams(dx, dy, dxout, hres, hpost, N, n, C);
    }

    public void mixForward(float[] xout, float[] x, float[] hres, float[] hpost, float[] y, int N, int n, int C) {
        Streams.mixForward(xout, x, hres, hpost, y, N, n, C);
    }

    public void swigluBackward(float[] dh1, float[] dh3, float[] dout, float[] h1, float[] h3, int N, int F) {
        SwiGlu.swigluBackward(dh1, dh3, dout, h1, h3, N, F);
    }

    public void swigluForward(float[] out, float[] h1, float[] h3, int N, int F) {
        SwiGlu.swigluForward(out, h1, h3, N, F);
    }
}
