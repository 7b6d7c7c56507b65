package mhc.engine.bench;

import mhc.engine.Backend;
import mhc.engine.Config;
import mhc.engine.Init;
import mhc.engine.LanguageModel;
import mhc.engine.train.TrainSettings;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Whole training steps ({@link LanguageModel#trainStep}: forward, backward, clipping, AdamW) of
 * one config with {@code residual} and with {@code mhc} connections, on one backend. The two
 * models train on the same fixed random batches, and their steps alternate (residual, mhc,
 * residual, mhc, ...) so that a drift of the machine's speed (other processes, thermal limits)
 * hits both alike; the mHC overhead is the ratio of the medians minus one, and also the median
 * of the per-pair ratios minus one.
 */
public final class StepBench {
    public static final List<String> CONNECTIONS = List.of("residual", "mhc");

    private StepBench() {
    }

    public record ConnectionResult(String connection, String summary, Timing.Stats stats, double tokensPerSecond,
                                   double lastLoss) {
    }

    public record Result(String backend, String description, int threads, int tokensPerStep, int warmup,
                         ConnectionResult residual, ConnectionResult mhc, double overhead, double pairedOverhead) {
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
            double[] lastLoss = new double[2];
            for (int s = 0; s < total; s++) {
                int[] batch = batches[s % batches.length];
                for (int m = 0; m < 2; m++) {
                    long t0 = System.nanoTime();
                    LanguageModel.Step step = models.get(m).trainStep(batch);
                    long t1 = System.nanoTime();
                    lastLoss[m] = step.loss();
                    if (s >= warmup) {
                        times[m][s - warmup] = (t1 - t0) / 1e9;
                    }
                }
            }
            ConnectionResult[] res = new ConnectionResult[2];
            for (int m = 0; m < 2; m++) {
                Timing.Stats st = new Timing.Stats(times[m]);
                res[m] = new ConnectionResult(CONNECTIONS.get(m), models.get(m).config().summary(), st,
                        B * T / st.median(), lastLoss[m]);
            }
            double[] ratios = new double[steps];
            for (int s = 0; s < steps; s++) {
                ratios[s] = times[1][s] / times[0][s];
            }
            double paired = new Timing.Stats(ratios).median() - 1;
            double overhead = res[1].stats().median() / res[0].stats().median() - 1;
            return new Result(backend.name(), backend.description(), threads, B * T, warmup, res[0], res[1], overhead, paired);
        } finally {
            for (LanguageModel m : models) {
                m.close();
            }
        }
    }
}
