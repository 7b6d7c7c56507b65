package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * Linear maps {@code out = inp · w} with {@code w} stored {@code [IN, OUT]} (MODEL.md), and the
 * two gradient products. {@code wOff} locates one matrix inside a stacked tensor (an expert's
 * {@code w1[e]} starts at {@code e * C * F}); plain calls pass 0.
 */
public final class Matmul {
    private Matmul() {
    }

    public static void matmulForward(float[] out, // (N, OUT)
                                     float[] inp, // (N, IN)
                                     float[] w,   // (IN, OUT) at wOff
                                     int wOff, int N, int IN, int OUT) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int o = 0; o < OUT; o++) {
                float s = 0f;
                for (int i = 0; i < IN; i++) {
                    s += inp[r * IN + i] * w[wOff + i * OUT + o];
                }
                out[r * OUT + o] = s;
            }
        }
    }

    /** Undoes {@code out[r][o] = sum_i inp[r][i] w[i][o]}: {@code dinp[r][i] += sum_o dout[r][o] w[i][o]}. */
    public static void matmulBackwardInput(float[] dinp, // (N, IN)
                                           float[] dout, // (N, OUT)
                                           float[] w,    // (IN, OUT) at wOff
                                           int wOff, int N, int IN, int OUT) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int i = 0; i < IN; i++) {
                float s = 0f;
                for (int o = 0; o < OUT; o++) {
                    s += dout[r * OUT + o] * w[wOff + i * OUT + o];
                }
                dinp[r * IN + i] += s;
            }
        }
    }

    /** Undoes {@code out[r][o] = sum_i inp[r][i] w[i][o]}: {@code dw[i][o] += sum_r inp[r][i] dout[r][o]}. */
    public static void matmulBackwardWeight(float[] dw,   // (IN, OUT) at wOff
                                            float[] inp,  // (N, IN)
                                            float[] dout, // (N, OUT)
                                            int wOff, int N, int IN, int OUT) {
        for (@Parallel int i = 0; i < IN; i++) {
            for (@Parallel int o = 0; o < OUT; o++) {
                float s = 0f;
                for (int r = 0; r < N; r++) {
                    s += inp[r * IN + i] * dout[r * OUT + o];
                }
                dw[wOff + i * OUT + o] += s;
            }
        }
    }

    // ---------------------------------------------------------------- grouped: one matrix per row group
    //
    // The expert products of Moe's packed form: R rows sorted by group (expert), w stacked
    // [E, IN, OUT]. Each row uses the matrix of its group; sums run in the order of the plain
    // products above on that group's rows, so the results are the same numbers.

    /** {@code out[p][o] = sum_i inp[p][i] w[expertOf[p]][i][o]}. */
    public static void matmulForwardGrouped(float[] out,     // (R, OUT)
                                            float[] inp,     // (R, IN)
                                            float[] w,       // (E, IN, OUT)
                                            int[] expertOf,  // (R)
                                            int R, int IN, int OUT) {
        for (@Parallel int p = 0; p < R; p++) {
            for (@Parallel int o = 0; o < OUT; o++) {
                int wOff = expertOf[p] * IN * OUT;
                float s = 0f;
                for (int i = 0; i < IN; i++) {
                    s += inp[p * IN + i] * w[wOff + i * OUT + o];
                }
                out[p * OUT + o] = s;
            }
        }
    }

    /** {@code dinp[p][i] += sum_o dout[p][o] w[expertOf[p]][i][o]}. */
    public static void matmulBackwardInputGrouped(float[] dinp,    // (R, IN)
                                                  float[] dout,    // (R, OUT)
                                                  float[] w,       // (E, IN, OUT)
                                                  int[] expertOf,  // (R)
                                                  int R, int IN, int OUT) {
        for (@Parallel int p = 0; p < R; p++) {
            for (@Parallel int i = 0; i < IN; i++) {
                int wOff = expertOf[p] * IN * OUT;
                float s = 0f;
                for (int o = 0; o < OUT; o++) {
                    s += dout[p * OUT + o] * w[wOff + i * OUT + o];
                }
                dinp[p * IN + i] += s;
            }
        }
    }

    /** {@code dw[e][i][o] += sum_{p in group e} inp[p][i] dout[p][o]}, the rows of group e being {@code offsets[e] .. offsets[e+1]-1}. */
    public static void matmulBackwardWeightGrouped(float[] dw,     // (E, IN, OUT)
                                                   float[] inp,    // (R, IN)
                                                   float[] dout,   // (R, OUT)
                                                   int[] offsets,  // (E+1)
                                                   int E, int IN, int OUT) {
        for (@Parallel int ei = 0; ei < E * IN; ei++) {
            for (@Parallel int o = 0; o < OUT; o++) {
                int e = ei / IN, i = ei % IN;
                float s = 0f;
                for (int p = offsets[e]; p < offsets[e + 1]; p++) {
                    s += inp[p * IN + i] * dout[p * OUT + o];
                }
                dw[ei * OUT + o] += s;
            }
        }
    }
}
