package mhc.engine.bench;

import mhc.engine.Backend;
import mhc.engine.Config;
import mhc.engine.Init;
import mhc.engine.LanguageModel;
import mhc.engine.train.TrainSettings;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Whole training steps ({@link LanguageModel#trainStep}: forward, backward, clipping, AdamW) of
 * one config with {@code residual} and with {@code mhc} connections, on one backend. The two
 * models train on the same fixed random batches, and their steps alternate (residual, mhc,
 * residual, mhc, ...) so that a drift of the machine's speed (other processes, thermal limits)
 * hits both alike; the mHC overhead is the ratio of the medians minus one, and also the median
 * of the per-pair ratios minus one.
 *
 * <p>Each step is also timed in CPU time (all the process's Java threads). On a virtual machine
 * whose host is oversubscribed, the hypervisor takes CPU time away from the guest ("steal"), and
 * wall-clock steps then swing by tens of percent; CPU time leaves the stolen time out (Linux
 * accounts it apart), so the overhead from CPU time is the steadier figure there. The share of
 * the machine's CPU time stolen during the steps is reported (Linux {@code /proc/stat}).
 */
public final class StepBench {
    public static final List<String> CONNECTIONS = List.of("residual", "mhc");

    private StepBench() {
    }

    /** {@code stats}: wall-clock seconds per step; {@code cpu}: CPU seconds per step of the process's Java threads. */
    public record ConnectionResult(String connection, String summary, Timing.Stats stats, Timing.Stats cpu,
                                   double tokensPerSecond, double lastLoss) {
    }

    /**
     * {@code cpuOverhead}/{@code cpuPairedOverhead}: the same two figures as the wall-clock ones,
     * from CPU time; {@code steal}: the share of the machine's CPU time that the hypervisor
     * took during the steps, or NaN where the OS does not report it.
     */
    public record Result(String backend, String description, int threads, int tokensPerStep, int warmup,
                         ConnectionResult residual, ConnectionResult mhc, double overhead, double pairedOverhead,
                         double cpuOverhead, double cpuPairedOverhead, double steal, Interval pairedInterval) {
    }

    /**
     * An interval {@code [lo, hi]} for a median, and the probability {@code confidence} with which
     * such an interval holds the true median (given independent samples; no other assumption).
     */
    public record Interval(double lo, double hi, double confidence) {
    }

    /** The confidence {@link #medianInterval} aims at. */
    public static final double CONFIDENCE = 0.95;

    /**
     * The distribution-free interval for the median of {@code xs}: the k-th smallest and k-th
     * largest values, with k the largest for which the binomial tail {@code P(Bin(n, 1/2) < k)}
     * stays within {@code (1 - CONFIDENCE) / 2} (each sample falls below the median with
     * probability 1/2). Its confidence is {@code 1 - 2 P(Bin(n, 1/2) < k)}. Under 6 samples no
     * interval reaches 95%: then the smallest and largest values, with their lower confidence.
     * On a shared machine the steps are not independent, so this says how far the figure can be
     * trusted at best: a wide interval means more steps ({@code --step-steps}) or a quieter machine.
     */
    public static Interval medianInterval(double[] xs) {
        int n = xs.length;
        if (n == 0) {
            return new Interval(Double.NaN, Double.NaN, 0);
        }
        double[] sorted = xs.clone();
        Arrays.sort(sorted);
        double term = Math.pow(0.5, n); // P(Bin(n, 1/2) = k - 1)
        double tail = term;             // P(Bin(n, 1/2) < k)
        int k = 1;
        while (k + 1 <= (n + 1) / 2) {
            double nextTerm = term * (n - k + 1) / k; // P(Bin = k), from P(Bin = k - 1)
            if (tail + nextTerm > (1 - CONFIDENCE) / 2) {
                break;
            }
            term = nextTerm;
            tail += nextTerm;
            k++;
        }
        double confidence = 1 - 2 * tail;
        return new Interval(sorted[k - 1], sorted[n - k], confidence);
    }

    /** {@code warmup} untimed then {@code steps} timed steps per connection, interleaved. */
    public static Result run(Config cfg, Backend backend, int requestedThreads, int warmup, int steps, long seed) {
        int threads = backend.workerThreads(requestedThreads);
        int B = cfg.batchSize(), T = cfg.seqLen();
        int total = warmup + steps;
        SplittableRandom r = new SplittableRandom(seed);
        int[][] batches = new int[Math.min(total, 4)][B * (T + 1)];
        for (int[] b : batches) {
            for (int i = 0; i < b.length; i++) {
                b[i] = r.nextInt(cfg.vocab());
            }
        }
        TrainSettings settings = TrainSettings.defaults().withSteps(Math.max(1, total)).withWarmup(0);
        List<LanguageModel> models = new ArrayList<>();
        try {
            for (String c : CONNECTIONS) {
                models.add(LanguageModel.wrap(Init.initialize(cfg.with("connection", c), seed), settings, threads, backend));
            }
            double[][] times = new double[2][steps];
            double[][] cpu = new double[2][steps];
            double[] lastLoss = new double[2];
            CpuClock.Steal steal = null;
            for (int s = 0; s < total; s++) {
                if (s == warmup) {
                    steal = CpuClock.stealSince(null);
                }
                int[] batch = batches[s % batches.length];
                for (int m = 0; m < 2; m++) {
                    long c0 = CpuClock.threadNanos();
                    long t0 = System.nanoTime();
                    LanguageModel.Step step = models.get(m).trainStep(batch);
                    long t1 = System.nanoTime();
                    long c1 = CpuClock.threadNanos();
                    lastLoss[m] = step.loss();
                    if (s >= warmup) {
                        times[m][s - warmup] = (t1 - t0) / 1e9;
                        cpu[m][s - warmup] = c0 < 0 ? Double.NaN : (c1 - c0) / 1e9; // NaN: no thread CPU clock
                    }
                }
            }
            double stolen = steal == null ? Double.NaN : CpuClock.stealSince(steal).share();
            ConnectionResult[] res = new ConnectionResult[2];
            for (int m = 0; m < 2; m++) {
                Timing.Stats st = new Timing.Stats(times[m]);
                res[m] = new ConnectionResult(CONNECTIONS.get(m), models.get(m).config().summary(), st,
                        new Timing.Stats(cpu[m]), B * T / st.median(), lastLoss[m]);
            }
            return new Result(backend.name(), backend.description(), threads, B * T, warmup, res[0], res[1],
                    overhead(times), pairedOverhead(times), overhead(cpu), pairedOverhead(cpu), stolen,
                    pairedInterval(times));
        } finally {
            for (LanguageModel m : models) {
                m.close();
            }
        }
    }

    /** The ratio of the mhc steps' median to the residual steps' median, minus one. */
    static double overhead(double[][] times) {
        return new Timing.Stats(times[1]).median() / new Timing.Stats(times[0]).median() - 1;
    }

    /** The median of the per-pair ratios mhc / residual (steps interleaved), minus one. */
    static double pairedOverhead(double[][] times) {
        return new Timing.Stats(pairRatios(times)).median() - 1;
    }

    /** {@link #medianInterval} of the per-pair ratios, minus one: the interval of {@link #pairedOverhead}. */
    static Interval pairedInterval(double[][] times) {
        Interval i = medianInterval(pairRatios(times));
        return new Interval(i.lo() - 1, i.hi() - 1, i.confidence());
    }

    private static double[] pairRatios(double[][] times) {
        double[] ratios = new double[times[0].length];
        for (int s = 0; s < ratios.length; s++) {
            ratios[s] = times[1][s] / times[0][s];
        }
        return ratios;
    }
}
