package mhc.engine.study;

import mhc.engine.Config;
import mhc.engine.InputException;
import mhc.engine.train.TrainSettings;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a stability study does: the model config shared by every connection (its {@code connection}
 * key is replaced per run), the connections to train, the one schedule they all share, how often
 * to measure, and the optional Sinkhorn iteration sweep of mhc.
 *
 * @param base        the model config; each run uses {@code base.with("connection", c)}
 * @param connections residual, hc and/or mhc, each once, in the order they are trained
 * @param train       steps, learning-rate schedule and seed; the seed is both the init seed and the batch-sampler seed
 * @param gainEvery   steps between Amax gain measurements (also at step 1 and the last step); 0: only at those two
 * @param evalEvery   steps between validation losses (also at the last step); 0: only at the last step
 * @param evalBatches validation batches per evaluation
 * @param sweepIters  Sinkhorn iteration counts of the sweep, ascending; empty: no sweep
 * @param sweepTrain  the sweep trains a fresh mhc model per count (instead of re-evaluating the trained one)
 * @param threads     worker threads (the numbers do not depend on it)
 */
public record StudySettings(Config base, List<String> connections, TrainSettings train, int gainEvery, int evalEvery,
                            int evalBatches, List<Integer> sweepIters, boolean sweepTrain, int threads) {

    public static final List<String> ALL_CONNECTIONS = List.of("residual", "hc", "mhc");

    /**
     * The default model of a study: the {@code tiny} preset (C=64, H=2, n=4, T=64, F=172) deepened to
     * 12 blocks (24 sublayers) with batches of 8 sequences; about 0.7M parameters.
     */
    public static Config defaultConfig() {
        return Config.preset("tiny").withAll(Map.of("blocks", 12, "batch_size", 8));
    }

    /** Default steps: sized so the three connections train in well under an hour on 2 cores. */
    public static final int DEFAULT_STEPS = 1000;
    /** Default peak learning rate (the engine's training default). */
    public static final double DEFAULT_LR = 3e-3;

    public StudySettings {
        connections = List.copyOf(connections);
        sweepIters = List.copyOf(sweepIters);
        if (connections.isEmpty()) {
            throw new InputException("--connections is empty: give one or more of residual, hc, mhc");
        }
        if (gainEvery < 0 || evalEvery < 0) {
            throw new InputException("--gain-every and --eval-every must be >= 0");
        }
        if (evalBatches < 1) {
            throw new InputException("--eval-batches must be >= 1, got " + evalBatches);
        }
        if (threads < 1) {
            throw new InputException("--threads must be >= 1, got " + threads);
        }
        if (!sweepIters.isEmpty() && !sweepTrain && !connections.contains("mhc")) {
            throw new InputException("--sinkhorn-iters sweeps the trained mhc model: add mhc to --connections (or use --sweep-train)");
        }
    }

    /** Parses a comma-separated list of connection names: each of residual, hc, mhc, at most once. */
    public static List<String> parseConnections(String list) {
        if (list == null || list.isBlank()) {
            throw new InputException("--connections is empty: give one or more of residual, hc, mhc, comma-separated");
        }
        List<String> out = new ArrayList<>();
        for (String part : list.split(",", -1)) {
            String c = part.strip().toLowerCase(Locale.ROOT);
            if (c.isEmpty()) {
                throw new InputException("--connections '" + list + "' has an empty entry; give names like residual,hc,mhc");
            }
            if (!ALL_CONNECTIONS.contains(c)) {
                throw new InputException("--connections: unknown connection '" + part.strip() + "'; use residual, hc or mhc");
            }
            if (out.contains(c)) {
                throw new InputException("--connections: '" + c + "' is given twice");
            }
            out.add(c);
        }
        return out;
    }

    /** Parses the sweep list, e.g. "1,3,5,10,20,40": distinct integers >= 0, returned ascending. */
    public static List<Integer> parseSweep(String list) {
        if (list == null || list.isBlank()) {
            throw new InputException("--sinkhorn-iters is empty: give iteration counts like 1,3,5,10,20,40");
        }
        List<Integer> out = new ArrayList<>();
        for (String part : list.split(",", -1)) {
            String p = part.strip();
            int k;
            try {
                k = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                throw new InputException("--sinkhorn-iters: '" + p + "' is not an integer; give counts like 1,3,5,10,20,40");
            }
            if (k < 0) {
                throw new InputException("--sinkhorn-iters: " + k + " is negative; iteration counts are >= 0");
            }
            if (k > 10_000) {
                throw new InputException("--sinkhorn-iters: " + k + " is more than 10000 iterations");
            }
            if (out.contains(k)) {
                throw new InputException("--sinkhorn-iters: " + k + " is given twice");
            }
            out.add(k);
        }
        out.sort(null);
        return out;
    }

    /** Whether step s (1-based) measures the gains. */
    public boolean gainAt(int s) {
        return s == 1 || s == train.steps() || (gainEvery > 0 && s % gainEvery == 0);
    }

    /** Whether step s (1-based) evaluates the validation loss. */
    public boolean evalAt(int s) {
        return s == train.steps() || (evalEvery > 0 && s % evalEvery == 0);
    }
}
