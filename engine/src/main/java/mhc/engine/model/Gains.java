package mhc.engine.model;

/**
 * Amax gains per sublayer (MODEL.md, "Stability measure"), each averaged over a batch's tokens:
 * {@code forward[l]} (largest absolute row sum of Hres_l), {@code backward[l]} (largest absolute
 * column sum), and the same for the composite {@code P_l = Hres_{2L-1} ... Hres_l}.
 */
public record Gains(double[] forward, double[] backward, double[] compositeForward, double[] compositeBackward) {

    public double maxCompositeForward() {
        return max(compositeForward);
    }

    public double maxCompositeBackward() {
        return max(compositeBackward);
    }

    private static double max(double[] a) {
        double m = Double.NEGATIVE_INFINITY;
        for (double v : a) {
            m = Math.max(m, v);
        }
        return m;
    }
}
