package mhc.engine.bench;

import java.util.Arrays;

/**
 * Repeated timing of one call: warm up for {@code warmup} seconds (at least one call, so the JIT
 * has compiled the loops), then time calls one by one until at least {@code reps} calls and
 * {@code minTime} seconds (whichever comes later), at most {@code maxReps} calls.
 */
public final class Timing {
    public static final int MAX_REPS = 200_000;

    private Timing() {
    }

    /** Seconds per call, in the order measured. */
    public record Stats(double[] seconds) {
        public int runs() {
            return seconds.length;
        }

        public double median() {
            double[] s = seconds.clone();
            Arrays.sort(s);
            int n = s.length;
            return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
        }

        public double min() {
            return Arrays.stream(seconds).min().orElse(Double.NaN);
        }

        public double mean() {
            return Arrays.stream(seconds).average().orElse(Double.NaN);
        }

        /** Coefficient of variation: sample standard deviation over mean (0 for one run). */
        public double cv() {
            int n = seconds.length;
            if (n < 2) {
                return 0;
            }
            double m = mean(), ss = 0;
            for (double x : seconds) {
                ss += (x - m) * (x - m);
            }
            return Math.sqrt(ss / (n - 1)) / m;
        }
    }

    public static Stats measure(Runnable call, double warmup, double minTime, int reps) {
        long start = System.nanoTime();
        do {
            call.run();
        } while (System.nanoTime() - start < warmup * 1e9);
        double[] t = new double[Math.max(16, reps)];
        int k = 0;
        long begin = System.nanoTime();
        while (k < reps || (k < MAX_REPS && System.nanoTime() - begin < minTime * 1e9)) {
            long t0 = System.nanoTime();
            call.run();
            long t1 = System.nanoTime();
            if (k == t.length) {
                t = Arrays.copyOf(t, 2 * k);
            }
            t[k++] = (t1 - t0) / 1e9;
        }
        return new Stats(Arrays.copyOf(t, k));
    }
}
