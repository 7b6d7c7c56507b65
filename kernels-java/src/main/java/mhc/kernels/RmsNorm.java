package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * {@code out = x / sqrt(mean(x^2) + 1e-6) * w} over each row of C entries. The unweighted
 * norm of the HC connection is the same kernel with {@code w} all ones.
 */
public final class RmsNorm {
    public static final float EPS = 1e-6f;

    private RmsNorm() {
    }

    public static void rmsnormForward(float[] out,  // (N, C)
                                      float[] rstd, // (N) 1 / sqrt(mean(x^2) + eps), kept for backward
                                      float[] x,    // (N, C)
                                      float[] w,    // (C)
                                      int N, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            float ss = 0f;
            for (int c = 0; c < C; c++) {
                float v = x[r * C + c];
                ss += v * v;
            }
            float s = (float) (1.0 / Math.sqrt(ss / C + EPS));
            rstd[r] = s;
            for (int c = 0; c < C; c++) {
                out[r * C + c] = x[r * C + c] * s * w[c];
            }
        }
    }

    /**
     * Undoes {@code out[c] = x[c] * s * w[c]} with {@code s = (mean(x^2) + eps)^(-1/2)}:
     * with {@code g = dout * w}, {@code dx[c] += s g[c] - x[c] s^3 (sum_k g[k] x[k]) / C}.
     */
    public static void rmsnormBackward(float[] dx,   // (N, C)
                                       float[] dout, // (N, C)
                                       float[] x,    // (N, C)
                                       float[] w,    // (C)
                                       float[] rstd, // (N)
                                       int N, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            float s = rstd[r];
            float dot = 0f;
            for (int c = 0; c < C; c++) {
                dot += dout[r * C + c] * w[c] * x[r * C + c];
            }
            float k = dot * s * s * s / C;
            for (int c = 0; c < C; c++) {
                dx[r * C + c] += s * dout[r * C + c] * w[c] - x[r * C + c] * k;
            }
        }
    }

    /** Undoes {@code out[r][c] = x[r][c] * s[r] * w[c]}: {@code dw[c] += sum_r dout[r][c] x[r][c] s[r]}. */
    public static void rmsnormWeightBackward(float[] dw,   // (C)
                                             float[] dout, // (N, C)
                                             float[] x,    // (N, C)
                                             float[] rstd, // (N)
                                             int N, int C) {
        for (@Parallel int c = 0; c < C; c++) {
            float s = 0f;
            for (int r = 0; r < N; r++) {
                s += dout[r * C + c] * x[r * C + c] * rstd[r];
            }
            dw[c] += s;
        }
    }
}
