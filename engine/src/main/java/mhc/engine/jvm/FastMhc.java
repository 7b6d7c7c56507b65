package mhc.engine.jvm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import mhc.kernels.Mhc;
import mhc.kernels.MhcFused;
import mhc.kernels.Streams;

import static mhc.engine.jvm.VectorMath.expInPlace;

/**
 * The mHC connection's per-token work on the Vector API: the same math as {@link MhcFused}'s
 * per-token kernels and the {@link Streams} mixes, laid out for SIMD.
 *
 * <p>Two layouts, one per kind of work:
 * <ul>
 *   <li>Work over a token's n*C stream entries (the RMS, the aggregate {@code u = sum_j Hpre[j] x[j]},
 *       the dot products of the backward, the mixes) is vectorized along C.</li>
 *   <li>Work over the n*n+2n coefficients (the sigmoids, the 20 Sinkhorn-Knopp iterations and
 *       their exact backward) is tiny per token and full of short row and column sums, so it is
 *       vectorized across tokens instead: a group of VL tokens is transposed into
 *       structure-of-arrays form (entry e of all VL tokens in one vector) and every step of
 *       the plain per-token code runs once per group, lane-wise, with the sums in the plain
 *       kernel's order. One difference: each row or column is multiplied by the reciprocal of
 *       its sum where the plain kernel divides every entry (one vector division per row instead
 *       of n, and of 3n in the backward; division is the slowest vector instruction), which
 *       changes results by an ulp or so, as exp does (the {@link VectorMath} polynomial).
 *       A last partial group fills its unused lanes with zero logits and never writes them back.</li>
 * </ul>
 * Tokens are processed in groups of VL for both: a group's VL*n*C stream entries (64 KB at
 * n=4, C=256 and 16 lanes) stay in the L2 cache between the RMS and the aggregate, so the
 * stream is read from memory once per pass.
 *
 * <p>As in {@link MhcFused}, the backward recomputes the Sinkhorn-Knopp intermediates
 * (2*iters n x n states per token, into a per-group scratch of 2*iters*n*n*VL floats) instead
 * of keeping them; the forward keeps zres for it.
 *
 * <p>Scalar tails (the last C % VL entries of a row) use {@link Math#fma} where the vector code
 * uses fma, so a value does not depend on its position in the row.
 */
final class FastMhc {
    private static final VectorSpecies<Float> SP = VectorMath.SP;
    private static final int VL = VectorMath.VL;

    private FastMhc() {
    }

    /** Floats of the scratch that {@link #preGroup} and {@link #preBackward} take. */
    static int workSize(int n, int iters) {
        int nn = n * n;
        int M = nn + 2 * n;
        // per lane: z / coefficients (M), the Sinkhorn states (2*iters+1 of nn), the gradient (nn),
        // the reciprocal sums of the backward's recomputed steps (2*iters of n); then one
        // VL-float row for the per-lane max (the max-shift sum in the backward) and one
        // lane-sum buffer
        return (M + (2 * iters + 2) * nn + 2 * iters * n + 2) * VL;
    }

    // ------------------------------------------------------------------ forward

    /**
     * {@link MhcFused#mhcPreForward} for tokens {@code from .. to-1} ({@code from} a multiple of
     * {@link #TOKEN_BLOCK}), the projection included: per row group of {@link FastGemm#GROUP}
     * tokens, {@code h = x · phi} on the row-group kernel, then {@link #preGroup}, as
     * {@link #mixPreForward} does after its mix (the same bits for the same streams). It serves
     * the first sublayer, whose streams no mix wrote. Alone, this N x nC x 24 product took 0.44x
     * the time of the blocked GEMM on AVX2 (n = 4, C = 256, N = 256, one thread: 213 against
     * 485 us), which packs the streams and computes 8 columns of padding.
     */
    static void projectPreForward(float[] u, float[] hpre, float[] hpost, float[] hres, float[] zres, float[] rms,
                                  float[] h, float[] x, float[] phiPanels, float[] alpha, float[] bias,
                                  float[] work, float[] aPad, float[] tile, int from, int to, int n, int C, int iters) {
        for (int r0 = from; r0 < to; r0 += FastGemm.GROUP) {
            projectPreGroup(r0, Math.min(FastGemm.GROUP, to - r0), u, hpre, hpost, hres, zres, rms, h, x, phiPanels,
                    alpha, bias, work, aPad, tile, n, C, iters);
        }
    }

    /** One row group of {@code G <= GROUP} tokens from {@code r0}: the projection of its streams, then {@link #preGroup}. */
    private static void projectPreGroup(int r0, int G, float[] u, float[] hpre, float[] hpost, float[] hres,
                                        float[] zres, float[] rms, float[] h, float[] x, float[] phiPanels,
                                        float[] alpha, float[] bias, float[] work, float[] aPad, float[] tile,
                                        int n, int C, int iters) {
        int K = n * C;
        int M = n * n + 2 * n;
        if (projectionInPlace(M)) {
            FastGemm.rowsTimesThreeVectors(G, K, x, r0 * K, K, phiPanels, h, r0 * M, M);
        } else {
            FastGemm.rowsTimesPanels(G, K, x, r0 * K, K, phiPanels, M, h, r0 * M, M, false, aPad, tile);
        }
        preGroup(r0, G, u, hpre, hpost, hres, zres, rms, h, x, alpha, bias, work, n, C, iters);
    }

    /**
     * One group of {@code G <= VL} tokens from {@code r0} of {@link #projectPreForward}, given
     * their projections {@code h = x · phi}: writes rms, the coefficients, zres, Hres and u.
     */
    static void preGroup(int r0, int G, float[] u, float[] hpre, float[] hpost, float[] hres, float[] zres, float[] rms,
                         float[] h, float[] x, float[] alpha, float[] bias, float[] work, int n, int C, int iters) {
        int nn = n * n;
        int M = nn + 2 * n;
        int K = n * C;
        int zOff = 0;                  // (M, VL): logits, then coefficients
        int sOff = M * VL;             // Sinkhorn state (nn, VL), in place
        int maxOff = work.length - 2 * VL;
        int tmpOff = maxOff + VL;
        // rms per token, and the logits transposed into (entry, lane)
        for (int l = 0; l < VL; l++) {
            if (l >= G) {
                for (int m = 0; m < M; m++) {
                    work[zOff + m * VL + l] = 0f;
                }
                work[maxOff + l] = 0f;
                continue;
            }
            int r = r0 + l;
            float ss = sumSquares(x, r * K, K, work, tmpOff);
            float rr = (float) Math.sqrt(ss / K + Mhc.EPS);
            rms[r] = rr;
            float inv = 1f / rr;
            int ho = r * M;
            for (int j = 0; j < n; j++) {
                work[zOff + j * VL + l] = alpha[0] * h[ho + j] * inv + bias[j];
                work[zOff + (n + j) * VL + l] = alpha[1] * h[ho + n + j] * inv + bias[n + j];
            }
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < nn; e++) {
                float z = alpha[2] * h[ho + 2 * n + e] * inv + bias[2 * n + e];
                zres[r * nn + e] = z;
                work[zOff + (2 * n + e) * VL + l] = z;
                max = Math.max(max, z);
            }
            work[maxOff + l] = max;
        }
        // sigmoids, exp and Sinkhorn-Knopp, lane-wise
        FloatVector one = FloatVector.broadcast(SP, 1f);
        for (int m = 0; m < 2 * n; m++) {
            FloatVector.fromArray(SP, work, zOff + m * VL).neg().intoArray(work, zOff + m * VL);
        }
        FloatVector max = FloatVector.fromArray(SP, work, maxOff);
        for (int e = 0; e < nn; e++) {
            FloatVector.fromArray(SP, work, zOff + (2 * n + e) * VL).sub(max).intoArray(work, sOff + e * VL);
        }
        expInPlace(work, zOff, 2 * n * VL);
        expInPlace(work, sOff, nn * VL);
        for (int m = 0; m < 2 * n; m++) {
            FloatVector s = one.div(FloatVector.fromArray(SP, work, zOff + m * VL).add(1f));
            (m < n ? s : s.mul(2f)).intoArray(work, zOff + m * VL);
        }
        for (int it = 0; it < iters; it++) {
            if (n == 4) {
                recordStep4(work, sOff, VL, 4 * VL, -1, true);  // columns, in place
                recordStep4(work, sOff, 4 * VL, VL, -1, true);  // rows, in place
                continue;
            }
            normalizeColumns(work, sOff, sOff, n);
            normalizeRows(work, sOff, sOff, n);
        }
        // back to per-token layout
        for (int l = 0; l < G; l++) {
            int r = r0 + l;
            for (int j = 0; j < n; j++) {
                hpre[r * n + j] = work[zOff + j * VL + l];
                hpost[r * n + j] = work[zOff + (n + j) * VL + l];
            }
            for (int e = 0; e < nn; e++) {
                hres[r * nn + e] = work[sOff + e * VL + l];
            }
        }
        // u = sum_j Hpre[j] x[j], the group's streams still in cache
        for (int l = 0; l < G; l++) {
            int r = r0 + l;
            aggregate(u, r * C, x, r * K, hpre, r * n, n, C);
        }
    }

    /**
     * {@code sum x[o..o+K)^2}: 4 x VL partial sums (four FMA chains: one chain over the row's
     * K/VL vectors was a quarter of the connection's per-token work, waiting on FMA latency),
     * added pairwise, then in lane order.
     */
    static float sumSquares(float[] x, int o, int K, float[] work, int tmpOff) {
        FloatVector a0 = FloatVector.zero(SP), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (int bound = K - 4 * VL; k <= bound; k += 4 * VL) {
            FloatVector v0 = FloatVector.fromArray(SP, x, o + k);
            FloatVector v1 = FloatVector.fromArray(SP, x, o + k + VL);
            FloatVector v2 = FloatVector.fromArray(SP, x, o + k + 2 * VL);
            FloatVector v3 = FloatVector.fromArray(SP, x, o + k + 3 * VL);
            a0 = v0.fma(v0, a0);
            a1 = v1.fma(v1, a1);
            a2 = v2.fma(v2, a2);
            a3 = v3.fma(v3, a3);
        }
        for (int bound = SP.loopBound(K); k < bound; k += VL) {
            FloatVector v = FloatVector.fromArray(SP, x, o + k);
            a0 = v.fma(v, a0);
        }
        float s = sumLanes(a0.add(a1).add(a2.add(a3)), work, tmpOff);
        for (; k < K; k++) {
            s = Math.fma(x[o + k], x[o + k], s);
        }
        return s;
    }

    /** {@code a · b} over {@code len} entries: VL partial sums, added in lane order. */
    static float dot(float[] a, int ao, float[] b, int bo, int len, float[] work, int tmpOff) {
        FloatVector acc = FloatVector.zero(SP);
        int c = 0;
        for (int bound = SP.loopBound(len); c < bound; c += VL) {
            acc = FloatVector.fromArray(SP, a, ao + c).fma(FloatVector.fromArray(SP, b, bo + c), acc);
        }
        float s = sumLanes(acc, work, tmpOff);
        for (; c < len; c++) {
            s = Math.fma(a[ao + c], b[bo + c], s);
        }
        return s;
    }

    private static float sumLanes(FloatVector v, float[] work, int tmpOff) {
        v.intoArray(work, tmpOff);
        float s = 0f;
        for (int i = 0; i < VL; i++) {
            s += work[tmpOff + i];
        }
        return s;
    }

    /**
     * {@code u[uo..uo+C) = sum_j w[wo+j] x[xo + j*C ..]}, overwriting u. At n = 4 written out
     * with the weights broadcast once (the general loop over j took a third of the per-token
     * work of the connection's forward); the same operations in the same order.
     */
    static void aggregate(float[] u, int uo, float[] x, int xo, float[] w, int wo, int n, int C) {
        int c = 0;
        if (n == 4) {
            float w0 = w[wo];
            FloatVector w1 = FloatVector.broadcast(SP, w[wo + 1]), w2 = FloatVector.broadcast(SP, w[wo + 2]),
                    w3 = FloatVector.broadcast(SP, w[wo + 3]);
            for (int bound = SP.loopBound(C); c < bound; c += VL) {
                FloatVector acc = FloatVector.fromArray(SP, x, xo + c).mul(w0);
                acc = FloatVector.fromArray(SP, x, xo + C + c).fma(w1, acc);
                acc = FloatVector.fromArray(SP, x, xo + 2 * C + c).fma(w2, acc);
                acc = FloatVector.fromArray(SP, x, xo + 3 * C + c).fma(w3, acc);
                acc.intoArray(u, uo + c);
            }
        }
        for (int bound = SP.loopBound(C); c < bound; c += VL) {
            FloatVector acc = FloatVector.fromArray(SP, x, xo + c).mul(w[wo]);
            for (int j = 1; j < n; j++) {
                acc = FloatVector.fromArray(SP, x, xo + j * C + c).fma(FloatVector.broadcast(SP, w[wo + j]), acc);
            }
            acc.intoArray(u, uo + c);
        }
        for (; c < C; c++) {
            float acc = x[xo + c] * w[wo];
            for (int j = 1; j < n; j++) {
                acc = Math.fma(x[xo + j * C + c], w[wo + j], acc);
            }
            u[uo + c] = acc;
        }
    }

    /** One column step of Sinkhorn-Knopp on a group: {@code dst[i][j] = src[i][j] / sum_i src[i][j]}. */
    private static void normalizeColumns(float[] w, int src, int dst, int n) {
        for (int j = 0; j < n; j++) {
            normalize(w, src, dst, n, j * VL, n * VL);
        }
    }

    /** One row step of Sinkhorn-Knopp on a group: {@code dst[i][j] = src[i][j] / sum_j src[i][j]}. */
    private static void normalizeRows(float[] w, int src, int dst, int n) {
        for (int i = 0; i < n; i++) {
            normalize(w, src, dst, n, i * n * VL, VL);
        }
    }

    /** Divides the n entries {@code stride} apart from {@code first} (a row or a column) by their sum. */
    private static void normalize(float[] w, int src, int dst, int n, int first, int stride) {
        FloatVector s = FloatVector.zero(SP);
        for (int i = 0; i < n; i++) {
            s = s.add(FloatVector.fromArray(SP, w, src + first + i * stride));
        }
        FloatVector inv = FloatVector.broadcast(SP, 1f).div(s);
        for (int i = 0; i < n; i++) {
            FloatVector.fromArray(SP, w, src + first + i * stride).mul(inv).intoArray(w, dst + first + i * stride);
        }
    }

    // ------------------------------------------------------------------ backward

    /**
     * {@link MhcFused#mhcPreBackwardTokens} with {@code project = 0}: adds the aggregate's and
     * the rms' parts into dx and writes the per-token logit gradients {@code workDz} and
     * projection gradients {@code workDh}; the caller adds {@code dh · phi^T} and the parameter
     * gradients.
     */
    static void preBackward(float[] dx, float[] workDz, float[] workDh, float[] du, float[] dhpost,
                            float[] dhres, float[] x, float[] hpre, float[] hpost, float[] rms, float[] h,
                            float[] zres, float[] alpha, float[] work, int N, int n, int C, int iters) {
        int K = n * C;
        float[] gr = new float[VL];
        for (int r0 = 0; r0 < N; r0 += VL) {
            int G = Math.min(VL, N - r0);
            preBackwardGroup(r0, G, gr, 0, workDz, workDh, du, null, dhpost, dhres, x, hpre, hpost, rms, h, zres, alpha, work,
                    n, C, iters);
            for (int l = 0; l < G; l++) {
                int r = r0 + l;
                addAggregateGrad(dx, x, r * K, du, r * C, hpre, r * n, gr[l], n, C);
            }
        }
    }

    /**
     * One group of {@code G <= VL} tokens from {@code r0}: the coefficient part of
     * {@link #preBackward}, writing workDz, workDh and, per token of the group, the factor
     * {@code gr[grOff + l]} of the rms' part of the streams' gradient ({@code dx[j] += gr x[j]}).
     * {@code duDotX}: the aggregate's dot products {@code du · x[j]} per token when the caller
     * has them, else null.
     */
    static void preBackwardGroup(int r0, int G, float[] gr, int grOff, float[] workDz, float[] workDh, float[] du,
                                 float[] duDotX,
                                 float[] dhpost,
                                 float[] dhres, float[] x, float[] hpre, float[] hpost, float[] rms, float[] h,
                                 float[] zres, float[] alpha, float[] work, int n, int C, int iters) {
        int nn = n * n;
        int M = nn + 2 * n;
        int K = n * C;
        int S = 2 * iters;
        int gOff = 0;                  // (nn, VL) the gradient, in place
        int sOff = nn * VL;            // (max(S,1), nn, VL) the recomputed states
        int maxOff = work.length - 2 * VL;
        int tmpOff = maxOff + VL;
        // dHpre[j] = du · x[j] through the sigmoid; dHpost through its sigmoid; transposes
        for (int l = 0; l < VL; l++) {
            if (l >= G) {
                for (int e = 0; e < nn; e++) {
                    work[gOff + e * VL + l] = 0f;
                    work[sOff + e * VL + l] = 0f;
                }
                work[maxOff + l] = 0f;
                continue;
            }
            int r = r0 + l;
            int ho = r * M;
            for (int j = 0; j < n; j++) {
                float dhp = duDotX != null ? duDotX[r * n + j] : dot(du, r * C, x, r * K + j * C, C, work, tmpOff);
                float sp = hpre[r * n + j];
                workDz[ho + j] = dhp * sp * (1f - sp);
                float sq = hpost[r * n + j];
                workDz[ho + n + j] = dhpost[r * n + j] * sq * (1f - 0.5f * sq);
            }
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < nn; e++) {
                float z = zres[r * nn + e];
                work[sOff + e * VL + l] = z;
                work[gOff + e * VL + l] = dhres[r * nn + e];
                max = Math.max(max, z);
            }
            work[maxOff + l] = max;
        }
        // Sinkhorn-Knopp backward, lane-wise: recompute the states S_0 .. S_{S-1}, then go back
        FloatVector max = FloatVector.fromArray(SP, work, maxOff);
        for (int e = 0; e < nn; e++) {
            int o = sOff + e * VL;
            FloatVector.fromArray(SP, work, o).sub(max).intoArray(work, o);
        }
        expInPlace(work, sOff, nn * VL);
        // each step's reciprocal row or column sums are kept for its backward: (S, n, VL)
        int invOff = sOff + Math.max(S, 1) * nn * VL;
        for (int k = 0; k < S; k++) {
            int src = sOff + k * nn * VL;
            boolean next = k < S - 1; // the last step's output is not needed
            if (n == 4) { // k even: column i from i*VL, its entries 4*VL apart; k odd: row i from 4*i*VL, VL apart
                recordStep4(work, src, k % 2 == 0 ? VL : 4 * VL, k % 2 == 0 ? 4 * VL : VL, invOff + k * 4 * VL, next);
                continue;
            }
            for (int i = 0; i < n; i++) {
                int inv = invOff + (k * n + i) * VL;
                if (k % 2 == 0) {
                    recordStep(work, src, n, i * VL, n * VL, inv, next);
                } else {
                    recordStep(work, src, n, i * n * VL, VL, inv, next);
                }
            }
        }
        for (int k = S - 1; k >= 0; k--) {
            int src = sOff + k * nn * VL;
            if (n == 4) {
                backStep4(work, src, gOff, k % 2 == 0 ? VL : 4 * VL, k % 2 == 0 ? 4 * VL : VL, invOff + k * 4 * VL);
                continue;
            }
            for (int i = 0; i < n; i++) {
                int inv = invOff + (k * n + i) * VL;
                if (k % 2 == 0) {
                    backStep(work, src, gOff, n, i * VL, n * VL, inv);
                } else {
                    backStep(work, src, gOff, n, i * n * VL, VL, inv);
                }
            }
        }
        // dz = g * S_0, minus the max shift at each lane's argmax
        FloatVector shift = FloatVector.zero(SP);
        for (int e = 0; e < nn; e++) {
            int o = gOff + e * VL;
            FloatVector d = FloatVector.fromArray(SP, work, o).mul(FloatVector.fromArray(SP, work, sOff + e * VL));
            d.intoArray(work, o);
            shift = shift.add(d);
        }
        shift.intoArray(work, maxOff);
        for (int l = 0; l < G; l++) {
            int r = r0 + l;
            int ho = r * M;
            int zo = r * nn;
            int arg = 0;
            for (int e = 0; e < nn; e++) {
                workDz[ho + 2 * n + e] = work[gOff + e * VL + l];
                if (zres[zo + e] > zres[zo + arg]) {
                    arg = e;
                }
            }
            workDz[ho + 2 * n + arg] -= work[maxOff + l];
            // through z = alpha h / r + bias: dh and drms
            float inv = 1f / rms[r];
            float dr = 0f;
            for (int m = 0; m < M; m++) {
                float a = m < n ? alpha[0] : (m < 2 * n ? alpha[1] : alpha[2]);
                float dz = workDz[ho + m];
                workDh[ho + m] = dz * a * inv;
                dr -= dz * a * h[ho + m] * inv * inv;
            }
            // the rms' part of dx[j]: drms x[j] / (K r)
            gr[grOff + l] = dr / (K * rms[r]);
        }
    }

    /**
     * One step of Sinkhorn-Knopp at n = 4 on a group, all four rows or columns (row or column i
     * starts at {@code w[src + i*fs]}, its entries {@code st} apart): {@link #recordStep}, or,
     * with {@code inv < 0}, {@link #normalize} in place (the forward), each called with n = 4
     * as a constant so that C2 unrolls their loops over n once inlined. With n a variable the
     * steps took a third more time; the same operations, the same bits.
     */
    private static void recordStep4(float[] w, int src, int fs, int st, int inv, boolean write) {
        for (int i = 0; i < 4; i++) {
            if (inv < 0) {
                normalize(w, src, src, 4, i * fs, st);
            } else {
                recordStep(w, src, 4, i * fs, st, inv + i * VL, write);
            }
        }
    }

    /** {@link #backStep} for the four rows or columns of a step at n = 4, as {@link #recordStep4}. */
    private static void backStep4(float[] w, int src, int gOff, int fs, int st, int inv) {
        for (int i = 0; i < 4; i++) {
            backStep(w, src, gOff, 4, i * fs, st, inv + i * VL);
        }
    }

    /**
     * One normalization of a row or column ({@link #normalize}) in the backward's recomputation:
     * keeps the reciprocal of its sum at {@code w[inv]} and, with {@code write}, writes the
     * normalized entries into the next state ({@code nn*VL} further).
     */
    private static void recordStep(float[] w, int src, int n, int first, int stride, int inv, boolean write) {
        FloatVector s = FloatVector.zero(SP);
        for (int i = 0; i < n; i++) {
            s = s.add(FloatVector.fromArray(SP, w, src + first + i * stride));
        }
        FloatVector r = FloatVector.broadcast(SP, 1f).div(s);
        r.intoArray(w, inv);
        if (write) {
            int dst = src + n * n * VL;
            for (int i = 0; i < n; i++) {
                FloatVector.fromArray(SP, w, src + first + i * stride).mul(r).intoArray(w, dst + first + i * stride);
            }
        }
    }

    /**
     * The backward of one normalization of a row or column (n entries {@code stride} apart from
     * {@code first}): with {@code s = sum src} (its reciprocal at {@code w[inv]}),
     * {@code g = (g - sum(g src / s)) / s}.
     */
    private static void backStep(float[] w, int src, int gOff, int n, int first, int stride, int inv) {
        FloatVector r = FloatVector.fromArray(SP, w, inv);
        FloatVector dot = FloatVector.zero(SP);
        for (int i = 0; i < n; i++) {
            FloatVector g = FloatVector.fromArray(SP, w, gOff + first + i * stride);
            dot = g.mul(FloatVector.fromArray(SP, w, src + first + i * stride)).fma(r, dot);
        }
        for (int i = 0; i < n; i++) {
            int o = gOff + first + i * stride;
            FloatVector.fromArray(SP, w, o).sub(dot).mul(r).intoArray(w, o);
        }
    }

    /** {@code dx[j][c] += w[j] du[c] + gr x[j][c]} for the token's n streams. */
    private static void addAggregateGrad(float[] dx, float[] x, int xo, float[] du, int uo, float[] w, int wo,
                                         float gr, int n, int C) {
        int bound = SP.loopBound(C);
        for (int j = 0; j < n; j++) {
            float wj = w[wo + j];
            int o = xo + j * C;
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector t = FloatVector.fromArray(SP, x, o + c).mul(gr);
                t = FloatVector.fromArray(SP, du, uo + c).fma(FloatVector.broadcast(SP, wj), t);
                FloatVector.fromArray(SP, dx, o + c).add(t).intoArray(dx, o + c);
            }
            for (; c < C; c++) {
                dx[o + c] += Math.fma(du[uo + c], wj, x[o + c] * gr);
            }
        }
    }

    // ------------------------------------------------------------------ across two sublayers

    /*
     * The stream state between two sublayers is written by one sublayer's mix and read right
     * away by the next sublayer's connection; in the backward, the stream gradient that one
     * connection completes is read right away by the previous mix. Done as separate passes, each
     * reads and writes the n*C floats per token from memory. The two kernels below do both
     * halves per group of FastGemm.GROUP tokens instead, while the group's rows are in cache,
     * including the projection (h = v · phi, dv += dh · phi^T) on those rows. They compute the
     * same FMA chains as the separate passes (the same bits), in another order of tokens.
     */

    /**
     * {@link #mixForward} after sublayer l, then the connection before sublayer l+1
     * ({@link #projectPreForward}) on the streams just written.
     * {@code phiPanels}: phi packed by {@link FastGemm#packPanels}, or phi itself where
     * {@link #projectionInPlace}.
     */
    static void mixPreForward(float[] xout, float[] x, float[] hres, float[] hpost, float[] y,
                              float[] u, float[] hpreN, float[] hpostN, float[] hresN, float[] zresN, float[] rmsN,
                              float[] hN, float[] phiPanels, float[] alpha, float[] bias,
                              float[] work, float[] aPad, float[] tile, int N, int n, int C, int iters) {
        mixPreForward(xout, x, hres, hpost, y, u, hpreN, hpostN, hresN, zresN, rmsN, hN, phiPanels, alpha, bias,
                work, aPad, tile, 0, N, n, C, iters);
    }

    /**
     * {@link #mixPreForward} for tokens {@code from .. to-1} ({@code from} a multiple of
     * {@link #TOKEN_BLOCK}): every token's values are computed alone, so ranges can run on
     * different threads (each with its own {@code work}, {@code aPad} and {@code tile}) with the
     * same bits.
     */
    static void mixPreForward(float[] xout, float[] x, float[] hres, float[] hpost, float[] y,
                              float[] u, float[] hpreN, float[] hpostN, float[] hresN, float[] zresN, float[] rmsN,
                              float[] hN, float[] phiPanels, float[] alpha, float[] bias,
                              float[] work, float[] aPad, float[] tile, int from, int to, int n, int C, int iters) {
        for (int r0 = from; r0 < to; r0 += FastGemm.GROUP) {
            int G = Math.min(FastGemm.GROUP, to - r0);
            for (int r = r0; r < r0 + G; r++) {
                mixToken(r, xout, x, hres, hpost, y, n, C);
            }
            projectPreGroup(r0, G, u, hpreN, hpostN, hresN, zresN, rmsN, hN, xout, phiPanels, alpha, bias, work, aPad,
                    tile, n, C, iters);
        }
    }

    /**
     * The whole backward of the connection around sublayer l ({@code Ops.mhcBackward}) in one
     * sweep over the tokens, each token's rows used while they are in cache. Per vector of VL
     * tokens: the coefficient gradients of the mix ({@link #mixCoeffGradToken}; at n = 4 with
     * the aggregate's dot products), the coefficient backward ({@link #preBackwardGroup}, on
     * the whole vector of tokens) and, every {@link #DPHI_TOKENS} tokens, the projection's weight
     * gradient accumulated transposed, {@code dphiT += dh^T x} ({@link FastGemm#addTransposedProduct});
     * then, for each row group
     * ({@link FastGemm#GROUP} tokens) whose tokens are all done so far: the streams' gradient
     * {@code dx = Hres^T dxout + Hpre du + gr x} written once ({@link #streamGradToken}),
     * {@code dx += dh · phi^T}, and, with {@code hpostPrev}, the previous sublayer's
     * {@code dyPrev = sum_i hpostPrev[i] dx[i]}. The stream part reads a token's rows at most VL + GROUP tokens (28 with 16 lanes)
     * after they were first read (1.1 MB of streams at n*C = 4096, within the L2 cache), so
     * x and dxout come from memory once and dx is written once; the dphiT update reads x rows
     * up to DPHI_TOKENS tokens back (x only, 48 rows). (Steps of 48 tokens, the
     * coefficient part of all 48 before the stream part, spilled the L2 cache at width 1024.)
     * dx may be dxout itself: a token's dxout is read (the dot products) before its dx is
     * written, so dx goes into cache lines just read instead of a second array that has to come
     * from memory first ({@link #streamGradToken4} at n = 4, else from a copy of the token's
     * dxout rows). {@code phiTPanels}: phi^T packed by {@link FastGemm#packPanels};
     * {@code dphiT}: (projRows(M), nC), added to by this call; {@code dhGroup}: DPHI_TOKENS *
     * projRows(M) floats of scratch. The caller adds dphiT to dphi and the coefficient
     * parameters' gradients from workDh and workDz.
     */
    static void backward(float[] dx, float[] dyPrev, float[] workDz, float[] workDh, float[] dhpost, float[] dhres,
                         float[] dphiT, float[] dhGroup,
                         float[] dxout, float[] du, float[] x, float[] y, float[] hpre, float[] hpost, float[] hres,
                         float[] rms, float[] h, float[] zres, float[] alpha, float[] phiTPanels, float[] hpostPrev,
                         float[] work, float[] aPad, float[] tile, int N, int n, int C, int iters) {
        backward(dx, dyPrev, workDz, workDh, dhpost, dhres, dphiT, dhGroup, dxout, du, x, y, hpre, hpost, hres, rms, h,
                zres, alpha, phiTPanels, hpostPrev, work, aPad, tile, 0, N, n, C, iters);
    }

    /**
     * {@link #backward} for tokens {@code from .. to-1} ({@code from} a multiple of
     * {@link #TOKEN_BLOCK}). With {@code dphiT} null it leaves out the projection's weight
     * gradient, the one part that sums over the tokens: then ranges can run on different
     * threads (each with its own scratch) with the same bits, and {@link #dphiColumns} adds that
     * gradient afterwards.
     */
    static void backward(float[] dx, float[] dyPrev, float[] workDz, float[] workDh, float[] dhpost, float[] dhres,
                         float[] dphiT, float[] dhGroup,
                         float[] dxout, float[] du, float[] x, float[] y, float[] hpre, float[] hpost, float[] hres,
                         float[] rms, float[] h, float[] zres, float[] alpha, float[] phiTPanels, float[] hpostPrev,
                         float[] work, float[] aPad, float[] tile, int from, int to, int n, int C, int iters) {
        int K = n * C;
        int M = n * n + 2 * n;
        int Mp = projRows(M);
        float[] gr = new float[to];
        float[] tokenCopy = dx == dxout && n != 4 ? new float[K] : null;
        float[] lanes = new float[(n * n + 2 * n) * VL];
        float[] duDotX = n == 4 ? new float[to * n] : null;
        if (dphiT != null) {
            java.util.Arrays.fill(dhGroup, 0f); // the padding columns M..Mp stay zero
        }
        int done = from;     // tokens whose stream gradient is complete
        int dphiDone = from; // tokens in dphiT
        for (int g0 = from; g0 < to; g0 += VL) {
            int gEnd = Math.min(g0 + VL, to);
            for (int r = g0; r < gEnd; r++) {
                if (n == 4) {
                    coeffGradToken4(r, dhres, dhpost, duDotX, dxout, x, y, du, lanes, C);
                } else {
                    mixCoeffGradToken(r, dhres, dhpost, dxout, x, y, lanes, n, C);
                }
            }
            preBackwardGroup(g0, gEnd - g0, gr, g0, workDz, workDh, du, duDotX, dhpost, dhres, x,
                    hpre, hpost, rms, h, zres, alpha, work, n, C, iters);
            if (dphiT != null) {
                for (int r = g0; r < gEnd; r++) {
                    System.arraycopy(workDh, r * M, dhGroup, (r - dphiDone) * Mp, M);
                }
                if (gEnd - dphiDone == DPHI_TOKENS || gEnd == to) {
                    FastGemm.addTransposedProduct(gEnd - dphiDone, Mp, K, dhGroup, 0, Mp, x, dphiDone * K, K, dphiT, 0, K);
                    dphiDone = gEnd;
                }
            }
            // the streams' gradient on FastGemm's row groups, as far as the tokens are ready
            while (done < gEnd && (done + FastGemm.GROUP <= gEnd || gEnd == to)) {
                int r0 = done;
                int G = Math.min(FastGemm.GROUP, gEnd - r0);
                for (int r = r0; r < r0 + G; r++) {
                    if (dx != dxout) {
                        streamGradToken(r, dx, dxout, r * K, x, du, hres, hpre, gr[r], n, C);
                    } else if (n == 4) {
                        streamGradToken4(r, dx, dxout, x, du, hres, hpre, gr[r], C);
                    } else {
                        System.arraycopy(dxout, r * K, tokenCopy, 0, K);
                        streamGradToken(r, dx, tokenCopy, 0, x, du, hres, hpre, gr[r], n, C);
                    }
                }
                FastGemm.rowsTimesPanels(G, M, workDh, r0 * M, M, phiTPanels, K, dx, r0 * K, K, true, aPad, tile);
                if (hpostPrev != null) {
                    for (int r = r0; r < r0 + G; r++) {
                        outputGradToken(r, dyPrev, dx, hpostPrev, false, n, C);
                    }
                }
                done += G;
            }
        }
    }

    /**
     * {@code Mhc.mhcCoeffParamBackward} with its sums in its order (the same bits), in one pass
     * over the tokens: the M bias sums advance side by side (vectorized across m), the three
     * alpha sums too, and each token's {@code 1 / r} is computed once. The plain kernel runs
     * the M + 3 sums one after another, each a chain of dependent adds over all tokens.
     */
    static void coeffParamBackward(float[] dalpha, float[] dbias, float[] workDz, float[] h, float[] rms, int N, int n) {
        int M = n * n + 2 * n;
        int bound = SP.loopBound(M);
        float[] sb = new float[M];
        float s0 = 0f, s1 = 0f, s2 = 0f;
        for (int r = 0; r < N; r++) {
            int o = r * M;
            int m = 0;
            for (; m < bound; m += VL) {
                FloatVector.fromArray(SP, sb, m).add(FloatVector.fromArray(SP, workDz, o + m)).intoArray(sb, m);
            }
            for (; m < M; m++) {
                sb[m] += workDz[o + m];
            }
            float inv = 1f / rms[r];
            for (m = 0; m < n; m++) {
                s0 += workDz[o + m] * h[o + m] * inv;
            }
            for (; m < 2 * n; m++) {
                s1 += workDz[o + m] * h[o + m] * inv;
            }
            for (; m < M; m++) {
                s2 += workDz[o + m] * h[o + m] * inv;
            }
        }
        for (int m = 0; m < M; m++) {
            dbias[m] += sb[m];
        }
        dalpha[0] += s0;
        dalpha[1] += s1;
        dalpha[2] += s2;
    }

    /**
     * {@code dphi[k][m] += dphiT[m][k]} for dphi (K x M) and dphiT (M x K), the same additions
     * (the same bits) in either form:
     * <ul>
     *   <li>with scatter stores (16 lanes: AVX-512), per VL values of k one vector of a row of
     *       dphiT gathered, added and scattered into a column of dphi (a third of the time of
     *       the plain transposed loop, whose reads or writes stride by a whole row);</li>
     *   <li>else (AVX2 has gathers but no scatter: the Vector API's scatter runs as a Java loop
     *       there, about as slow as the whole coefficient backward) in scalar blocks of
     *       {@link #TRANSPOSE_BLOCK} values of k: the block's rows of dphi (32 x M floats) stay
     *       in L1 while each row of dphiT is read in runs of 32.</li>
     * </ul>
     */
    static void addTransposed(float[] dphi, float[] dphiT, int K, int M) {
        int k0 = 0;
        if (VL >= 16) {
            int[] idx = FastGemm.gatherIndex(M);
            for (int bound = SP.loopBound(K); k0 < bound; k0 += VL) {
                for (int m = 0; m < M; m++) {
                    FloatVector v = FloatVector.fromArray(SP, dphiT, m * K + k0);
                    FloatVector.fromArray(SP, dphi, k0 * M + m, idx, 0).add(v).intoArray(dphi, k0 * M + m, idx, 0);
                }
            }
        }
        for (; k0 < K; k0 += TRANSPOSE_BLOCK) {
            int k1 = Math.min(K, k0 + TRANSPOSE_BLOCK);
            for (int m = 0; m < M; m++) {
                int src = m * K;
                for (int k = k0; k < k1; k++) {
                    dphi[k * M + m] += dphiT[src + k];
                }
            }
        }
    }

    /** Values of k per block of {@link #addTransposed}'s scalar form. */
    private static final int TRANSPOSE_BLOCK = 32;

    /**
     * Whether the forward's projection {@code h = v · phi} reads phi in place
     * ({@link FastGemm#rowsTimesThreeVectors}): with 8 lanes (AVX2) at n = 4, where M = 24 is
     * three vectors and the panels of 16 would compute 8 columns of padding.
     */
    static boolean projectionInPlace(int M) {
        return VL == 8 && M == 3 * VL;
    }

    /**
     * Tokens per update of the projection's weight gradient in {@link #backward} (a multiple of
     * VL for 4, 8 and 16 lanes): each update reads and writes all of dphiT (M x nC), which at 16
     * tokens cost more than the tokens' x rows it reads (AVX-512). On AVX2 (8 lanes), 48 tokens
     * against 24: the whole backward 3% faster at C = 256 and 3% at C = 1024 (alternated in one
     * JVM); 64 and 96 were no better at C = 256.
     */
    static final int DPHI_TOKENS = 48;

    /**
     * Tokens per task when a call's tokens are split over threads: a multiple of VL (4, 8 or
     * 16), of {@link FastGemm#GROUP} (4, 8 or 12) and of {@link #DPHI_TOKENS}, so that every
     * vector of tokens, row group and update of phi's gradient is the same as on one thread.
     */
    static final int TOKEN_BLOCK = 48;

    /**
     * The projection's weight gradient of {@link #backward} ({@code dphiT += dh^T x} over all N
     * tokens, in the same steps of {@link #DPHI_TOKENS} tokens) for the columns {@code j0 .. j1-1}
     * of dphiT only: each element is the same FMA chain over the tokens as in the one-thread
     * sweep, so column ranges can run on different threads with the same bits. {@code dhGroup}:
     * DPHI_TOKENS * projRows(M) floats of scratch.
     */
    static void dphiColumns(float[] dphiT, float[] workDh, float[] x, float[] dhGroup, int N, int n, int C, int j0, int j1) {
        int K = n * C;
        int M = n * n + 2 * n;
        int Mp = projRows(M);
        java.util.Arrays.fill(dhGroup, 0f); // the padding columns M..Mp stay zero
        for (int c0 = 0; c0 < N; c0 += DPHI_TOKENS) {
            int rows = Math.min(DPHI_TOKENS, N - c0);
            for (int r = 0; r < rows; r++) {
                System.arraycopy(workDh, (c0 + r) * M, dhGroup, r * Mp, M);
            }
            FastGemm.addTransposedProduct(rows, Mp, j1 - j0, dhGroup, 0, Mp, x, c0 * K + j0, K, dphiT, j0, K);
        }
    }

    /** Rows of the transposed projection gradient that {@link #backward} accumulates: M rounded up to FastGemm's micro-tile rows. */
    static int projRows(int M) {
        return (M + FastGemm.MR - 1) / FastGemm.MR * FastGemm.MR;
    }

    // ------------------------------------------------------------------ the mix after the sublayer

    /** {@link Streams#mixForward}: {@code xout[i] = hpost[i] y + sum_j hres[i][j] x[j]} per token. */
    static void mixForward(float[] xout, float[] x, float[] hres, float[] hpost, float[] y, int N, int n, int C) {
        for (int r = 0; r < N; r++) {
            mixToken(r, xout, x, hres, hpost, y, n, C);
        }
    }

    /** Token {@code r} of {@link #mixForward}. */
    static void mixToken(int r, float[] xout, float[] x, float[] hres, float[] hpost, float[] y, int n, int C) {
        if (n == 4) {
            mixToken4(r, xout, x, hres, hpost, y, C);
            return;
        }
        int bound = SP.loopBound(C);
        int yo = r * C;
        int xo = r * n * C;
        for (int i = 0; i < n; i++) {
            int oo = xo + i * C;
            float hp = hpost[r * n + i];
            int ho = (r * n + i) * n;
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector acc = FloatVector.fromArray(SP, y, yo + c).mul(hp);
                for (int j = 0; j < n; j++) {
                    acc = FloatVector.fromArray(SP, x, xo + j * C + c).fma(FloatVector.broadcast(SP, hres[ho + j]), acc);
                }
                acc.intoArray(xout, oo + c);
            }
            for (; c < C; c++) {
                float acc = y[yo + c] * hp;
                for (int j = 0; j < n; j++) {
                    acc = Math.fma(x[xo + j * C + c], hres[ho + j], acc);
                }
                xout[oo + c] = acc;
            }
        }
    }

    /**
     * {@link #mixToken} at n = 4, written out: the four input rows at fixed offsets, so C2 checks
     * their loads once per call (in the loop over j their index was not a fixed offset plus c),
     * and each output row's weights broadcast once instead of on every vector. The same
     * operations in the same order. The mix at 256 tokens, caches flushed first, alternated in
     * one JVM (AVX2): 184 -> 84 us at C = 256, 683 -> 344 us at C = 1024.
     */
    private static void mixToken4(int r, float[] xout, float[] x, float[] hres, float[] hpost, float[] y, int C) {
        int bound = SP.loopBound(C);
        int yo = r * C;
        int x0 = r * 4 * C, x1 = x0 + C, x2 = x1 + C, x3 = x2 + C;
        for (int i = 0; i < 4; i++) {
            int oo = x0 + i * C;
            float hp = hpost[r * 4 + i];
            int ho = (r * 4 + i) * 4;
            float h0 = hres[ho], h1 = hres[ho + 1], h2 = hres[ho + 2], h3 = hres[ho + 3];
            FloatVector w0 = FloatVector.broadcast(SP, h0), w1 = FloatVector.broadcast(SP, h1);
            FloatVector w2 = FloatVector.broadcast(SP, h2), w3 = FloatVector.broadcast(SP, h3);
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector acc = FloatVector.fromArray(SP, y, yo + c).mul(hp);
                acc = FloatVector.fromArray(SP, x, x0 + c).fma(w0, acc);
                acc = FloatVector.fromArray(SP, x, x1 + c).fma(w1, acc);
                acc = FloatVector.fromArray(SP, x, x2 + c).fma(w2, acc);
                acc = FloatVector.fromArray(SP, x, x3 + c).fma(w3, acc);
                acc.intoArray(xout, oo + c);
            }
            for (; c < C; c++) {
                float acc = y[yo + c] * hp;
                acc = Math.fma(x[x0 + c], h0, acc);
                acc = Math.fma(x[x1 + c], h1, acc);
                acc = Math.fma(x[x2 + c], h2, acc);
                acc = Math.fma(x[x3 + c], h3, acc);
                xout[oo + c] = acc;
            }
        }
    }

    /**
     * Both halves of the mix's backward in one pass per token, overwriting its outputs (see
     * {@code Ops.mixBackward}): {@link Streams#mixBackwardStreams} ({@code dy = sum_i hpost[i] dxout[i]},
     * {@code dx[j] = sum_i hres[i][j] dxout[i]}) and, when {@code coeffs},
     * {@link Streams#mixBackwardCoeffs} ({@code dhres[i][j] = dxout[i] · x[j]},
     * {@code dhpost[i] = dxout[i] · y}). The token's dxout, x and y are read from memory once,
     * and dx and dy are written without being read. {@code tmp}: {@code (n*n + n) * VL} floats.
     */
    static void mixBackward(float[] dx, float[] dy, float[] dhres, float[] dhpost, float[] dxout, float[] x,
                            float[] hres, float[] hpost, float[] y, boolean coeffs, float[] tmp,
                            int N, int n, int C) {
        for (int r = 0; r < N; r++) {
            mixBackwardToken(r, dx, dy, dhres, dhpost, dxout, x, hres, hpost, y, coeffs, tmp, n, C);
        }
    }

    /** Token {@code r} of {@link #mixBackward}. */
    static void mixBackwardToken(int r, float[] dx, float[] dy, float[] dhres, float[] dhpost, float[] dxout, float[] x,
                                 float[] hres, float[] hpost, float[] y, boolean coeffs, float[] tmp, int n, int C) {
        outputGradToken(r, dy, dxout, hpost, false, n, C);
        streamGradToken(r, dx, dxout, r * n * C, null, null, hres, null, 0f, n, C);
        if (coeffs) {
            mixCoeffGradToken(r, dhres, dhpost, dxout, x, y, tmp, n, C);
        }
    }

    /** {@link Streams#mixBackwardOutput}: {@code dy += sum_i hpost[i] dxout[i]} per token. */
    static void mixBackwardOutput(float[] dy, float[] dxout, float[] hpost, int N, int n, int C) {
        for (int r = 0; r < N; r++) {
            outputGradToken(r, dy, dxout, hpost, true, n, C);
        }
    }

    /**
     * Token {@code r} of the mix's backward for its output: {@code dy = sum_i hpost[i] dxout[i]},
     * overwriting, or with {@code add}, added to dy.
     */
    static void outputGradToken(int r, float[] dy, float[] dxout, float[] hpost, boolean add, int n, int C) {
        int bound = SP.loopBound(C);
        int yo = r * C;
        int xo = r * n * C;
        int c = 0;
        if (n == 4) { // written out as mixToken4, for the same reasons
            int x1 = xo + C, x2 = x1 + C, x3 = x2 + C;
            float h0 = hpost[r * 4];
            FloatVector w1 = FloatVector.broadcast(SP, hpost[r * 4 + 1]), w2 = FloatVector.broadcast(SP, hpost[r * 4 + 2]),
                    w3 = FloatVector.broadcast(SP, hpost[r * 4 + 3]);
            for (; c < bound; c += VL) {
                FloatVector acc = FloatVector.fromArray(SP, dxout, xo + c).mul(h0);
                acc = FloatVector.fromArray(SP, dxout, x1 + c).fma(w1, acc);
                acc = FloatVector.fromArray(SP, dxout, x2 + c).fma(w2, acc);
                acc = FloatVector.fromArray(SP, dxout, x3 + c).fma(w3, acc);
                (add ? FloatVector.fromArray(SP, dy, yo + c).add(acc) : acc).intoArray(dy, yo + c);
            }
        }
        for (; c < bound; c += VL) {
            FloatVector acc = FloatVector.fromArray(SP, dxout, xo + c).mul(hpost[r * n]);
            for (int i = 1; i < n; i++) {
                acc = FloatVector.fromArray(SP, dxout, xo + i * C + c).fma(FloatVector.broadcast(SP, hpost[r * n + i]), acc);
            }
            (add ? FloatVector.fromArray(SP, dy, yo + c).add(acc) : acc).intoArray(dy, yo + c);
        }
        for (; c < C; c++) {
            float acc = dxout[xo + c] * hpost[r * n];
            for (int i = 1; i < n; i++) {
                acc = Math.fma(dxout[xo + i * C + c], hpost[r * n + i], acc);
            }
            dy[yo + c] = add ? dy[yo + c] + acc : acc;
        }
    }

    /**
     * Token {@code r}'s stream gradient, overwriting: the mix's part {@code dx[j] = sum_i hres[i][j] dxout[i]}
     * (the token's dxout rows at {@code dxout[dxo..dxo + n*C)}) and, with {@code du} (else null),
     * the aggregate's and the rms' parts of the connection before the sublayer added to it:
     * {@code + (hpre[j] du + gr x[j])}. One output stream at a time: writing the four streams
     * side by side per column vector (dxout loaded once) was faster with everything in cache
     * but 20% slower on the whole backward where dx is a second array, which has to come from
     * memory; the same held for the mix forward ({@link #streamGradToken4} is that form, for
     * dx written over dxout).
     */
    static void streamGradToken(int r, float[] dx, float[] dxout, int dxo, float[] x, float[] du, float[] hres,
                                float[] hpre, float gr, int n, int C) {
        int bound = SP.loopBound(C);
        int yo = r * C;
        int xo = r * n * C;
        int ho = r * n * n;
        for (int j = 0; j < n; j++) {
            int o = xo + j * C;
            float wj = du == null ? 0f : hpre[r * n + j];
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector acc = FloatVector.fromArray(SP, dxout, dxo + c).mul(hres[ho + j]);
                for (int i = 1; i < n; i++) {
                    acc = FloatVector.fromArray(SP, dxout, dxo + i * C + c).fma(FloatVector.broadcast(SP, hres[ho + i * n + j]), acc);
                }
                if (du != null) {
                    FloatVector t = FloatVector.fromArray(SP, x, o + c).mul(gr);
                    acc = acc.add(FloatVector.fromArray(SP, du, yo + c).fma(FloatVector.broadcast(SP, wj), t));
                }
                acc.intoArray(dx, o + c);
            }
            for (; c < C; c++) {
                float acc = dxout[dxo + c] * hres[ho + j];
                for (int i = 1; i < n; i++) {
                    acc = Math.fma(dxout[dxo + i * C + c], hres[ho + i * n + j], acc);
                }
                dx[o + c] = du == null ? acc : acc + Math.fma(du[yo + c], wj, x[o + c] * gr);
            }
        }
    }

    /**
     * {@link #streamGradToken} with {@code du} at n = 4, the four output streams side by side:
     * per vector of columns, the four dxout vectors are loaded before any output is stored, so
     * dx may be dxout itself (the backward in place). The same operations per element (the
     * same bits).
     */
    private static void streamGradToken4(int r, float[] dx, float[] dxout, float[] x, float[] du, float[] hres,
                                         float[] hpre, float gr, int C) {
        int bound = SP.loopBound(C);
        int yo = r * C;
        int o0 = r * 4 * C, o1 = o0 + C, o2 = o1 + C, o3 = o2 + C;
        int ho = r * 16;
        FloatVector h00 = FloatVector.broadcast(SP, hres[ho]), h01 = FloatVector.broadcast(SP, hres[ho + 1]),
                h02 = FloatVector.broadcast(SP, hres[ho + 2]), h03 = FloatVector.broadcast(SP, hres[ho + 3]),
                h10 = FloatVector.broadcast(SP, hres[ho + 4]), h11 = FloatVector.broadcast(SP, hres[ho + 5]),
                h12 = FloatVector.broadcast(SP, hres[ho + 6]), h13 = FloatVector.broadcast(SP, hres[ho + 7]),
                h20 = FloatVector.broadcast(SP, hres[ho + 8]), h21 = FloatVector.broadcast(SP, hres[ho + 9]),
                h22 = FloatVector.broadcast(SP, hres[ho + 10]), h23 = FloatVector.broadcast(SP, hres[ho + 11]),
                h30 = FloatVector.broadcast(SP, hres[ho + 12]), h31 = FloatVector.broadcast(SP, hres[ho + 13]),
                h32 = FloatVector.broadcast(SP, hres[ho + 14]), h33 = FloatVector.broadcast(SP, hres[ho + 15]);
        FloatVector w0 = FloatVector.broadcast(SP, hpre[r * 4]), w1 = FloatVector.broadcast(SP, hpre[r * 4 + 1]),
                w2 = FloatVector.broadcast(SP, hpre[r * 4 + 2]), w3 = FloatVector.broadcast(SP, hpre[r * 4 + 3]);
        for (int c = 0; c < bound; c += VL) {
            FloatVector d0 = FloatVector.fromArray(SP, dxout, o0 + c);
            FloatVector d1 = FloatVector.fromArray(SP, dxout, o1 + c);
            FloatVector d2 = FloatVector.fromArray(SP, dxout, o2 + c);
            FloatVector d3 = FloatVector.fromArray(SP, dxout, o3 + c);
            FloatVector u = FloatVector.fromArray(SP, du, yo + c);
            FloatVector a0 = d3.fma(h30, d2.fma(h20, d1.fma(h10, d0.mul(h00))));
            FloatVector a1 = d3.fma(h31, d2.fma(h21, d1.fma(h11, d0.mul(h01))));
            FloatVector a2 = d3.fma(h32, d2.fma(h22, d1.fma(h12, d0.mul(h02))));
            FloatVector a3 = d3.fma(h33, d2.fma(h23, d1.fma(h13, d0.mul(h03))));
            a0.add(u.fma(w0, FloatVector.fromArray(SP, x, o0 + c).mul(gr))).intoArray(dx, o0 + c);
            a1.add(u.fma(w1, FloatVector.fromArray(SP, x, o1 + c).mul(gr))).intoArray(dx, o1 + c);
            a2.add(u.fma(w2, FloatVector.fromArray(SP, x, o2 + c).mul(gr))).intoArray(dx, o2 + c);
            a3.add(u.fma(w3, FloatVector.fromArray(SP, x, o3 + c).mul(gr))).intoArray(dx, o3 + c);
        }
        for (int c = bound; c < C; c++) {
            float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
            for (int j = 0; j < 4; j++) {
                float acc = dxout[o0 + c] * hres[ho + j];
                for (int i = 1; i < 4; i++) {
                    acc = Math.fma(dxout[o0 + i * C + c], hres[ho + i * 4 + j], acc);
                }
                acc += Math.fma(du[yo + c], hpre[r * 4 + j], x[o0 + j * C + c] * gr);
                switch (j) {
                    case 0 -> a0 = acc;
                    case 1 -> a1 = acc;
                    case 2 -> a2 = acc;
                    default -> a3 = acc;
                }
            }
            dx[o0 + c] = a0;
            dx[o1 + c] = a1;
            dx[o2 + c] = a2;
            dx[o3 + c] = a3;
        }
    }

    /**
     * {@link #mixCoeffGradToken} at n = 4 and, with {@code du} (else null), the aggregate's
     * {@code duDotX[j] = du · x[j]}: the 20 or 24 dot products in one sweep over the columns (one
     * accumulator each; each vector of dxout, x, y and du loaded once instead of 4 or 5 times),
     * then each one's lanes added in lane order, as {@link #dot} does (the same bits).
     * {@code tmp}: 24 * VL floats with du, 20 * VL without.
     */
    private static void coeffGradToken4(int r, float[] dhres, float[] dhpost, float[] duDotX, float[] dxout,
                                        float[] x, float[] y, float[] du, float[] tmp, int C) {
        int bound = SP.loopBound(C);
        int yo = r * C;
        int o0 = r * 4 * C, o1 = o0 + C, o2 = o1 + C, o3 = o2 + C;
        FloatVector z = FloatVector.zero(SP);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
        FloatVector a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
        FloatVector p0 = z, p1 = z, p2 = z, p3 = z, q0 = z, q1 = z, q2 = z, q3 = z;
        boolean withDu = du != null;
        for (int c = 0; c < bound; c += VL) {
            FloatVector d0 = FloatVector.fromArray(SP, dxout, o0 + c);
            FloatVector d1 = FloatVector.fromArray(SP, dxout, o1 + c);
            FloatVector d2 = FloatVector.fromArray(SP, dxout, o2 + c);
            FloatVector d3 = FloatVector.fromArray(SP, dxout, o3 + c);
            FloatVector u = withDu ? FloatVector.fromArray(SP, du, yo + c) : z;
            FloatVector v = FloatVector.fromArray(SP, y, yo + c);
            p0 = d0.fma(v, p0);
            p1 = d1.fma(v, p1);
            p2 = d2.fma(v, p2);
            p3 = d3.fma(v, p3);
            v = FloatVector.fromArray(SP, x, o0 + c);
            a00 = d0.fma(v, a00);
            a10 = d1.fma(v, a10);
            a20 = d2.fma(v, a20);
            a30 = d3.fma(v, a30);
            q0 = u.fma(v, q0);
            v = FloatVector.fromArray(SP, x, o1 + c);
            a01 = d0.fma(v, a01);
            a11 = d1.fma(v, a11);
            a21 = d2.fma(v, a21);
            a31 = d3.fma(v, a31);
            q1 = u.fma(v, q1);
            v = FloatVector.fromArray(SP, x, o2 + c);
            a02 = d0.fma(v, a02);
            a12 = d1.fma(v, a12);
            a22 = d2.fma(v, a22);
            a32 = d3.fma(v, a32);
            q2 = u.fma(v, q2);
            v = FloatVector.fromArray(SP, x, o3 + c);
            a03 = d0.fma(v, a03);
            a13 = d1.fma(v, a13);
            a23 = d2.fma(v, a23);
            a33 = d3.fma(v, a33);
            q3 = u.fma(v, q3);
        }
        // tmp rows: dhres (i, j) at 4i+j, dhpost i at 16+i, du · x[j] at 20+j
        a00.intoArray(tmp, 0);
        a01.intoArray(tmp, VL);
        a02.intoArray(tmp, 2 * VL);
        a03.intoArray(tmp, 3 * VL);
        a10.intoArray(tmp, 4 * VL);
        a11.intoArray(tmp, 5 * VL);
        a12.intoArray(tmp, 6 * VL);
        a13.intoArray(tmp, 7 * VL);
        a20.intoArray(tmp, 8 * VL);
        a21.intoArray(tmp, 9 * VL);
        a22.intoArray(tmp, 10 * VL);
        a23.intoArray(tmp, 11 * VL);
        a30.intoArray(tmp, 12 * VL);
        a31.intoArray(tmp, 13 * VL);
        a32.intoArray(tmp, 14 * VL);
        a33.intoArray(tmp, 15 * VL);
        p0.intoArray(tmp, 16 * VL);
        p1.intoArray(tmp, 17 * VL);
        p2.intoArray(tmp, 18 * VL);
        p3.intoArray(tmp, 19 * VL);
        if (withDu) {
            q0.intoArray(tmp, 20 * VL);
            q1.intoArray(tmp, 21 * VL);
            q2.intoArray(tmp, 22 * VL);
            q3.intoArray(tmp, 23 * VL);
        }
        for (int e = 0; e < (withDu ? 24 : 20); e++) {
            float sum = 0f;
            for (int l = 0; l < VL; l++) {
                sum += tmp[e * VL + l];
            }
            float[] a = e < 20 ? dxout : du;
            int ao = e < 16 ? o0 + e / 4 * C : (e < 20 ? o0 + (e - 16) * C : yo);
            float[] b = e < 16 || e >= 20 ? x : y;
            int bo = e < 16 ? o0 + e % 4 * C : (e < 20 ? yo : o0 + (e - 20) * C);
            for (int c = bound; c < C; c++) {
                sum = Math.fma(a[ao + c], b[bo + c], sum);
            }
            if (e < 16) {
                dhres[r * 16 + e] = sum;
            } else if (e < 20) {
                dhpost[r * 4 + e - 16] = sum;
            } else {
                duDotX[r * 4 + e - 20] = sum;
            }
        }
    }

    /**
     * Token {@code r} of the mix's backward for its coefficients: {@code dhres[i][j] = dxout[i] · x[j]},
     * {@code dhpost[i] = dxout[i] · y}. {@code tmp}: {@code (n*n + n) * VL} floats.
     */
    static void mixCoeffGradToken(int r, float[] dhres, float[] dhpost, float[] dxout, float[] x, float[] y,
                                  float[] tmp, int n, int C) {
        int yo = r * C;
        int xo = r * n * C;
        int ho = r * n * n;
        if (n == 4) {
            coeffGradToken4(r, dhres, dhpost, null, dxout, x, y, null, tmp, C);
            return;
        }
        for (int i = 0; i < n; i++) {
            int go = xo + i * C;
            dhpost[r * n + i] = dot(dxout, go, y, yo, C, tmp, 0);
            for (int j = 0; j < n; j++) {
                dhres[ho + i * n + j] = dot(dxout, go, x, xo + j * C, C, tmp, 0);
            }
        }
    }
}
