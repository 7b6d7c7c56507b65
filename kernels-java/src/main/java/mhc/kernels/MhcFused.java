package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * Fused mHC connection kernels (MODEL.md, "mhc"): the same math as the plain composition
 * {@link Mhc#rmsForward} + {@link Matmul} + {@link Mhc#mhcCoeffForward} + {@link Sinkhorn} +
 * {@link Streams#aggregateForward} and its backward, with everything that belongs to one token
 * done in one pass over that token's n*C stream entries (which stay in the L1 cache), in the
 * spirit of the mHC paper's fused kernels.
 *
 * <p>Per token, with M = n*n + 2n and K = n*C:
 * <pre>
 *   forward  : r = rms(v); h = v · phi (a K x M GEMV); Hpre, Hpost (sigmoids); zres; Hres = sinkhorn(zres)
 *              in place in the token's slice of hres; u = sum_j Hpre[j] x[j]
 *   backward : dHpre = du · x[j]; through the sigmoids; Sinkhorn backward by recomputing its
 *              2*iters steps from zres in the token's scratch slice; dh, drms;
 *              dx += Hpre[j] du + drms x / (K r) + dh · phi^T    (on the token's dx slice, in L1)
 * </pre>
 * The parameter gradients are sums over tokens, so they are separate kernels, parallel over
 * blocks of parameter entries (no two tasks write the same entry): {@link #mhcPhiBackward} for
 * {@code dphi += v^T dh} and the plain {@link Mhc#mhcCoeffParamBackward} for {@code dalpha, dbias}.
 *
 * <p>The forward keeps for the backward exactly what the plain one keeps: Hpre, Hpost, Hres
 * (used by the mix as well), rms, h and zres. zres (n*n per token) is kept because the
 * backward of the connection group is not given {@code bias}; the Sinkhorn intermediates
 * (2*iters n x n matrices per token) are never kept.
 *
 * <p>Long dot products use four partial sums (instruction-level parallelism; the JIT does not
 * reorder float sums), so results agree with the plain kernels to float rounding, not bit for bit.
 *
 * <p>The mix after the sublayer ({@link Streams#mixForward}) already applies Hres and Hpost in
 * one pass. Its backward here is {@link #mixBackwardStreams} and {@link #mixBackwardCoeffs}: the
 * plain kernels with each token's loops reordered (inner loops over C, partial sums). A single
 * pass computing dx, dy, dHres and dHpost together was measured too: no faster than these two
 * (a token's 2nC inputs stay in L1 between them), so the model keeps its two calls.
 */
public final class MhcFused {
    /** Rows of a weight gradient (or columns of width) that one parallel task of a parameter kernel owns. */
    public static final int BLOCK = 128;

    private MhcFused() {
    }

    /** Floats of scratch that {@link #mhcPreBackwardTokens} needs for the Sinkhorn recomputation. */
    public static int sinkhornWorkSize(int N, int n, int iters) {
        return N * (2 * iters + 2) * n * n;
    }

    /** {@code out[c][r] = in[r][c]}: phi (K, M) to phi^T (M, K) for the backward's dx pass. */
    public static void transpose(float[] out, // (COLS, ROWS)
                                 float[] in,  // (ROWS, COLS)
                                 int ROWS, int COLS) {
        for (@Parallel int c = 0; c < COLS; c++) {
            for (int r = 0; r < ROWS; r++) {
                out[c * ROWS + r] = in[r * COLS + c];
            }
        }
    }

    /**
     * The whole mHC connection before a sublayer, one pass per token: rms, h = v · phi, the
     * coefficients, Sinkhorn (in place in hres) and the aggregate {@code u = sum_j Hpre[j] x[j]}.
     * With {@code project = 0} the caller has already computed {@code h} (e.g. with a blocked
     * GEMM, much faster on a CPU than this per-token loop) and the kernel reads it.
     */
    public static void mhcPreForward(float[] u,     // (N, C)
                                     float[] hpre,  // (N, n)
                                     float[] hpost, // (N, n)
                                     float[] hres,  // (N, n, n)
                                     float[] zres,  // (N, n, n) logits of Hres, kept for the backward
                                     float[] rms,   // (N)
                                     float[] h,     // (N, M) = v · phi, kept for the backward
                                     float[] x,     // (N, n, C)
                                     float[] phi,   // (nC, M)
                                     float[] alpha, // (3)
                                     float[] bias,  // (M)
                                     int project,   // 1: compute h here; 0: h is given
                                     int N, int n, int C, int iters) {
        int M = n * n + 2 * n;
        int K = n * C;
        int nn = n * n;
        for (@Parallel int r = 0; r < N; r++) {
            int xo = r * K;
            int ho = r * M;
            int zo = r * nn;
            // rms over the token's nC entries
            float s0 = 0f;
            float s1 = 0f;
            float s2 = 0f;
            float s3 = 0f;
            int k = 0;
            for (; k + 3 < K; k += 4) {
                float e0 = x[xo + k];
                float e1 = x[xo + k + 1];
                float e2 = x[xo + k + 2];
                float e3 = x[xo + k + 3];
                s0 += e0 * e0;
                s1 += e1 * e1;
                s2 += e2 * e2;
                s3 += e3 * e3;
            }
            for (; k < K; k++) {
                float e = x[xo + k];
                s0 += e * e;
            }
            float ss = (s0 + s1) + (s2 + s3);
            float rr = (float) Math.sqrt(ss / K + Mhc.EPS);
            rms[r] = rr;
            // h = v · phi: inputs outer, the M outputs inner (contiguous in h and phi)
            for (int m = 0; m < M && project != 0; m++) {
                h[ho + m] = 0f;
            }
            int kk = project != 0 ? 0 : K;
            for (; kk + 3 < K; kk += 4) {
                float x0 = x[xo + kk];
                float x1 = x[xo + kk + 1];
                float x2 = x[xo + kk + 2];
                float x3 = x[xo + kk + 3];
                int p0 = kk * M;
                for (int m = 0; m < M; m++) {
                    h[ho + m] += (x0 * phi[p0 + m] + x1 * phi[p0 + M + m]) + (x2 * phi[p0 + 2 * M + m] + x3 * phi[p0 + 3 * M + m]);
                }
            }
            for (; kk < K; kk++) {
                float xv = x[xo + kk];
                int p0 = kk * M;
                for (int m = 0; m < M; m++) {
                    h[ho + m] += xv * phi[p0 + m];
                }
            }
            // coefficients
            float inv = 1f / rr;
            for (int j = 0; j < n; j++) {
                float zp = alpha[0] * h[ho + j] * inv + bias[j];
                hpre[r * n + j] = (float) (1.0 / (1.0 + Math.exp(-zp)));
                float zq = alpha[1] * h[ho + n + j] * inv + bias[n + j];
                hpost[r * n + j] = (float) (2.0 / (1.0 + Math.exp(-zq)));
            }
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < nn; e++) {
                float z = alpha[2] * h[ho + 2 * n + e] * inv + bias[2 * n + e];
                zres[zo + e] = z;
                max = Math.max(max, z);
            }
            for (int e = 0; e < nn; e++) {
                hres[zo + e] = (float) Math.exp(zres[zo + e] - max);
            }
            // Sinkhorn, in place in the token's n x n slice
            for (int it = 0; it < iters; it++) {
                for (int j = 0; j < n; j++) {
                    float s = 0f;
                    for (int i = 0; i < n; i++) {
                        s += hres[zo + i * n + j];
                    }
                    for (int i = 0; i < n; i++) {
                        hres[zo + i * n + j] /= s;
                    }
                }
                for (int i = 0; i < n; i++) {
                    float s = 0f;
                    for (int j = 0; j < n; j++) {
                        s += hres[zo + i * n + j];
                    }
                    for (int j = 0; j < n; j++) {
                        hres[zo + i * n + j] /= s;
                    }
                }
            }
            // u = sum_j Hpre[j] x[j]
            int uo = r * C;
            for (int c = 0; c < C; c++) {
                u[uo + c] = 0f;
            }
            for (int j = 0; j < n; j++) {
                float w = hpre[r * n + j];
                int xj = xo + j * C;
                for (int c = 0; c < C; c++) {
                    u[uo + c] += w * x[xj + c];
                }
            }
        }
    }

    /**
     * The per-token part of the backward of {@link #mhcPreForward}: adds into {@code dx} every
     * path (aggregate, projection, rms), and writes the per-token logit gradients {@code workDz}
     * and projection gradients {@code workDh} that the parameter kernels sum over tokens. With
     * {@code project = 0} the projection's part {@code dx += dh · phi^T} is left to the caller
     * (a GEMM of workDh with phi).
     * The Sinkhorn steps are recomputed from zres in the token's slice of {@code workSk}.
     */
    public static void mhcPreBackwardTokens(float[] dx,     // (N, n, C)
                                            float[] workDz, // (N, M) logit gradients, overwritten
                                            float[] workDh, // (N, M) gradients of h, overwritten
                                            float[] workSk, // (N, 2*iters+2, n, n) scratch
                                            float[] du,     // (N, C)
                                            float[] dhpost, // (N, n)
                                            float[] dhres,  // (N, n, n)
                                            float[] x,      // (N, n, C)
                                            float[] hpre,   // (N, n)
                                            float[] hpost,  // (N, n)
                                            float[] rms,    // (N)
                                            float[] h,      // (N, M)
                                            float[] zres,   // (N, n, n)
                                            float[] phiT,   // (M, nC) phi transposed
                                            float[] alpha,  // (3)
                                            int project,    // 1: add dh · phi^T here; 0: the caller does
                                            int N, int n, int C, int iters) {
        int M = n * n + 2 * n;
        int K = n * C;
        int nn = n * n;
        int stride = (2 * iters + 2) * nn;
        for (@Parallel int r = 0; r < N; r++) {
            int xo = r * K;
            int ho = r * M;
            int uo = r * C;
            int zo = r * nn;
            float inv = 1f / rms[r];
            // dHpre[j] = du · x[j], then through the sigmoids
            for (int j = 0; j < n; j++) {
                int xj = xo + j * C;
                float s0 = 0f;
                float s1 = 0f;
                float s2 = 0f;
                float s3 = 0f;
                int c = 0;
                for (; c + 3 < C; c += 4) {
                    s0 += du[uo + c] * x[xj + c];
                    s1 += du[uo + c + 1] * x[xj + c + 1];
                    s2 += du[uo + c + 2] * x[xj + c + 2];
                    s3 += du[uo + c + 3] * x[xj + c + 3];
                }
                for (; c < C; c++) {
                    s0 += du[uo + c] * x[xj + c];
                }
                float dhp = (s0 + s1) + (s2 + s3);
                float sp = hpre[r * n + j];
                workDz[ho + j] = dhp * sp * (1f - sp);
                float sq = hpost[r * n + j];
                workDz[ho + n + j] = dhpost[r * n + j] * sq * (1f - 0.5f * sq);
            }
            // Sinkhorn backward, recomputing the steps (as Sinkhorn.sinkhornBackward)
            int w = r * stride;
            int g = w + (2 * iters + 1) * nn;
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < nn; e++) {
                max = Math.max(max, zres[zo + e]);
            }
            for (int e = 0; e < nn; e++) {
                workSk[w + e] = (float) Math.exp(zres[zo + e] - max);
            }
            for (int k = 0; k < 2 * iters - 1; k++) {
                int src = w + k * nn;
                int dst = src + nn;
                if (k % 2 == 0) {
                    for (int j = 0; j < n; j++) {
                        float s = 0f;
                        for (int i = 0; i < n; i++) {
                            s += workSk[src + i * n + j];
                        }
                        for (int i = 0; i < n; i++) {
                            workSk[dst + i * n + j] = workSk[src + i * n + j] / s;
                        }
                    }
                } else {
                    for (int i = 0; i < n; i++) {
                        float s = 0f;
                        for (int j = 0; j < n; j++) {
                            s += workSk[src + i * n + j];
                        }
                        for (int j = 0; j < n; j++) {
                            workSk[dst + i * n + j] = workSk[src + i * n + j] / s;
                        }
                    }
                }
            }
            for (int e = 0; e < nn; e++) {
                workSk[g + e] = dhres[zo + e];
            }
            for (int k = 2 * iters - 1; k >= 0; k--) {
                int src = w + k * nn;
                if (k % 2 == 0) {
                    for (int j = 0; j < n; j++) {
                        float s = 0f;
                        for (int i = 0; i < n; i++) {
                            s += workSk[src + i * n + j];
                        }
                        float dot = 0f;
                        for (int i = 0; i < n; i++) {
                            dot += workSk[g + i * n + j] * workSk[src + i * n + j] / s;
                        }
                        for (int i = 0; i < n; i++) {
                            workSk[g + i * n + j] = (workSk[g + i * n + j] - dot) / s;
                        }
                    }
                } else {
                    for (int i = 0; i < n; i++) {
                        float s = 0f;
                        for (int j = 0; j < n; j++) {
                            s += workSk[src + i * n + j];
                        }
                        float dot = 0f;
                        for (int j = 0; j < n; j++) {
                            dot += workSk[g + i * n + j] * workSk[src + i * n + j] / s;
                        }
                        for (int j = 0; j < n; j++) {
                            workSk[g + i * n + j] = (workSk[g + i * n + j] - dot) / s;
                        }
                    }
                }
            }
            int arg = 0;
            float shift = 0f;
            for (int e = 0; e < nn; e++) {
                float d = workSk[g + e] * workSk[w + e];
                workDz[ho + 2 * n + e] = d;
                shift += d;
                if (zres[zo + e] > zres[zo + arg]) {
                    arg = e;
                }
            }
            workDz[ho + 2 * n + arg] -= shift;
            // through z = alpha h / r + bias: dh and drms
            float dr = 0f;
            for (int m = 0; m < M; m++) {
                float a = m < n ? alpha[0] : (m < 2 * n ? alpha[1] : alpha[2]);
                float dz = workDz[ho + m];
                workDh[ho + m] = dz * a * inv;
                dr -= dz * a * h[ho + m] * inv * inv;
            }
            // dx += Hpre[j] du + drms v / (K r), then dx += dh · phi^T (M passes over the token's slice)
            float gr = dr / (K * rms[r]);
            for (int j = 0; j < n; j++) {
                float wj = hpre[r * n + j];
                int xj = xo + j * C;
                for (int c = 0; c < C; c++) {
                    dx[xj + c] += wj * du[uo + c] + gr * x[xj + c];
                }
            }
            int m = project != 0 ? 0 : M;
            for (; m + 3 < M; m += 4) {
                float g0 = workDh[ho + m];
                float g1 = workDh[ho + m + 1];
                float g2 = workDh[ho + m + 2];
                float g3 = workDh[ho + m + 3];
                int p0 = m * K;
                for (int k = 0; k < K; k++) {
                    dx[xo + k] += (g0 * phiT[p0 + k] + g1 * phiT[p0 + K + k]) + (g2 * phiT[p0 + 2 * K + k] + g3 * phiT[p0 + 3 * K + k]);
                }
            }
            for (; m < M; m++) {
                float gm = workDh[ho + m];
                int po = m * K;
                for (int k = 0; k < K; k++) {
                    dx[xo + k] += gm * phiT[po + k];
                }
            }
        }
    }

    /**
     * {@code dphi[k][m] += sum_r v[r][k] dh[r][m]}: one task per block of {@link #BLOCK} rows of
     * phi, summing over all tokens (four at a time) into its columns of {@code workPhiT}, laid
     * out (M, K) so that the inner loop runs over contiguous entries of v, then adding them to dphi.
     */
    public static void mhcPhiBackward(float[] dphi,     // (K, M)
                                      float[] workPhiT, // (M, K) scratch
                                      float[] x,        // (N, K)
                                      float[] workDh,   // (N, M)
                                      int N, int K, int M) {
        int nb = (K + BLOCK - 1) / BLOCK;
        for (@Parallel int b = 0; b < nb; b++) {
            int k0 = b * BLOCK;
            int k1 = Math.min(K, k0 + BLOCK);
            for (int m = 0; m < M; m++) {
                for (int k = k0; k < k1; k++) {
                    workPhiT[m * K + k] = 0f;
                }
            }
            int r = 0;
            for (; r + 3 < N; r += 4) {
                int dho = r * M;
                int xo = r * K;
                for (int m = 0; m < M; m++) {
                    float g0 = workDh[dho + m];
                    float g1 = workDh[dho + M + m];
                    float g2 = workDh[dho + 2 * M + m];
                    float g3 = workDh[dho + 3 * M + m];
                    int wo = m * K;
                    for (int k = k0; k < k1; k++) {
                        workPhiT[wo + k] += (g0 * x[xo + k] + g1 * x[xo + K + k]) + (g2 * x[xo + 2 * K + k] + g3 * x[xo + 3 * K + k]);
                    }
                }
            }
            for (; r < N; r++) {
                int dho = r * M;
                int xo = r * K;
                for (int m = 0; m < M; m++) {
                    float g = workDh[dho + m];
                    int wo = m * K;
                    for (int k = k0; k < k1; k++) {
                        workPhiT[wo + k] += g * x[xo + k];
                    }
                }
            }
            for (int k = k0; k < k1; k++) {
                for (int m = 0; m < M; m++) {
                    dphi[k * M + m] += workPhiT[m * K + k];
                }
            }
        }
    }

    /**
     * {@link Streams#mixForward} with the loops of a token reordered so that the inner loops run
     * over C (vectorizable): {@code xout[i] = hpost[i] y + sum_j hres[i][j] x[j]}, each stream a
     * contiguous row written once per term instead of strided reads across the n streams.
     */
    public static void mixForward(float[] xout,  // (N, n, C)
                                  float[] x,     // (N, n, C)
                                  float[] hres,  // (N, n, n)
                                  float[] hpost, // (N, n)
                                  float[] y,     // (N, C)
                                  int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            int yo = r * C;
            for (int i = 0; i < n; i++) {
                int oo = (r * n + i) * C;
                float hp = hpost[r * n + i];
                for (int c = 0; c < C; c++) {
                    xout[oo + c] = hp * y[yo + c];
                }
                for (int j = 0; j < n; j++) {
                    float hij = hres[(r * n + i) * n + j];
                    int xo = (r * n + j) * C;
                    for (int c = 0; c < C; c++) {
                        xout[oo + c] += hij * x[xo + c];
                    }
                }
            }
        }
    }

    /**
     * {@link Streams#mixBackwardStreams} with the loops of a token reordered so that the inner
     * loops run over C (vectorizable): {@code dy += sum_i hpost[i] dxout[i]},
     * {@code dx[j] += sum_i hres[i][j] dxout[i]}.
     */
    public static void mixBackwardStreams(float[] dx,    // (N, n, C)
                                          float[] dy,    // (N, C)
                                          float[] dxout, // (N, n, C)
                                          float[] hres,  // (N, n, n)
                                          float[] hpost, // (N, n)
                                          int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            int yo = r * C;
            for (int i = 0; i < n; i++) {
                int go = (r * n + i) * C;
                float hp = hpost[r * n + i];
                for (int c = 0; c < C; c++) {
                    dy[yo + c] += hp * dxout[go + c];
                }
                for (int j = 0; j < n; j++) {
                    float hij = hres[(r * n + i) * n + j];
                    int xo = (r * n + j) * C;
                    for (int c = 0; c < C; c++) {
                        dx[xo + c] += hij * dxout[go + c];
                    }
                }
            }
        }
    }

    /**
     * {@link Streams#mixBackwardCoeffs} with four partial sums per dot product:
     * {@code dhres[i][j] += dxout[i] · x[j]}, {@code dhpost[i] += dxout[i] · y}.
     */
    public static void mixBackwardCoeffs(float[] dhres,  // (N, n, n)
                                         float[] dhpost, // (N, n)
                                         float[] dxout,  // (N, n, C)
                                         float[] x,      // (N, n, C)
                                         float[] y,      // (N, C)
                                         int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            int yo = r * C;
            for (int i = 0; i < n; i++) {
                int go = (r * n + i) * C;
                float s0 = 0f;
                float s1 = 0f;
                float s2 = 0f;
                float s3 = 0f;
                int c = 0;
                for (; c + 3 < C; c += 4) {
                    s0 += dxout[go + c] * y[yo + c];
                    s1 += dxout[go + c + 1] * y[yo + c + 1];
                    s2 += dxout[go + c + 2] * y[yo + c + 2];
                    s3 += dxout[go + c + 3] * y[yo + c + 3];
                }
                for (; c < C; c++) {
                    s0 += dxout[go + c] * y[yo + c];
                }
                dhpost[r * n + i] += (s0 + s1) + (s2 + s3);
                for (int j = 0; j < n; j++) {
                    int xo = (r * n + j) * C;
                    float t0 = 0f;
                    float t1 = 0f;
                    float t2 = 0f;
                    float t3 = 0f;
                    int cc = 0;
                    for (; cc + 3 < C; cc += 4) {
                        t0 += dxout[go + cc] * x[xo + cc];
                        t1 += dxout[go + cc + 1] * x[xo + cc + 1];
                        t2 += dxout[go + cc + 2] * x[xo + cc + 2];
                        t3 += dxout[go + cc + 3] * x[xo + cc + 3];
                    }
                    for (; cc < C; cc++) {
                        t0 += dxout[go + cc] * x[xo + cc];
                    }
                    dhres[(r * n + i) * n + j] += (t0 + t1) + (t2 + t3);
                }
            }
        }
    }
}
