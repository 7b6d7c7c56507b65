package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * Mixture-of-experts routing, dispatch and combine (MODEL.md, "MoE FFN"). Per token:
 * <pre>
 *   s_e  = sigmoid(a · router[:, e])                         (logits from Matmul)
 *   sel  = the K experts with the largest s_e + router_bias[e] (ties: lower e)
 *   g_k  = s_{sel_k} / sum_k' s_{sel_k'}
 *   y    = sum_k g_k swiglu_{sel_k}(a) + shared experts
 * </pre>
 * The selection is a constant for the gradient; gradients flow through the gates' affinities.
 * Gates are kept per slot (N, K), in selection order. Each expert works on the rows routed to
 * it, gathered into a contiguous block through the lists that {@link #moeDispatch} builds.
 */
public final class Moe {
    private Moe() {
    }

    public static void moeRouteForward(int[] sel,          // (N, K) selected experts
                                       float[] gates,      // (N, K)
                                       float[] scores,     // (N, E) affinities s
                                       float[] logits,     // (N, E)
                                       float[] routerBias, // (E)
                                       int N, int E, int K) {
        for (@Parallel int r = 0; r < N; r++) {
            for (int e = 0; e < E; e++) {
                scores[r * E + e] = (float) (1.0 / (1.0 + Math.exp(-logits[r * E + e])));
            }
            float sum = 0f;
            for (int k = 0; k < K; k++) {
                int best = -1;
                float bestVal = 0f;
                for (int e = 0; e < E; e++) {
                    boolean taken = false;
                    for (int k2 = 0; k2 < k; k2++) {
                        if (sel[r * K + k2] == e) {
                            taken = true;
                        }
                    }
                    float val = scores[r * E + e] + routerBias[e];
                    if (!taken && (best < 0 || val > bestVal)) {
                        best = e;
                        bestVal = val;
                    }
                }
                sel[r * K + k] = best;
                sum += scores[r * E + best];
            }
            for (int k = 0; k < K; k++) {
                gates[r * K + k] = scores[r * E + sel[r * K + k]] / sum;
            }
        }
    }

    /**
     * Undoes {@code g_k = s_k / S} with {@code S = sum_k s_k} and {@code s = sigmoid(logit)}:
     * {@code ds_k = (dg_k - sum_k' dg_k' g_k') / S}, {@code dlogit += ds s (1 - s)}.
     */
    public static void moeRouteBackward(float[] dlogits, // (N, E)
                                        float[] dgates,  // (N, K)
                                        float[] scores,  // (N, E)
                                        float[] gates,   // (N, K)
                                        int[] sel,       // (N, K)
                                        int N, int E, int K) {
        for (@Parallel int r = 0; r < N; r++) {
            float sum = 0f;
            float dot = 0f;
            for (int k = 0; k < K; k++) {
                sum += scores[r * E + sel[r * K + k]];
                dot += dgates[r * K + k] * gates[r * K + k];
            }
            for (int k = 0; k < K; k++) {
                int e = sel[r * K + k];
                float s = scores[r * E + e];
                float ds = (dgates[r * K + k] - dot) / sum;
                dlogits[r * E + e] += ds * s * (1f - s);
            }
        }
    }

    /**
     * Lists, for every expert e, the rows routed to it in token order: {@code rows[e*N + i]} is
     * the token and {@code slots[e*N + i]} its slot k, for {@code i < counts[e]}. The counts are
     * the expert loads of the router-bias update.
     */
    public static void moeDispatch(int[] rows,   // (E, N)
                                   int[] slots,  // (E, N)
                                   int[] counts, // (E)
                                   int[] sel,    // (N, K)
                                   int N, int E, int K) {
        for (@Parallel int e = 0; e < E; e++) {
            int count = 0;
            for (int r = 0; r < N; r++) {
                for (int k = 0; k < K; k++) {
                    if (sel[r * K + k] == e) {
                        rows[e * N + count] = r;
                        slots[e * N + count] = k;
                        count++;
                    }
                }
            }
            counts[e] = count;
        }
    }

    /** {@code out[i] = a[rows[off + i]]} for the {@code cnt} rows of one expert. */
    public static void moeGather(float[] out, // (cnt, C)
                                 float[] a,   // (N, C)
                                 int[] rows,  // (E, N)
                                 int off, int cnt, int C) {
        for (@Parallel int i = 0; i < cnt; i++) {
            for (@Parallel int c = 0; c < C; c++) {
                out[i * C + c] = a[rows[off + i] * C + c];
            }
        }
    }

    /** Undoes {@code out[i] = a[rows[i]]}: {@code da[rows[i]] += dout[i]} (rows of one expert are distinct). */
    public static void moeGatherBackward(float[] da,   // (N, C)
                                         float[] dout, // (cnt, C)
                                         int[] rows,   // (E, N)
                                         int off, int cnt, int C) {
        for (@Parallel int i = 0; i < cnt; i++) {
            for (@Parallel int c = 0; c < C; c++) {
                da[rows[off + i] * C + c] += dout[i * C + c];
            }
        }
    }

    /** {@code y[rows[i]] += g[rows[i]][slots[i]] ye[i]}: adds one expert's gated output. */
    public static void moeCombine(float[] y,     // (N, C)
                                  float[] ye,    // (cnt, C)
                                  float[] gates, // (N, K)
                                  int[] rows,    // (E, N)
                                  int[] slots,   // (E, N)
                                  int off, int cnt, int C, int K) {
        for (@Parallel int i = 0; i < cnt; i++) {
            for (@Parallel int c = 0; c < C; c++) {
                int r = rows[off + i];
                y[r * C + c] += gates[r * K + slots[off + i]] * ye[i * C + c];
            }
        }
    }

    /** Undoes {@code y[r] += g ye[i]}: {@code dye[i] += g dy[r]}, {@code dg += dy[r] · ye[i]}. */
    public static void moeCombineBackward(float[] dye,    // (cnt, C)
                                          float[] dgates, // (N, K)
                                          float[] dy,     // (N, C)
                                          float[] ye,     // (cnt, C)
                                          float[] gates,  // (N, K)
                                          int[] rows,     // (E, N)
                                          int[] slots,    // (E, N)
                                          int off, int cnt, int C, int K) {
        for (@Parallel int i = 0; i < cnt; i++) {
            int r = rows[off + i];
            int gi = r * K + slots[off + i];
            float g = gates[gi];
            float dot = 0f;
            for (int c = 0; c < C; c++) {
                dot += dy[r * C + c] * ye[i * C + c];
                dye[i * C + c] += g * dy[r * C + c];
            }
            dgates[gi] += dot;
        }
    }

    /** {@code y += ys}: adds a shared expert's output, which every token receives ungated. */
    public static void moeAddShared(float[] y,  // (N, C)
                                    float[] ys, // (N, C)
                                    int N, int C) {
        for (@Parallel int i = 0; i < N * C; i++) {
            y[i] += ys[i];
        }
    }
}
