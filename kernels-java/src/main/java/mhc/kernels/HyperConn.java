package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * The coefficients of unconstrained dynamic hyper-connections (MODEL.md, "hc"). Per token,
 * with {@code xbar[j] = rmsnorm(x[j])} (unweighted, see {@link RmsNorm}):
 * <pre>
 *   Hpre[j]    = scale[0] tanh(xbar[j] · w_pre)       + pre[j]
 *   Hpost[k]   = scale[1] tanh(xbar[k] · w_post)      + post[k]
 *   Hres[k][j] = scale[0] tanh(xbar[j] · w_res[:, k]) + res[j][k]
 * </pre>
 * The forward keeps the tanh values: {@code tpre[j]}, {@code tpost[k]}, {@code tres[k][j]}
 * (laid out like Hres).
 */
public final class HyperConn {
    private HyperConn() {
    }

    public static void hcCoeffForward(float[] hpre,  // (N, n)
                                      float[] hpost, // (N, n)
                                      float[] hres,  // (N, n, n)
                                      float[] tpre,  // (N, n)
                                      float[] tpost, // (N, n)
                                      float[] tres,  // (N, n, n)
                                      float[] xbar,  // (N, n, C)
                                      float[] wPre,  // (C)
                                      float[] wPost, // (C)
                                      float[] wRes,  // (C, n)
                                      float[] pre,   // (n)
                                      float[] post,  // (n)
                                      float[] res,   // (n, n)
                                      float[] scale, // (2)
                                      int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int j = 0; j < n; j++) {
                int xo = (r * n + j) * C;
                float sp = 0f;
                float sq = 0f;
                for (int c = 0; c < C; c++) {
                    sp += xbar[xo + c] * wPre[c];
                    sq += xbar[xo + c] * wPost[c];
                }
                float tp = (float) Math.tanh(sp);
                float tq = (float) Math.tanh(sq);
                tpre[r * n + j] = tp;
                tpost[r * n + j] = tq;
                hpre[r * n + j] = scale[0] * tp + pre[j];
                hpost[r * n + j] = scale[1] * tq + post[j];
                // Column j of Hres depends on stream j: Hres[k][j] for every k.
                for (int k = 0; k < n; k++) {
                    float s = 0f;
                    for (int c = 0; c < C; c++) {
                        s += xbar[xo + c] * wRes[c * n + k];
                    }
                    float t = (float) Math.tanh(s);
                    tres[(r * n + k) * n + j] = t;
                    hres[(r * n + k) * n + j] = scale[0] * t + res[j * n + k];
                }
            }
        }
    }

    /**
     * Gradients of the pre-tanh dot products: undoes {@code H = scale tanh(d) + static}, i.e.
     * {@code gd = dH scale (1 - tanh(d)^2)}. Overwrites the three work arrays.
     */
    public static void hcCoeffBackwardDots(float[] workPre,  // (N, n)
                                           float[] workPost, // (N, n)
                                           float[] workRes,  // (N, n, n)
                                           float[] dhpre,    // (N, n)
                                           float[] dhpost,   // (N, n)
                                           float[] dhres,    // (N, n, n)
                                           float[] tpre,     // (N, n)
                                           float[] tpost,    // (N, n)
                                           float[] tres,     // (N, n, n)
                                           float[] scale,    // (2)
                                           int N, int n) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int j = 0; j < n; j++) {
                int a = r * n + j;
                workPre[a] = dhpre[a] * scale[0] * (1f - tpre[a] * tpre[a]);
                workPost[a] = dhpost[a] * scale[1] * (1f - tpost[a] * tpost[a]);
                for (int k = 0; k < n; k++) {
                    int b = (r * n + j) * n + k;
                    workRes[b] = dhres[b] * scale[0] * (1f - tres[b] * tres[b]);
                }
            }
        }
    }

    /**
     * Undoes the dot products for the normalized streams:
     * {@code dxbar[j] += gpre[j] w_pre + gpost[j] w_post + sum_k gres[k][j] w_res[:, k]}.
     */
    public static void hcCoeffBackwardInput(float[] dxbar,    // (N, n, C)
                                            float[] workPre,  // (N, n)
                                            float[] workPost, // (N, n)
                                            float[] workRes,  // (N, n, n)
                                            float[] wPre,     // (C)
                                            float[] wPost,    // (C)
                                            float[] wRes,     // (C, n)
                                            int N, int n, int C) {
        for (@Parallel int rj = 0; rj < N * n; rj++) {
            for (@Parallel int c = 0; c < C; c++) {
                int r = rj / n;
                int j = rj % n;
                float s = workPre[rj] * wPre[c] + workPost[rj] * wPost[c];
                for (int k = 0; k < n; k++) {
                    s += workRes[(r * n + k) * n + j] * wRes[c * n + k];
                }
                dxbar[rj * C + c] += s;
            }
        }
    }

    /**
     * Undoes the dot products for the dynamic weights: {@code dw_pre += sum_{r,j} gpre[j] xbar[j]},
     * {@code dw_post} likewise, {@code dw_res[:, k] += sum_{r,j} gres[k][j] xbar[j]}.
     */
    public static void hcCoeffBackwardWeights(float[] dwPre,    // (C)
                                              float[] dwPost,   // (C)
                                              float[] dwRes,    // (C, n)
                                              float[] workPre,  // (N, n)
                                              float[] workPost, // (N, n)
                                              float[] workRes,  // (N, n, n)
                                              float[] xbar,     // (N, n, C)
                                              int N, int n, int C) {
        for (@Parallel int c = 0; c < C; c++) {
            float sp = 0f;
            float sq = 0f;
            for (int rj = 0; rj < N * n; rj++) {
                sp += workPre[rj] * xbar[rj * C + c];
                sq += workPost[rj] * xbar[rj * C + c];
            }
            dwPre[c] += sp;
            dwPost[c] += sq;
            for (int k = 0; k < n; k++) {
                float s = 0f;
                for (int r = 0; r < N; r++) {
                    for (int j = 0; j < n; j++) {
                        s += workRes[(r * n + k) * n + j] * xbar[(r * n + j) * C + c];
                    }
                }
                dwRes[c * n + k] += s;
            }
        }
    }

    /**
     * Gradients of the static parts and the scales, summed over tokens: {@code dpre[j] += dHpre[j]},
     * {@code dpost[k] += dHpost[k]}, {@code dres[j][k] += dHres[k][j]},
     * {@code dscale[0] += sum dHpre tpre + sum dHres tres}, {@code dscale[1] += sum dHpost tpost}.
     * One thread per parameter entry.
     */
    public static void hcCoeffBackwardStatic(float[] dpre,   // (n)
                                             float[] dpost,  // (n)
                                             float[] dres,   // (n, n)
                                             float[] dscale, // (2)
                                             float[] dhpre,  // (N, n)
                                             float[] dhpost, // (N, n)
                                             float[] dhres,  // (N, n, n)
                                             float[] tpre,   // (N, n)
                                             float[] tpost,  // (N, n)
                                             float[] tres,   // (N, n, n)
                                             int N, int n) {
        int nn = n * n;
        for (@Parallel int p = 0; p < 2 * n + nn + 2; p++) {
            float s = 0f;
            if (p < n) {
                for (int r = 0; r < N; r++) {
                    s += dhpre[r * n + p];
                }
                dpre[p] += s;
            } else if (p < 2 * n) {
                for (int r = 0; r < N; r++) {
                    s += dhpost[r * n + p - n];
                }
                dpost[p - n] += s;
            } else if (p < 2 * n + nn) {
                int e = p - 2 * n; // entry (k, j) of Hres, entry (j, k) of res
                int k = e / n;
                int j = e % n;
                for (int r = 0; r < N; r++) {
                    s += dhres[r * nn + e];
                }
                dres[j * n + k] += s;
            } else if (p == 2 * n + nn) {
                for (int r = 0; r < N; r++) {
                    for (int j = 0; j < n; j++) {
                        s += dhpre[r * n + j] * tpre[r * n + j];
                    }
                    for (int e = 0; e < nn; e++) {
                        s += dhres[r * nn + e] * tres[r * nn + e];
                    }
                }
                dscale[0] += s;
            } else {
                for (int r = 0; r < N; r++) {
                    for (int j = 0; j < n; j++) {
                        s += dhpost[r * n + j] * tpost[r * n + j];
                    }
                }
                dscale[1] += s;
            }
        }
    }
}
