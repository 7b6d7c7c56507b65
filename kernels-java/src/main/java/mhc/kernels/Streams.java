package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * The n-stream residual state around a sublayer (MODEL.md, forward pass step 2 and 3):
 * aggregate the streams into the sublayer input with {@code Hpre}, mix them with {@code Hres}
 * and add the sublayer output with {@code Hpost}, and the final mean over streams. The same
 * kernels serve residual (n = 1, coefficients 1), hc and mhc.
 */
public final class Streams {
    private Streams() {
    }

    /** {@code u[r] = sum_j hpre[r][j] x[r][j]}. */
    public static void aggregateForward(float[] u,    // (N, C)
                                        float[] x,    // (N, n, C)
                                        float[] hpre, // (N, n)
                                        int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int c = 0; c < C; c++) {
                float s = 0f;
                for (int j = 0; j < n; j++) {
                    s += hpre[r * n + j] * x[(r * n + j) * C + c];
                }
                u[r * C + c] = s;
            }
        }
    }

    /** Undoes {@code u = sum_j hpre[j] x[j]} for the streams: {@code dx[j] += hpre[j] du}. */
    public static void aggregateBackwardStreams(float[] dx,   // (N, n, C)
                                                float[] du,   // (N, C)
                                                float[] hpre, // (N, n)
                                                int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int c = 0; c < C; c++) {
                float g = du[r * C + c];
                for (int j = 0; j < n; j++) {
                    dx[(r * n + j) * C + c] += hpre[r * n + j] * g;
                }
            }
        }
    }

    /** Undoes {@code u = sum_j hpre[j] x[j]} for the coefficients: {@code dhpre[j] += du · x[j]}. */
    public static void aggregateBackwardCoeffs(float[] dhpre, // (N, n)
                                               float[] du,    // (N, C)
                                               float[] x,     // (N, n, C)
                                               int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int j = 0; j < n; j++) {
                float s = 0f;
                for (int c = 0; c < C; c++) {
                    s += du[r * C + c] * x[(r * n + j) * C + c];
                }
                dhpre[r * n + j] += s;
            }
        }
    }

    /** {@code xout[r][i] = sum_j hres[r][i][j] x[r][j] + hpost[r][i] y[r]}. */
    public static void mixForward(float[] xout,  // (N, n, C)
                                  float[] x,     // (N, n, C)
                                  float[] hres,  // (N, n, n)
                                  float[] hpost, // (N, n)
                                  float[] y,     // (N, C)
                                  int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int c = 0; c < C; c++) {
                float yc = y[r * C + c];
                for (int i = 0; i < n; i++) {
                    float s = hpost[r * n + i] * yc;
                    for (int j = 0; j < n; j++) {
                        s += hres[(r * n + i) * n + j] * x[(r * n + j) * C + c];
                    }
                    xout[(r * n + i) * C + c] = s;
                }
            }
        }
    }

    /**
     * Undoes {@code xout[i] = sum_j hres[i][j] x[j] + hpost[i] y} for streams and sublayer output:
     * {@code dx[j] += sum_i hres[i][j] dxout[i]}, {@code dy += sum_i hpost[i] dxout[i]}.
     */
    public static void mixBackwardStreams(float[] dx,    // (N, n, C)
                                          float[] dy,    // (N, C)
                                          float[] dxout, // (N, n, C)
                                          float[] hres,  // (N, n, n)
                                          float[] hpost, // (N, n)
                                          int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int c = 0; c < C; c++) {
                float gy = 0f;
                for (int i = 0; i < n; i++) {
                    gy += hpost[r * n + i] * dxout[(r * n + i) * C + c];
                }
                dy[r * C + c] += gy;
                for (int j = 0; j < n; j++) {
                    float s = 0f;
                    for (int i = 0; i < n; i++) {
                        s += hres[(r * n + i) * n + j] * dxout[(r * n + i) * C + c];
                    }
                    dx[(r * n + j) * C + c] += s;
                }
            }
        }
    }

    /**
     * The sublayer-output half of {@link #mixBackwardStreams} alone: {@code dy += sum_i hpost[i] dxout[i]},
     * with the same sums (so the same bits). The mHC backward needs dy before the sublayer's
     * backward and the streams' half only after it.
     */
    public static void mixBackwardOutput(float[] dy,    // (N, C)
                                         float[] dxout, // (N, n, C)
                                         float[] hpost, // (N, n)
                                         int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int c = 0; c < C; c++) {
                float gy = 0f;
                for (int i = 0; i < n; i++) {
                    gy += hpost[r * n + i] * dxout[(r * n + i) * C + c];
                }
                dy[r * C + c] += gy;
            }
        }
    }

    /**
     * Undoes {@code xout[i] = sum_j hres[i][j] x[j] + hpost[i] y} for the coefficients:
     * {@code dhres[i][j] += dxout[i] · x[j]}, {@code dhpost[i] += dxout[i] · y}.
     */
    public static void mixBackwardCoeffs(float[] dhres,  // (N, n, n)
                                         float[] dhpost, // (N, n)
                                         float[] dxout,  // (N, n, C)
                                         float[] x,      // (N, n, C)
                                         float[] y,      // (N, C)
                                         int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int i = 0; i < n; i++) {
                int go = (r * n + i) * C;
                float sp = 0f;
                for (int c = 0; c < C; c++) {
                    sp += dxout[go + c] * y[r * C + c];
                }
                dhpost[r * n + i] += sp;
                for (int j = 0; j < n; j++) {
                    int xo = (r * n + j) * C;
                    float s = 0f;
                    for (int c = 0; c < C; c++) {
                        s += dxout[go + c] * x[xo + c];
                    }
                    dhres[(r * n + i) * n + j] += s;
                }
            }
        }
    }

    /** {@code u[r] = (1/n) sum_i x[r][i]}: the collapse before the final norm. */
    public static void collapseForward(float[] u, // (N, C)
                                       float[] x, // (N, n, C)
                                       int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int c = 0; c < C; c++) {
                float s = 0f;
                for (int i = 0; i < n; i++) {
                    s += x[(r * n + i) * C + c];
                }
                u[r * C + c] = s / n;
            }
        }
    }

    /** Undoes {@code u = (1/n) sum_i x[i]}: {@code dx[i] += du / n}. */
    public static void collapseBackward(float[] dx, // (N, n, C)
                                        float[] du, // (N, C)
                                        int N, int n, int C) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int c = 0; c < C; c++) {
                float g = du[r * C + c] / n;
                for (int i = 0; i < n; i++) {
                    dx[(r * n + i) * C + c] += g;
                }
            }
        }
    }
}
