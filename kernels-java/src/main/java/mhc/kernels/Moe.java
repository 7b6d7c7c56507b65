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

    // ---------------------------------------------------------------- packed form: fixed shapes
    //
    // The same MoE with every routed row of every expert in one block of R = N*K rows, sorted by
    // expert and, within an expert, by token (the order of the per-expert lists above). No size
    // depends on the routing, so a device can run the whole layer from one recorded pass: the
    // expert products are the grouped matmuls of Matmul, which read each row's expert from
    // expertOf (forward, input gradient) or each expert's rows from offsets (weight gradient).
    // Every output sums the same terms in the same order as the per-expert form.

    /**
     * Packs the routed rows: for packed row p of expert e ({@code offsets[e] <= p < offsets[e+1]}),
     * {@code order[p]} is its token, {@code slotOf[p]} its slot k and {@code expertOf[p] = e};
     * {@code position[r*K + k]} is the packed row of token r's slot k; {@code counts[e]} the load.
     */
    public static void moePack(int[] order,    // (N*K)
                               int[] slotOf,   // (N*K)
                               int[] expertOf, // (N*K)
                               int[] position, // (N, K)
                               int[] offsets,  // (E+1)
                               int[] counts,   // (E)
                               int[] sel,      // (N, K)
                               int N, int E, int K) {
        for (@Parallel int e = 0; e < E; e++) {
            int off = 0;
            for (int j = 0; j < N * K; j++) {
                if (sel[j] < e) {
                    off++;
                }
            }
            int p = off;
            for (int r = 0; r < N; r++) {
                for (int k = 0; k < K; k++) {
                    if (sel[r * K + k] == e) {
                        order[p] = r;
                        slotOf[p] = k;
                        expertOf[p] = e;
                        position[r * K + k] = p;
                        p++;
                    }
                }
            }
            offsets[e] = off;
            counts[e] = p - off;
            if (e == E - 1) {
                offsets[E] = p;
            }
        }
    }

    /** {@code out[p] = a[order[p]]} for all R packed rows. */
    public static void moeGatherPacked(float[] out, // (R, C)
                                       float[] a,   // (N, C)
                                       int[] order, // (R)
                                       int R, int C) {
        for (@Parallel int p = 0; p < R; p++) {
            for (@Parallel int c = 0; c < C; c++) {
                out[p * C + c] = a[order[p] * C + c];
            }
        }
    }

    /** Undoes the gather: {@code da[r] += dout[position[r][k]]} over the slots of token r in expert order. */
    public static void moeGatherBackwardPacked(float[] da,     // (N, C)
                                               float[] dout,   // (R, C)
                                               int[] position, // (N, K)
                                               int[] sel,      // (N, K)
                                               int N, int E, int K, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int c = 0; c < C; c++) {
                float acc = da[r * C + c];
                for (int e = 0; e < E; e++) {
                    for (int k = 0; k < K; k++) {
                        if (sel[r * K + k] == e) {
                            acc += dout[position[r * K + k] * C + c];
                        }
                    }
                }
                da[r * C + c] = acc;
            }
        }
    }

    /** {@code y[r] += g[r][k] ye[position[r][k]]} over the slots of token r in expert order. */
    public static void moeCombinePacked(float[] y,      // (N, C)
                                        float[] ye,     // (R, C)
                                        float[] gates,  // (N, K)
                                        int[] position, // (N, K)
                                        int[] sel,      // (N, K)
                                        int N, int E, int K, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int c = 0; c < C; c++) {
                float acc = y[r * C + c];
                for (int e = 0; e < E; e++) {
                    for (int k = 0; k < K; k++) {
                        if (sel[r * K + k] == e) {
                            acc += gates[r * K + k] * ye[position[r * K + k] * C + c];
                        }
                    }
                }
                y[r * C + c] = acc;
            }
        }
    }

    /** Undoes the combine: {@code dye[p] += g dy[r]}, {@code dg[r][k] += dy[r] · ye[p]} for packed row p of (r, k). */
    public static void moeCombineBackwardPacked(float[] dye,    // (R, C)
                                                float[] dgates, // (N, K)
                                                float[] dy,     // (N, C)
                                                float[] ye,     // (R, C)
                                                float[] gates,  // (N, K)
                                                int[] order,    // (R)
                                                int[] slotOf,   // (R)
                                                int R, int C, int K) {
        for (@Parallel int p = 0; p < R; p++) {
            int r = order[p];
            int gi = r * K + slotOf[p];
            float g = gates[gi];
            float dot = 0f;
            for (int c = 0; c < C; c++) {
                dot += dy[r * C + c] * ye[p * C + c];
                dye[p * C + c] += g * dy[r * C + c];
            }
            dgates[gi] += dot;
        }
    }
}
