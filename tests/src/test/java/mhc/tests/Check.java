package mhc.tests;

import org.junit.jupiter.api.Assertions;

import java.util.Locale;

/** Array comparisons that say where and by how much they fail. */
final class Check {
    private Check() {
    }

    /** {@code |got - ref| <= atol + rtol |ref|} everywhere; on failure, the worst index and the first values. */
    static void close(String what, double[] ref, double[] got, double atol, double rtol) {
        Assertions.assertEquals(ref.length, got.length, what + ": length");
        int worst = -1;
        double worstExcess = 0;
        int bad = 0;
        for (int i = 0; i < ref.length; i++) {
            double tol = atol + rtol * Math.abs(ref[i]);
            double d = Math.abs(got[i] - ref[i]);
            if (!(d <= tol)) {
                bad++;
                double excess = Double.isNaN(d) ? Double.POSITIVE_INFINITY : d - tol;
                if (worst < 0 || excess > worstExcess) {
                    worst = i;
                    worstExcess = excess;
                }
            }
        }
        if (bad > 0) {
            StringBuilder sb = new StringBuilder();
            sb.append(String.format(Locale.ROOT, "%s: %d of %d entries outside atol=%.1e rtol=%.1e; worst at %d: got %.9g ref %.9g (diff %.3e); first values:",
                    what, bad, ref.length, atol, rtol, worst, got[worst], ref[worst], Math.abs(got[worst] - ref[worst])));
            for (int i = 0; i < Math.min(4, ref.length); i++) {
                sb.append(String.format(Locale.ROOT, " [%d] %.6g vs %.6g", i, got[i], ref[i]));
            }
            Assertions.fail(sb.toString());
        }
    }

    static void close(String what, float[] ref, float[] got, double atol, double rtol) {
        close(what, toDouble(ref), toDouble(got), atol, rtol);
    }

    static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }
}
