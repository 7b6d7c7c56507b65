package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/** Token embedding, copied into each of the n residual streams: {@code x[r][i] = embed[tok[r]]}. */
public final class Embedding {
    private Embedding() {
    }

    public static void embeddingForward(float[] x,     // (N, n, C)
                                        int[] tokens,  // (N)
                                        float[] embed, // (V, C)
                                        int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int c = 0; c < C; c++) {
                float e = embed[tokens[r] * C + c];
                for (int i = 0; i < n; i++) {
                    x[(r * n + i) * C + c] = e;
                }
            }
        }
    }

    /**
     * Undoes {@code x[r][i][c] = embed[tok[r]][c]}: {@code dembed[tok[r]][c] += sum_i dx[r][i][c]}.
     * Parallel over columns only, since two positions may hold the same token.
     */
    public static void embeddingBackward(float[] dembed, // (V, C)
                                         float[] dx,     // (N, n, C)
                                         int[] tokens,   // (N)
                                         int N, int n, int C) {
        for (@Parallel int c = 0; c < C; c++) {
            for (int r = 0; r < N; r++) {
                float s = 0f;
                for (int i = 0; i < n; i++) {
                    s += dx[(r * n + i) * C + c];
                }
                dembed[tokens[r] * C + c] += s;
            }
        }
    }
}
