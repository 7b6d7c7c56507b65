package mhc.engine.jvm;

import mhc.kernels.HcFused;
import mhc.kernels.RmsNorm;

/**
 * The HC connection's forward on the Vector API: {@link HcFused#hcPreForward}'s per-stream
 * dot products (the sum of squares for the RMS, and the products with w_pre, w_post and each
 * column of w_res) and the aggregate, vectorized along C with {@link FastMhc}'s helpers. It
 * keeps what the fused forward keeps (no xbar), so the fused backward of {@code FusedOps}
 * follows it unchanged. tanh stays {@code Math.tanh} in double, as in the plain kernel.
 */
final class FastHc {
    private FastHc() {
    }

    static void preForward(float[] u, float[] hpre, float[] hpost, float[] hres, float[] xrstd, float[] tpre,
                           float[] tpost, float[] tres, float[] x, float[] wPre, float[] wPost, float[] wResT,
                           float[] pre, float[] post, float[] res, float[] scale, float[] tmp, int N, int n, int C) {
        for (int r = 0; r < N; r++) {
            for (int j = 0; j < n; j++) {
                int xo = (r * n + j) * C;
                float ss = FastMhc.sumSquares(x, xo, C, tmp, 0);
                float s = (float) (1.0 / Math.sqrt(ss / C + RmsNorm.EPS));
                xrstd[r * n + j] = s;
                float tp = (float) Math.tanh(FastMhc.dot(x, xo, wPre, 0, C, tmp, 0) * s);
                float tq = (float) Math.tanh(FastMhc.dot(x, xo, wPost, 0, C, tmp, 0) * s);
                tpre[r * n + j] = tp;
                tpost[r * n + j] = tq;
                hpre[r * n + j] = scale[0] * tp + pre[j];
                hpost[r * n + j] = scale[1] * tq + post[j];
                // column j of Hres depends on stream j: Hres[k][j] for every k
                for (int k = 0; k < n; k++) {
                    float t = (float) Math.tanh(FastMhc.dot(x, xo, wResT, k * C, C, tmp, 0) * s);
                    tres[(r * n + k) * n + j] = t;
                    hres[(r * n + k) * n + j] = scale[0] * t + res[j * n + k];
                }
            }
            FastMhc.aggregate(u, r * C, x, r * n * C, hpre, r * n, n, C);
        }
    }
}
