package mhc.engine.bench;

import java.util.Locale;

/**
 * Compares a backend's output with the plain kernel's. A float entry passes when
 * {@code |got - ref| <= atolOfMax * max|ref| + rtol * |ref|}: the absolute part scales with the
 * output's largest magnitude, so entries that cancel to near zero (a weight gradient summed over
 * thousands of rows) are judged against the size of the numbers that produced them, not against
 * their own. Integer outputs (expert selections and dispatch lists) must match exactly. A NaN or
 * an infinity where the reference is finite always fails.
 *
 * <pre>{@code
 * Validator.Mismatch m = Validator.compare("out", ref, got, Validator.Tolerance.STANDARD);
 * if (m != null) System.out.println(m.describe());
 * }</pre>
 */
public final class Validator {
    private Validator() {
    }

    /** {@code |got - ref| <= atolOfMax * max|ref| + rtol * |ref|}. */
    public record Tolerance(double atolOfMax, double rtol) {
        /** One kernel call whose sums may be reordered (vectorized, tiled, split across threads). */
        public static final Tolerance STANDARD = new Tolerance(1e-4, 1e-4);
        /**
         * Long chains: the 20 unrolled Sinkhorn steps and their reverse, and the connection groups
         * built on them; a reordered sum early in the chain is amplified by the later steps.
         */
        public static final Tolerance CHAINED = new Tolerance(1e-3, 1e-3);

        public String describe() {
            return String.format(Locale.ROOT, "|got-ref| <= %.0e*max|ref| + %.0e*|ref|", atolOfMax, rtol);
        }
    }

    /**
     * Where one output differs: the entry that exceeds its tolerance the most, its values, and how
     * many entries fail.
     */
    public record Mismatch(String output, int index, double got, double ref, double tolerance, long bad, long total) {
        public String describe() {
            return String.format(Locale.ROOT, "output '%s': %d of %d entries outside tolerance; worst at index %d: got %.9g, ref %.9g (|diff| %.3e > tol %.3e)",
                    output, bad, total, index, got, ref, Math.abs(got - ref), tolerance);
        }
    }

    /** The comparison of one output: a mismatch or null, and the largest error relative to max|ref|. */
    public record Result(Mismatch mismatch, double relError) {
        public boolean ok() {
            return mismatch == null;
        }
    }

    /** Null when every entry is within tolerance. */
    public static Mismatch compare(String output, float[] ref, float[] got, Tolerance tol) {
        return check(output, ref, got, tol).mismatch();
    }

    /** The mismatch (or null) and {@code max|got - ref| / max|ref|}. */
    public static Result check(String output, float[] ref, float[] got, Tolerance tol) {
        if (ref.length != got.length) {
            return new Result(new Mismatch(output + " (length " + got.length + ", expected " + ref.length + ")",
                    0, Double.NaN, Double.NaN, 0, Math.max(ref.length, got.length), ref.length), Double.POSITIVE_INFINITY);
        }
        double maxRef = 0;
        for (float r : ref) {
            if (Float.isFinite(r)) {
                maxRef = Math.max(maxRef, Math.abs(r));
            }
        }
        double atol = tol.atolOfMax() * maxRef + 1e-30;
        int worst = -1;
        double worstExcess = 0, worstTol = 0, maxDiff = 0;
        long bad = 0;
        for (int i = 0; i < ref.length; i++) {
            double r = ref[i], g = got[i];
            double d = Math.abs(g - r);
            double t = atol + tol.rtol() * Math.abs(r);
            boolean ok = d <= t || (r == g); // r == g: equal infinities of a non-finite reference
            if (Double.isFinite(d)) {
                maxDiff = Math.max(maxDiff, d);
            } else if (!(r == g)) {
                maxDiff = Double.POSITIVE_INFINITY;
            }
            if (!ok) {
                bad++;
                double excess = Double.isNaN(d) ? Double.POSITIVE_INFINITY : d - t;
                if (worst < 0 || excess > worstExcess) {
                    worst = i;
                    worstExcess = excess;
                    worstTol = t;
                }
            }
        }
        double rel = maxRef > 0 ? maxDiff / maxRef : maxDiff;
        if (bad == 0) {
            return new Result(null, rel);
        }
        return new Result(new Mismatch(output, worst, got[worst], ref[worst], worstTol, bad, ref.length), rel);
    }

    /** Integer outputs must be equal. */
    public static Result check(String output, int[] ref, int[] got) {
        if (ref.length != got.length) {
            return new Result(new Mismatch(output + " (length " + got.length + ", expected " + ref.length + ")",
                    0, Double.NaN, Double.NaN, 0, Math.max(ref.length, got.length), ref.length), Double.POSITIVE_INFINITY);
        }
        int first = -1;
        long bad = 0;
        for (int i = 0; i < ref.length; i++) {
            if (ref[i] != got[i]) {
                bad++;
                if (first < 0) {
                    first = i;
                }
            }
        }
        return bad == 0 ? new Result(null, 0)
                : new Result(new Mismatch(output, first, got[first], ref[first], 0, bad, ref.length), Double.POSITIVE_INFINITY);
    }
}
