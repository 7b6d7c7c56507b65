package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/** The gated unit of the FFN: {@code out = silu(h1) * h3}, {@code silu(z) = z * sigmoid(z)}. */
public final class SwiGlu {
    private SwiGlu() {
    }

    public static void swigluForward(float[] out, // (N, F)
                                     float[] h1,  // (N, F) = a · w1
                                     float[] h3,  // (N, F) = a · w3
                                     int N, int F) {
        for (@Parallel int i = 0; i < N * F; i++) {
            float z = h1[i];
            float sig = (float) (1.0 / (1.0 + Math.exp(-z)));
            out[i] = z * sig * h3[i];
        }
    }

    /**
     * Undoes {@code out = z sigmoid(z) h3}: {@code dh3 += dout silu(z)},
     * {@code dh1 += dout h3 sigmoid(z) (1 + z (1 - sigmoid(z)))}.
     */
    public static void swigluBackward(float[] dh1,  // (N, F)
                                      float[] dh3,  // (N, F)
                                      float[] dout, // (N, F)
                                      float[] h1,   // (N, F)
                                      float[] h3,   // (N, F)
                                      int N, int F) {
        for (@Parallel int i = 0; i < N * F; i++) {
            float z = h1[i];
            float sig = (float) (1.0 / (1.0 + Math.exp(-z)));
            float g = dout[i];
            dh1[i] += g * h3[i] * sig * (1f + z * (1f - sig));
            dh3[i] += g * z * sig;
        }
    }
}
