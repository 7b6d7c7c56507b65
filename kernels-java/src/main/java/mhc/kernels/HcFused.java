package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * Fused HC connection kernels (MODEL.md, "hc"): the plain composition
 * {@link RmsNorm#rmsnormForward} (unweighted, per stream) + {@link HyperConn#hcCoeffForward} +
 * {@link Streams#aggregateForward} and its backward, one pass per token.
 *
 * <p>The normalized streams {@code xbar = x * xrstd} are never materialized: the forward
 * computes the dot products from x and the per-stream {@code xrstd}, and the backward
 * recomputes {@code xbar} where it needs it. So the fused forward keeps only the n*C stream
 * state plus small per-token values (xrstd, the tanh values, the coefficients), not the
 * n*C floats of xbar per sublayer that the plain path keeps.
 *
 * <p>{@code wRes} is read transposed ({@code wResT (n, C)}, see {@link MhcFused#transpose}) so
 * that every dot product runs over contiguous memory.
 */
public final class HcFused {
    private HcFused() {
    }

    /**
     * The HC connection before a sublayer, one pass per token: per stream the RMS reciprocal
     * {@code xrstd}, the tanh of the dot products of {@code xbar[j]} with w_pre, w_post and each
     * column of w_res, the coefficients, and {@code u = sum_j Hpre[j] x[j]}.
     */
    public static void hcPreForward(float[] u,     // (N, C)
                                    float[] hpre,  // (N, n)
                                    float[] hpost, // (N, n)
                                    float[] hres,  // (N, n, n)
                                    float[] xrstd, // (N n)
                                    float[] tpre,  // (N, n)
                                    float[] tpost, // (N, n)
                                    float[] tres,  // (N, n, n)
                                    float[] x,     // (N, n, C)
                                    float[] wPre,  // (C)
                                    float[] wPost, // (C)
                                    float[] wResT, // (n, C) w_res transposed
                                    float[] pre,   // (n)
                                    float[] post,  // (n)
                                    float[] res,   // (n, n)
                                    float[] scale, // (2)
                                    int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (int j = 0; j < n; j++) {
                int xo = (r * n + j) * C;
                float s0 = 0f;
                float s1 = 0f;
                float p0 = 0f;
                float p1 = 0f;
                float q0 = 0f;
                float q1 = 0f;
                int c = 0;
                for (; c + 1 < C; c += 2) {
                    float x0 = x[xo + c];
                    float x1 = x[xo + c + 1];
                    s0 += x0 * x0;
                    s1 += x1 * x1;
                    p0 += x0 * wPre[c];
                    p1 += x1 * wPre[c + 1];
                    q0 += x0 * wPost[c];
                    q1 += x1 * wPost[c + 1];
                }
                for (; c < C; c++) {
                    float x0 = x[xo + c];
                    s0 += x0 * x0;
                    p0 += x0 * wPre[c];
                    q0 += x0 * wPost[c];
                }
                float ss = s0 + s1;
                float s = (float) (1.0 / Math.sqrt(ss / C + RmsNorm.EPS));
                xrstd[r * n + j] = s;
                float tp = (float) Math.tanh((p0 + p1) * s);
                float tq = (float) Math.tanh((q0 + q1) * s);
                tpre[r * n + j] = tp;
                tpost[r * n + j] = tq;
                hpre[r * n + j] = scale[0] * tp + pre[j];
                hpost[r * n + j] = scale[1] * tq + post[j];
                // Column j of Hres depends on stream j: Hres[k][j] for every k.
                for (int k = 0; k < n; k++) {
                    int wo = k * C;
                    float a0 = 0f;
                    float a1 = 0f;
                    float a2 = 0f;
                    float a3 = 0f;
                    int cc = 0;
                    for (; cc + 3 < C; cc += 4) {
                        a0 += x[xo + cc] * wResT[wo + cc];
                        a1 += x[xo + cc + 1] * wResT[wo + cc + 1];
                        a2 += x[xo + cc + 2] * wResT[wo + cc + 2];
                        a3 += x[xo + cc + 3] * wResT[wo + cc + 3];
                    }
                    for (; cc < C; cc++) {
                        a0 += x[xo + cc] * wResT[wo + cc];
                    }
                    float t = (float) Math.tanh(((a0 + a1) + (a2 + a3)) * s);
                    tres[(r * n + k) * n + j] = t;
                    hres[(r * n + k) * n + j] = scale[0] * t + res[j * n + k];
                }
            }
            int uo = r * C;
            for (int c = 0; c < C; c++) {
                u[uo + c] = 0f;
            }
            for (int j = 0; j < n; j++) {
                float w = hpre[r * n + j];
                int xj = (r * n + j) * C;
                for (int c = 0; c < C; c++) {
                    u[uo + c] += w * x[xj + c];
                }
            }
        }
    }

    /**
     * The per-token part of the backward of {@link #hcPreForward}: adds into {@code dx} the
     * aggregate path and the path through the coefficients and the RMSNorm of each stream
     * (with {@code dxbar[j] = gpre[j] w_pre + gpost[j] w_post + sum_k gres[k][j] w_res[:, k]}
     * built in the token's slice of {@code workDxbar}). Writes the per-token gradients that the
     * parameter kernels sum over tokens: {@code workDhpre} (dL/dHpre) and the pre-tanh gradients
     * {@code workPre, workPost, workRes} (laid out as in {@link HyperConn#hcCoeffBackwardDots}).
     */
    public static void hcPreBackwardTokens(float[] dx,        // (N, n, C)
                                           float[] workDhpre, // (N, n) overwritten
                                           float[] workPre,   // (N, n) overwritten
                                           float[] workPost,  // (N, n) overwritten
                                           float[] workRes,   // (N, n, n) overwritten
                                           float[] workDxbar, // (N, C) scratch
                                           float[] du,        // (N, C)
                                           float[] dhpost,    // (N, n)
                                           float[] dhres,     // (N, n, n)
                                           float[] x,         // (N, n, C)
                                           float[] hpre,      // (N, n)
                                           float[] xrstd,     // (N n)
                                           float[] tpre,      // (N, n)
                                           float[] tpost,     // (N, n)
                                           float[] tres,      // (N, n, n)
                                           float[] wPre,      // (C)
                                           float[] wPost,     // (C)
                                           float[] wResT,     // (n, C) w_res transposed
                                           float[] scale,     // (2)
                                           int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            int uo = r * C;
            for (int b = r * n * n; b < (r + 1) * n * n; b++) {
                workRes[b] = dhres[b] * scale[0] * (1f - tres[b] * tres[b]);
            }
            for (int j = 0; j < n; j++) {
                int a = r * n + j;
                int xo = a * C;
                // dHpre[j] = du · x[j]
                float s0 = 0f;
                float s1 = 0f;
                float s2 = 0f;
                float s3 = 0f;
                int c = 0;
                for (; c + 3 < C; c += 4) {
                    s0 += du[uo + c] * x[xo + c];
                    s1 += du[uo + c + 1] * x[xo + c + 1];
                    s2 += du[uo + c + 2] * x[xo + c + 2];
                    s3 += du[uo + c + 3] * x[xo + c + 3];
                }
                for (; c < C; c++) {
                    s0 += du[uo + c] * x[xo + c];
                }
                float dhp = (s0 + s1) + (s2 + s3);
                workDhpre[a] = dhp;
                float gp = dhp * scale[0] * (1f - tpre[a] * tpre[a]);
                float gq = dhpost[a] * scale[1] * (1f - tpost[a] * tpost[a]);
                workPre[a] = gp;
                workPost[a] = gq;
                // dxbar[j] in the token's scratch row
                for (int c2 = 0; c2 < C; c2++) {
                    workDxbar[uo + c2] = gp * wPre[c2] + gq * wPost[c2];
                }
                for (int k = 0; k < n; k++) {
                    float gk = workRes[(r * n + k) * n + j];
                    int wo = k * C;
                    for (int c2 = 0; c2 < C; c2++) {
                        workDxbar[uo + c2] += gk * wResT[wo + c2];
                    }
                }
                // through xbar = x s, s = (mean(x^2) + eps)^(-1/2): dx += s dxbar - x s^3 (dxbar · x) / C
                float d0 = 0f;
                float d1 = 0f;
                float d2 = 0f;
                float d3 = 0f;
                int cc = 0;
                for (; cc + 3 < C; cc += 4) {
                    d0 += workDxbar[uo + cc] * x[xo + cc];
                    d1 += workDxbar[uo + cc + 1] * x[xo + cc + 1];
                    d2 += workDxbar[uo + cc + 2] * x[xo + cc + 2];
                    d3 += workDxbar[uo + cc + 3] * x[xo + cc + 3];
                }
                for (; cc < C; cc++) {
                    d0 += workDxbar[uo + cc] * x[xo + cc];
                }
                float s = xrstd[a];
                float kk = ((d0 + d1) + (d2 + d3)) * s * s * s / C;
                float w = hpre[a];
                for (int c2 = 0; c2 < C; c2++) {
                    dx[xo + c2] += w * du[uo + c2] + s * workDxbar[uo + c2] - x[xo + c2] * kk;
                }
            }
        }
    }

    /**
     * {@code dw_pre[c] += sum_{r,j} gpre[r][j] xbar[r][j][c]}, {@code dw_post} likewise,
     * {@code dw_res[c][k] += sum_{r,j} gres[r][k][j] xbar[r][j][c]}, with
     * {@code xbar = x * xrstd} recomputed. One task per block of {@link MhcFused#BLOCK} columns,
     * summing over all tokens into its columns of {@code workW} ((2 + n) rows of C).
     */
    public static void hcWeightsBackward(float[] dwPre,    // (C)
                                         float[] dwPost,   // (C)
                                         float[] dwRes,    // (C, n)
                                         float[] workW,    // (2 + n, C) scratch
                                         float[] workPre,  // (N, n)
                                         float[] workPost, // (N, n)
                                         float[] workRes,  // (N, n, n)
                                         float[] x,        // (N, n, C)
                                         float[] xrstd,    // (N n)
                                         int N, int n, int C) {
        int nb = (C + MhcFused.BLOCK - 1) / MhcFused.BLOCK;
        for (@Parallel int b = 0; b < nb; b++) {
            int c0 = b * MhcFused.BLOCK;
            int c1 = Math.min(C, c0 + MhcFused.BLOCK);
            for (int row = 0; row < 2 + n; row++) {
                for (int c = c0; c < c1; c++) {
                    workW[row * C + c] = 0f;
                }
            }
            for (int r = 0; r < N; r++) {
                for (int j = 0; j < n; j++) {
                    int rj = r * n + j;
                    int xo = rj * C;
                    float s = xrstd[rj];
                    float gp = workPre[rj] * s;
                    float gq = workPost[rj] * s;
                    for (int c = c0; c < c1; c++) {
                        workW[c] += gp * x[xo + c];
                    }
                    for (int c = c0; c < c1; c++) {
                        workW[C + c] += gq * x[xo + c];
                    }
                    for (int k = 0; k < n; k++) {
                        float gk = workRes[(r * n + k) * n + j] * s;
                        int wo = (2 + k) * C;
                        for (int c = c0; c < c1; c++) {
                            workW[wo + c] += gk * x[xo + c];
                        }
                    }
                }
            }
            for (int c = c0; c < c1; c++) {
                dwPre[c] += workW[c];
                dwPost[c] += workW[C + c];
                for (int k = 0; k < n; k++) {
                    dwRes[c * n + k] += workW[(2 + k) * C + c];
                }
            }
        }
    }
}
