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
}
