package mhc.engine.study;

import mhc.engine.Config;
import mhc.engine.model.Gains;
import mhc.engine.model.Model;
import mhc.engine.model.Params;

/**
 * How the Sinkhorn-Knopp iteration count of mhc changes its residual mixing: for a set of mhc
 * parameters and one batch, the column-sum error of every Hres (rows are exact by construction)
 * and the Amax gains, with {@code sinkhorn_iters} set to a given count.
 */
public final class SinkhornSweep {
    /**
     * One measurement.
     *
     * @param iters                 Sinkhorn iterations
     * @param columnError           max over sublayers, tokens and columns of |column sum of Hres - 1|
     * @param rowError              the same for row sums (0 up to float rounding)
     * @param maxBackward           max over sublayers of the single backward gain (token average)
     * @param maxCompositeBackward  max over sublayers of the composite backward gain
     * @param maxCompositeForward   max over sublayers of the composite forward gain
     * @param loss                  the batch's mean loss with this count
     * @param valLoss               validation loss of a model trained with this count (NaN unless the sweep trains)
     */
    public record Row(int iters, double columnError, double rowError, double maxBackward, double maxCompositeBackward,
                      double maxCompositeForward, double loss, double valLoss) {
    }

    private SinkhornSweep() {
    }

    /** A copy of {@code params} (same tensor values) whose config has {@code sinkhorn_iters = iters}. */
    public static Params withIters(Params params, int iters) {
        Config cfg = params.config().with("sinkhorn_iters", iters);
        Params out = new Params(cfg);
        for (String name : params.names()) {
            float[] src = params.get(name);
            System.arraycopy(src, 0, out.get(name), 0, src.length);
        }
        return out;
    }

    /** Measures mhc {@code params} with {@code iters} iterations on a batch of B rows of T+1 tokens. */
    public static Row measure(Params params, int iters, int[] batch, int B, int T, double valLoss) {
        Params p = params.config().sinkhornIters() == iters ? params : withIters(params, iters);
        Model model = new Model(p);
        double loss = model.forward(batch, B, T);
        int n = p.config().n();
        int L2 = p.config().sublayers();
        double colErr = 0, rowErr = 0;
        for (int l = 0; l < L2; l++) {
            colErr = Math.max(colErr, columnError(model.hres(l), n));
            rowErr = Math.max(rowErr, rowError(model.hres(l), n));
        }
        Gains g = model.gains();
        double maxB = 0;
        for (double v : g.backward()) {
            maxB = Math.max(maxB, v);
        }
        return new Row(iters, colErr, rowErr, maxB, g.maxCompositeBackward(), g.maxCompositeForward(), loss, valLoss);
    }

    /** max over tokens and columns of |sum_i H[i][j] - 1| for H of shape (N, n, n). */
    public static double columnError(float[] h, int n) {
        int nn = n * n;
        double worst = 0;
        for (int r = 0; r + nn <= h.length; r += nn) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int i = 0; i < n; i++) {
                    s += h[r + i * n + j];
                }
                worst = Math.max(worst, Math.abs(s - 1));
            }
        }
        return worst;
    }

    /** max over tokens and rows of |sum_j H[i][j] - 1|. */
    public static double rowError(float[] h, int n) {
        int nn = n * n;
        double worst = 0;
        for (int r = 0; r + nn <= h.length; r += nn) {
            for (int i = 0; i < n; i++) {
                double s = 0;
                for (int j = 0; j < n; j++) {
                    s += h[r + i * n + j];
                }
                worst = Math.max(worst, Math.abs(s - 1));
            }
        }
        return worst;
    }
}
