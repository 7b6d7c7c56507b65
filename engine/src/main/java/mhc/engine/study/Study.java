package mhc.engine.study;

import com.google.gson.JsonObject;
import mhc.engine.Config;
import mhc.engine.Init;
import mhc.engine.LanguageModel;
import mhc.engine.data.BatchSampler;
import mhc.engine.data.Corpus;
import mhc.engine.model.Params;

import java.util.ArrayList;
import java.util.List;

/**
 * The stability study: trains each connection with the same config (but its connection), the same
 * init seed, the same batches in the same order and the same schedule, recording per step the
 * loss, learning rate and gradient norm, at intervals the per-sublayer Amax gains and the
 * validation loss; then, optionally, the Sinkhorn iteration sweep of mhc.
 *
 * <p>Sweep modes: by default the trained mhc model is re-evaluated with each iteration count on
 * the first validation batch (same tensors, only {@code sinkhorn_iters} changed; cheap). With
 * {@code sweepTrain}, a fresh mhc model is trained per count with the study's schedule, and each
 * is measured with its own count (expensive: one training run per count).
 *
 * <p>A connection whose training diverges (non-finite loss or gradient) is recorded as diverged
 * at that step; the study goes on with the next one.
 */
public final class Study {

    /** Hears what the study does; every method is optional. */
    public interface Listener {
        /** Training of run {@code label} (a connection, or "mhc, sinkhorn_iters=k" in a training sweep) begins. */
        default void begin(String label, Config cfg, int steps) {
        }

        /**
         * After each step: {@code step, loss, lr, grad_norm, tokens_per_s}, and when measured
         * {@code val_loss, val_bpb} and {@code gain_fwd, gain_bwd} (max composite gains).
         */
        default void step(String label, JsonObject record) {
        }

        default void end(String label, ConnectionRun run) {
        }

        /** A free-form progress line (sweep rows, divergence). */
        default void note(String line) {
        }
    }

    private Study() {
    }

    /** Runs the whole study on {@code corpus} (which must hold a window of seq_len+1 bytes in both splits). */
    public static StudyResult run(StudySettings s, Corpus corpus, Listener listener) {
        corpus.requireWindow(s.base().seqLen());
        long t0 = System.nanoTime();
        List<ConnectionRun> runs = new ArrayList<>();
        for (String c : s.connections()) {
            runs.add(train(c, s.base().with("connection", c), s, corpus, listener));
        }
        List<SinkhornSweep.Row> sweep = new ArrayList<>();
        if (!s.sweepIters().isEmpty()) {
            Config mhcCfg = s.base().with("connection", "mhc");
            int B = mhcCfg.batchSize(), T = mhcCfg.seqLen();
            int[] batch = BatchSampler.evalBatch(corpus.validation(), B, T, 0, s.evalBatches());
            ConnectionRun trained = runs.stream().filter(r -> r.name().equals("mhc")).findFirst().orElse(null);
            for (int k : s.sweepIters()) {
                SinkhornSweep.Row row;
                if (s.sweepTrain()) {
                    ConnectionRun r = train("mhc, sinkhorn_iters=" + k, mhcCfg.with("sinkhorn_iters", k), s, corpus, listener);
                    if (r.diverged() != null) {
                        listener.note("sinkhorn_iters=" + k + ": training diverged (" + r.diverged() + "); no sweep row");
                        continue;
                    }
                    row = SinkhornSweep.measure(r.finalParams(), k, batch, B, T, r.finalValLoss());
                } else {
                    if (trained == null || trained.finalParams() == null) {
                        listener.note("the sweep has no trained mhc model (its training diverged)");
                        break;
                    }
                    row = SinkhornSweep.measure(trained.finalParams(), k, batch, B, T, Double.NaN);
                }
                sweep.add(row);
                listener.note(String.format(java.util.Locale.ROOT,
                        "sweep sinkhorn_iters=%d: column error %.3e, max composite backward gain %.4f, loss %.4f",
                        k, row.columnError(), row.maxCompositeBackward(), row.loss()));
            }
        }
        for (ConnectionRun r : runs) {
            r.finalParams = null; // the tensors are not part of the result
        }
        return new StudyResult(s, corpus.source(), runs, sweep, (System.nanoTime() - t0) / 1e9);
    }

    /** Trains one model of the study and records its curves. */
    static ConnectionRun train(String label, Config cfg, StudySettings s, Corpus corpus, Listener listener) {
        int steps = s.train().steps();
        int B = cfg.batchSize(), T = cfg.seqLen();
        Params params = Init.initialize(cfg, s.train().seed());
        ConnectionRun run = new ConnectionRun(label, cfg, params.count());
        listener.begin(label, cfg, steps);
        BatchSampler batches = new BatchSampler(corpus.train(), B, T, s.train().seed());
        long t0 = System.nanoTime();
        try (LanguageModel lm = LanguageModel.wrap(params, s.train(), s.threads())) {
            for (int step = 1; step <= steps; step++) {
                long ts = System.nanoTime();
                boolean gains = s.gainAt(step);
                LanguageModel.Step r;
                try {
                    r = lm.trainStep(batches.next(), gains);
                } catch (LanguageModel.DivergedException e) {
                    run.diverged = e.getMessage();
                    listener.note(label + ": training diverged: " + e.getMessage());
                    break;
                }
                run.loss.add(r.loss());
                run.lr.add(r.lr());
                run.gradNorm.add(r.gradNorm());
                JsonObject rec = new JsonObject();
                rec.addProperty("step", step);
                rec.addProperty("loss", r.loss());
                rec.addProperty("lr", r.lr());
                rec.addProperty("grad_norm", r.gradNorm());
                if (gains && r.gains() != null) {
                    run.gains.add(new ConnectionRun.GainPoint(step, r.gains()));
                    rec.addProperty("gain_fwd", r.gains().maxCompositeForward());
                    rec.addProperty("gain_bwd", r.gains().maxCompositeBackward());
                }
                if (s.evalAt(step)) {
                    double v = lm.evaluate(corpus.validation(), s.evalBatches());
                    run.val.add(new ConnectionRun.ValPoint(step, v));
                    rec.addProperty("val_loss", v);
                    rec.addProperty("val_bpb", v / Math.log(2));
                }
                rec.addProperty("tokens_per_s", (double) B * T / ((System.nanoTime() - ts) / 1e9));
                listener.step(label, rec);
            }
        }
        run.wallSeconds = (System.nanoTime() - t0) / 1e9;
        run.finalParams = run.diverged == null ? params : null;
        listener.end(label, run);
        return run;
    }
}
