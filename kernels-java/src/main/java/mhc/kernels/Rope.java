package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * Rotary position embedding on each head of q or k (MODEL.md): for {@code i < D/2},
 * {@code theta_i = 10000^(-2i/D)}, the pair {@code (x_i, x_{i+D/2})} at position t is rotated
 * by the angle {@code t * theta_i}. Row r of the (N, C) input is position {@code r % T}.
 */
public final class Rope {
    private Rope() {
    }

    public static void ropeForward(float[] out, // (N, C)
                                   float[] inp, // (N, C)
                                   int N, int T, int C, int H) {
        int D = C / H;
        int half = D / 2;
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int p = 0; p < H * half; p++) {
                int h = p / half;
                int i = p % half;
                int t = r % T;
                double angle = t * Math.pow(10000.0, -2.0 * i / D);
                float cos = (float) Math.cos(angle);
                float sin = (float) Math.sin(angle);
                int a = r * C + h * D + i;
                int b = a + half;
                float x0 = inp[a];
                float x1 = inp[b];
                out[a] = x0 * cos - x1 * sin;
                out[b] = x0 * sin + x1 * cos;
            }
        }
    }

    /** The rotation is orthogonal, so its backward rotates the gradient by the opposite angle. */
    public static void ropeBackward(float[] dinp, // (N, C)
                                    float[] dout, // (N, C)
                                    int N, int T, int C, int H) {
        int D = C / H;
        int half = D / 2;
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int p = 0; p < H * half; p++) {
                int h = p / half;
                int i = p % half;
                int t = r % T;
                double angle = t * Math.pow(10000.0, -2.0 * i / D);
                float cos = (float) Math.cos(angle);
                float sin = (float) Math.sin(angle);
                int a = r * C + h * D + i;
                int b = a + half;
                float d0 = dout[a];
                float d1 = dout[b];
                dinp[a] += d0 * cos + d1 * sin;
                dinp[b] += -d0 * sin + d1 * cos;
            }
        }
    }
}
