package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * The coefficients of manifold-constrained hyper-connections (MODEL.md, "mhc"). Per token,
 * with {@code v} the n streams flattened stream-major (nC entries) and M = n*n + 2n:
 * <pre>
 *   r = sqrt(mean(v^2) + 1e-6)                       rmsForward
 *   h = v · phi                                      Matmul (N, nC) x (nC, M)
 *   zpre  = alpha[0] h[0..n)   / r + bias[0..n)      mhcCoeffForward
 *   zpost = alpha[1] h[n..2n)  / r + bias[n..2n)
 *   zres  = alpha[2] h[2n..M)  / r + bias[2n..M)
 *   Hpre = sigmoid(zpre), Hpost = 2 sigmoid(zpost)   mhcCoeffForward
 *   Hres = sinkhorn(zres)                            Sinkhorn
 * </pre>
 */
public final class Mhc {
    public static final float EPS = 1e-6f;

    private Mhc() {
    }

    /** {@code rms[r] = sqrt(mean(v[r]^2) + 1e-6)} over K entries. */
    public static void rmsForward(float[] rms, // (N)
                                  float[] v,   // (N, K)
                                  int N, int K) {
        for (@Parallel int r = 0; r < N; r++) {
            float ss = 0f;
            for (int k = 0; k < K; k++) {
                float e = v[r * K + k];
                ss += e * e;
            }
            rms[r] = (float) Math.sqrt(ss / K + EPS);
        }
    }

    /** Undoes {@code rms = sqrt(mean(v^2) + eps)}: {@code dv += drms v / (K rms)}. */
    public static void rmsBackward(float[] dv,   // (N, K)
                                   float[] drms, // (N)
                                   float[] v,    // (N, K)
                                   float[] rms,  // (N)
                                   int N, int K) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int k = 0; k < K; k++) {
                dv[r * K + k] += drms[r] * v[r * K + k] / (K * rms[r]);
            }
        }
    }

    public static void mhcCoeffForward(float[] hpre,  // (N, n)
                                       float[] hpost, // (N, n)
                                       float[] zres,  // (N, n, n) logits of Hres
                                       float[] h,     // (N, M) = v · phi
                                       float[] rms,   // (N)
                                       float[] alpha, // (3)
                                       float[] bias,  // (M)
                                       int N, int n) {
        int M = n * n + 2 * n;
        for (@Parallel int r = 0; r < N; r++) {
            float inv = 1f / rms[r];
            for (int j = 0; j < n; j++) {
                float zp = alpha[0] * h[r * M + j] * inv + bias[j];
                hpre[r * n + j] = (float) (1.0 / (1.0 + Math.exp(-zp)));
                float zq = alpha[1] * h[r * M + n + j] * inv + bias[n + j];
                hpost[r * n + j] = (float) (2.0 / (1.0 + Math.exp(-zq)));
            }
            for (int e = 0; e < n * n; e++) {
                zres[r * n * n + e] = alpha[2] * h[r * M + 2 * n + e] * inv + bias[2 * n + e];
            }
        }
    }

    /**
     * Undoes {@code z[m] = alpha[g(m)] h[m] / r + bias[m]} and the sigmoids for one token. Writes
     * {@code workDz} (the logit gradients, needed by {@link #mhcCoeffParamBackward}) and adds
     * {@code dh[m] += dz[m] alpha[g] / r}, {@code drms += -sum_m dz[m] alpha[g] h[m] / r^2}.
     * Through the sigmoids: {@code dzpre = dHpre Hpre (1 - Hpre)},
     * {@code dzpost = dHpost Hpost (1 - Hpost/2)}; {@code dzres} comes from the Sinkhorn backward.
     */
    public static void mhcCoeffBackward(float[] dh,     // (N, M)
                                        float[] drms,   // (N)
                                        float[] workDz, // (N, M) logit gradients, overwritten
                                        float[] dhpre,  // (N, n)
                                        float[] dhpost, // (N, n)
                                        float[] dzres,  // (N, n, n)
                                        float[] hpre,   // (N, n)
                                        float[] hpost,  // (N, n)
                                        float[] h,      // (N, M)
                                        float[] rms,    // (N)
                                        float[] alpha,  // (3)
                                        int N, int n) {
        int M = n * n + 2 * n;
        for (@Parallel int r = 0; r < N; r++) {
            float inv = 1f / rms[r];
            float dr = 0f;
            for (int m = 0; m < M; m++) {
                float dz;
                float a;
                if (m < n) {
                    float s = hpre[r * n + m];
                    dz = dhpre[r * n + m] * s * (1f - s);
                    a = alpha[0];
                } else if (m < 2 * n) {
                    float s = hpost[r * n + m - n];
                    dz = dhpost[r * n + m - n] * s * (1f - 0.5f * s);
                    a = alpha[1];
                } else {
                    dz = dzres[r * n * n + m - 2 * n];
                    a = alpha[2];
                }
                workDz[r * M + m] = dz;
                dh[r * M + m] += dz * a * inv;
                dr -= dz * a * h[r * M + m] * inv * inv;
            }
            drms[r] += dr;
        }
    }

    /**
     * Parameter gradients from the logit gradients: {@code dbias[m] += sum_r dz[r][m]},
     * {@code dalpha[g] += sum_r sum_{m in group g} dz[r][m] h[r][m] / r}. One thread per
     * parameter entry (M + 3 of them), each summing over all tokens.
     */
    public static void mhcCoeffParamBackward(float[] dalpha, // (3)
                                             float[] dbias,  // (M)
                                             float[] workDz, // (N, M)
                                             float[] h,      // (N, M)
                                             float[] rms,    // (N)
                                             int N, int n) {
        int M = n * n + 2 * n;
        for (@Parallel int p = 0; p < M + 3; p++) {
            if (p < M) {
                float s = 0f;
                for (int r = 0; r < N; r++) {
                    s += workDz[r * M + p];
                }
                dbias[p] += s;
            } else {
                int g = p - M;
                int lo = g == 0 ? 0 : (g == 1 ? n : 2 * n);
                int hi = g == 0 ? n : (g == 1 ? 2 * n : M);
                float s = 0f;
                for (int r = 0; r < N; r++) {
                    float inv = 1f / rms[r];
                    for (int m = lo; m < hi; m++) {
                        s += workDz[r * M + m] * h[r * M + m] * inv;
                    }
                }
                dalpha[g] += s;
            }
        }
    }
}
