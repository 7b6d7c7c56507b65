package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * Rotary position embedding on each head of q or k (MODEL.md): for {@code i < D/2},
 * {@code theta_i = 10000^(-2i/D)}, the pair {@code (x_i, x_{i+D/2})} at position t is rotated
 * by the angle {@code t * theta_i}. Row r of the (N, C) input is position {@code r % T}.
 *
 * <p>The cosines and sines come from tables made once per sequence length by
 * {@link #ropeTables} (in double precision, then rounded), so the kernels are pure
 * arithmetic: devices need no trigonometry of their own, and every backend rotates by the
 * very same numbers.
 */
public final class Rope {
    private Rope() {
    }

    /** {@code cos[t][i] = cos(t theta_i)}, {@code sin[t][i] = sin(t theta_i)} for t < T, i < D/2. */
    public static void ropeTables(float[] cos, // (T, D/2)
                                  float[] sin, // (T, D/2)
                                  int T, int D) {
        int half = D / 2;
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < half; i++) {
                double angle = t * Math.pow(10000.0, -2.0 * i / D);
                cos[t * half + i] = (float) Math.cos(angle);
                sin[t * half + i] = (float) Math.sin(angle);
            }
        }
    }

    public static void ropeForward(float[] out, // (N, C)
                                   float[] inp, // (N, C)
                                   float[] cos, // (T, D/2)
                                   float[] sin, // (T, D/2)
                                   int N, int T, int C, int H) {
        int D = C / H;
        int half = D / 2;
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int p = 0; p < H * half; p++) {
                int h = p / half;
                int i = p % half;
                int ti = (r % T) * half + i;
                int a = r * C + h * D + i;
                int b = a + half;
                float x0 = inp[a];
                float x1 = inp[b];
                out[a] = x0 * cos[ti] - x1 * sin[ti];
                out[b] = x0 * sin[ti] + x1 * cos[ti];
            }
        }
    }

    /** The rotation is orthogonal, so its backward rotates the gradient by the opposite angle. */
    public static void ropeBackward(float[] dinp, // (N, C)
                                    float[] dout, // (N, C)
                                    float[] cos,  // (T, D/2)
                                    float[] sin,  // (T, D/2)
                                    int N, int T, int C, int H) {
        int D = C / H;
        int half = D / 2;
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int p = 0; p < H * half; p++) {
                int h = p / half;
                int i = p % half;
                int ti = (r % T) * half + i;
                int a = r * C + h * D + i;
                int b = a + half;
                float d0 = dout[a];
                float d1 = dout[b];
                dinp[a] += d0 * cos[ti] + d1 * sin[ti];
                dinp[b] += -d0 * sin[ti] + d1 * cos[ti];
            }
        }
    }
}
