package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * Causal multi-head attention over q, k, v that already carry the rotary embedding: head h
 * takes columns {@code h*D .. h*D+D-1}; {@code att[b][h][t][s] = softmax_s(q_t · k_s / sqrt(D))}
 * for {@code s <= t}, zero above the diagonal; {@code out_t = sum_s att[t][s] v_s}.
 *
 * <p>The backward is split into three kernels so that each writes disjoint memory (no races
 * on a device): the score gradients per query row, then dq per query, then dk and dv per key.
 */
public final class Attention {
    private Attention() {
    }

    public static void attentionForward(float[] out, // (B, T, C)
                                        float[] att, // (B, H, T, T) probabilities, kept for backward
                                        float[] q,   // (B, T, C)
                                        float[] k,   // (B, T, C)
                                        float[] v,   // (B, T, C)
                                        int B, int T, int C, int H) {
        int D = C / H;
        float scale = (float) (1.0 / Math.sqrt(D));
        for (@Parallel int bt = 0; bt < B * T; bt++) {
            for (@Parallel int h = 0; h < H; h++) {
                int b = bt / T;
                int t = bt % T;
                int row = ((b * H + h) * T + t) * T;
                int qo = bt * C + h * D;
                float max = Float.NEGATIVE_INFINITY;
                for (int s = 0; s <= t; s++) {
                    int ko = (b * T + s) * C + h * D;
                    float dot = 0f;
                    for (int d = 0; d < D; d++) {
                        dot += q[qo + d] * k[ko + d];
                    }
                    dot *= scale;
                    att[row + s] = dot;
                    max = Math.max(max, dot);
                }
                float sum = 0f;
                for (int s = 0; s <= t; s++) {
                    float e = (float) Math.exp(att[row + s] - max);
                    att[row + s] = e;
                    sum += e;
                }
                float inv = 1f / sum;
                for (int s = 0; s < T; s++) {
                    att[row + s] = s <= t ? att[row + s] * inv : 0f;
                }
                for (int d = 0; d < D; d++) {
                    float acc = 0f;
                    for (int s = 0; s <= t; s++) {
                        acc += att[row + s] * v[(b * T + s) * C + h * D + d];
                    }
                    out[qo + d] = acc;
                }
            }
        }
    }

    /**
     * Undoes {@code att = softmax(scores)} and {@code out = att · v} for one query row:
     * {@code datt[s] = dout_t · v_s}, {@code dscores[s] = att[s] (datt[s] - sum_s' att[s'] datt[s'])},
     * stored pre-multiplied by {@code 1/sqrt(D)} so the next two kernels need no scale.
     */
    public static void attentionBackwardScores(float[] workScores, // (B, H, T, T) scaled score gradients
                                               float[] dout,       // (B, T, C)
                                               float[] att,        // (B, H, T, T)
                                               float[] v,          // (B, T, C)
                                               int B, int T, int C, int H) {
        int D = C / H;
        float scale = (float) (1.0 / Math.sqrt(D));
        for (@Parallel int bt = 0; bt < B * T; bt++) {
            for (@Parallel int h = 0; h < H; h++) {
                int b = bt / T;
                int t = bt % T;
                int row = ((b * H + h) * T + t) * T;
                int oo = bt * C + h * D;
                float dot = 0f;
                for (int s = 0; s <= t; s++) {
                    float da = 0f;
                    for (int d = 0; d < D; d++) {
                        da += dout[oo + d] * v[(b * T + s) * C + h * D + d];
                    }
                    workScores[row + s] = da;
                    dot += da * att[row + s];
                }
                for (int s = 0; s < T; s++) {
                    workScores[row + s] = s <= t ? att[row + s] * (workScores[row + s] - dot) * scale : 0f;
                }
            }
        }
    }

    /** Undoes {@code score[t][s] = q_t · k_s}: {@code dq_t += sum_s dscores[t][s] k_s}. */
    public static void attentionBackwardQuery(float[] dq,         // (B, T, C)
                                              float[] workScores, // (B, H, T, T)
                                              float[] k,          // (B, T, C)
                                              int B, int T, int C, int H) {
        int D = C / H;
        for (@Parallel int bt = 0; bt < B * T; bt++) {
            for (@Parallel int c = 0; c < C; c++) {
                int b = bt / T;
                int t = bt % T;
                int h = c / D;
                int row = ((b * H + h) * T + t) * T;
                float acc = 0f;
                for (int s = 0; s <= t; s++) {
                    acc += workScores[row + s] * k[(b * T + s) * C + c];
                }
                dq[bt * C + c] += acc;
            }
        }
    }

    /**
     * Undoes {@code score[t][s] = q_t · k_s} and {@code out_t = sum_s att[t][s] v_s} for one key s:
     * {@code dk_s += sum_{t>=s} dscores[t][s] q_t}, {@code dv_s += sum_{t>=s} att[t][s] dout_t}.
     */
    public static void attentionBackwardKeyValue(float[] dk,         // (B, T, C)
                                                 float[] dv,         // (B, T, C)
                                                 float[] workScores, // (B, H, T, T)
                                                 float[] att,        // (B, H, T, T)
                                                 float[] q,          // (B, T, C)
                                                 float[] dout,       // (B, T, C)
                                                 int B, int T, int C, int H) {
        int D = C / H;
        for (@Parallel int bs = 0; bs < B * T; bs++) {
            for (@Parallel int c = 0; c < C; c++) {
                int b = bs / T;
                int s = bs % T;
                int h = c / D;
                float accK = 0f;
                float accV = 0f;
                for (int t = s; t < T; t++) {
                    int idx = ((b * H + h) * T + t) * T + s;
                    accK += workScores[idx] * q[(b * T + t) * C + c];
                    accV += att[idx] * dout[(b * T + t) * C + c];
                }
                dk[bs * C + c] += accK;
                dv[bs * C + c] += accV;
            }
        }
    }
}
