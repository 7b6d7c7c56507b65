package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * Sinkhorn-Knopp projection of each token's n x n logits onto the doubly stochastic matrices
 * (MODEL.md): {@code M = exp(Z - max(Z))}, then {@code iters} times divide every column by its
 * sum, then every row by its sum. No epsilon: rows sum to 1 exactly, columns approximately.
 *
 * <p>The backward is the exact reverse of these steps. Instead of keeping 2*iters matrices per
 * token from the forward, it recomputes them into a scratch buffer, walks back through them,
 * and forgets them: a scratch of {@code (N, 2*iters+2, n, n)} floats is shared by all layers.
 */
public final class Sinkhorn {
    private Sinkhorn() {
    }

    /** Floats of scratch that {@link #sinkhornBackward} needs. */
    public static int workSize(int N, int n, int iters) {
        return N * (2 * iters + 2) * n * n;
    }

    public static void sinkhornForward(float[] out, // (N, n, n) doubly stochastic
                                       float[] z,   // (N, n, n) logits
                                       int N, int n, int iters) {
        int nn = n * n;
        for (@Parallel int r = 0; r < N; r++) {
            int o = r * nn;
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < nn; e++) {
                max = Math.max(max, z[o + e]);
            }
            for (int e = 0; e < nn; e++) {
                out[o + e] = (float) Math.exp(z[o + e] - max);
            }
            for (int it = 0; it < iters; it++) {
                for (int j = 0; j < n; j++) {
                    float s = 0f;
                    for (int i = 0; i < n; i++) {
                        s += out[o + i * n + j];
                    }
                    for (int i = 0; i < n; i++) {
                        out[o + i * n + j] /= s;
                    }
                }
                for (int i = 0; i < n; i++) {
                    float s = 0f;
                    for (int j = 0; j < n; j++) {
                        s += out[o + i * n + j];
                    }
                    for (int j = 0; j < n; j++) {
                        out[o + i * n + j] /= s;
                    }
                }
            }
        }
    }

    /**
     * Undoes the forward step by step. For a column step {@code Y[i][j] = X[i][j] / s_j} with
     * {@code s_j = sum_i X[i][j]}: {@code dX[i][j] = (dY[i][j] - sum_i' dY[i'][j] Y[i'][j]) / s_j};
     * a row step is the same with rows. Through {@code M = exp(Z - max)}: {@code dZ = dM * M},
     * minus {@code sum(dM * M)} at the (first) argmax of Z.
     */
    public static void sinkhornBackward(float[] dz,   // (N, n, n)
                                        float[] dout, // (N, n, n)
                                        float[] z,    // (N, n, n)
                                        float[] work, // (N, 2*iters+2, n, n) scratch
                                        int N, int n, int iters) {
        int nn = n * n;
        int stride = (2 * iters + 2) * nn;
        for (@Parallel int r = 0; r < N; r++) {
            int w = r * stride;          // state k (the input of step k) at w + k*nn
            int g = w + (2 * iters + 1) * nn; // the running gradient, after the 2*iters+1 state slots
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < nn; e++) {
                max = Math.max(max, z[r * nn + e]);
            }
            for (int e = 0; e < nn; e++) {
                work[w + e] = (float) Math.exp(z[r * nn + e] - max);
            }
            // Replay: state 2*it is the input of column step it, state 2*it+1 of row step it.
            // The output of the last row step is not needed: it is rebuilt on the way back.
            for (int k = 0; k < 2 * iters - 1; k++) {
                int src = w + k * nn;
                int dst = src + nn;
                if (k % 2 == 0) {
                    for (int j = 0; j < n; j++) {
                        float s = 0f;
                        for (int i = 0; i < n; i++) {
                            s += work[src + i * n + j];
                        }
                        for (int i = 0; i < n; i++) {
                            work[dst + i * n + j] = work[src + i * n + j] / s;
                        }
                    }
                } else {
                    for (int i = 0; i < n; i++) {
                        float s = 0f;
                        for (int j = 0; j < n; j++) {
                            s += work[src + i * n + j];
                        }
                        for (int j = 0; j < n; j++) {
                            work[dst + i * n + j] = work[src + i * n + j] / s;
                        }
                    }
                }
            }
            for (int e = 0; e < nn; e++) {
                work[g + e] = dout[r * nn + e];
            }
            for (int k = 2 * iters - 1; k >= 0; k--) {
                int src = w + k * nn;
                if (k % 2 == 0) {
                    for (int j = 0; j < n; j++) {
                        float s = 0f;
                        for (int i = 0; i < n; i++) {
                            s += work[src + i * n + j];
                        }
                        float dot = 0f;
                        for (int i = 0; i < n; i++) {
                            dot += work[g + i * n + j] * work[src + i * n + j] / s;
                        }
                        for (int i = 0; i < n; i++) {
                            work[g + i * n + j] = (work[g + i * n + j] - dot) / s;
                        }
                    }
                } else {
                    for (int i = 0; i < n; i++) {
                        float s = 0f;
                        for (int j = 0; j < n; j++) {
                            s += work[src + i * n + j];
                        }
                        float dot = 0f;
                        for (int j = 0; j < n; j++) {
                            dot += work[g + i * n + j] * work[src + i * n + j] / s;
                        }
                        for (int j = 0; j < n; j++) {
                            work[g + i * n + j] = (work[g + i * n + j] - dot) / s;
                        }
                    }
                }
            }
            // Through the shift by max(Z): the term -sum(dM * M) at the argmax. It vanishes
            // analytically for iters >= 1 (the result ignores a scale of M) but not for iters = 0.
            int arg = 0;
            float shift = 0f;
            for (int e = 0; e < nn; e++) {
                float d = work[g + e] * work[w + e];
                dz[r * nn + e] += d;
                shift += d;
                if (z[r * nn + e] > z[r * nn + arg]) {
                    arg = e;
                }
            }
            dz[r * nn + arg] -= shift;
        }
    }
}
