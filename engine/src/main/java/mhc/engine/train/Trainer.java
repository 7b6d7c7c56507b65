package mhc.engine.train;

import com.google.gson.JsonObject;
import mhc.engine.Config;
import mhc.engine.InputException;
import mhc.engine.data.BatchSampler;
import mhc.engine.data.Corpus;
import mhc.engine.model.Gains;
import mhc.engine.model.Params;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * The training loop: batches from a corpus, forward/backward on the JVM across threads,
 * AdamW with warmup, cosine decay and clipping, the router-bias update, periodic evaluation,
 * Amax gains and checkpoints, one JSON line per step.
 *
 * <pre>
 *   for step in start..steps-1:
 *       batch = sampler.next()                     seeded; state saved in checkpoints
 *       loss, grads = StepRunner.step(batch)       stops here if anything is non-finite
 *       AdamW(lr(step), clip);  router_bias += gamma sign(mean_load - load)
 *       log; eval / gains / checkpoint every N steps; stop cleanly if asked to
 * </pre>
 */
public final class Trainer {
    private static final Logger log = LoggerFactory.getLogger(Trainer.class);

    /**
     * How a run reports and saves.
     *
     * @param evalEvery       steps between validation evaluations (0: only at the end)
     * @param evalBatches     validation batches per evaluation
     * @param checkpointEvery steps between checkpoints (0: only at the end)
     * @param gainEvery       steps between Amax-gain measurements (0: never)
     * @param threads         worker threads (results do not depend on it)
     */
    public record Options(int evalEvery, int evalBatches, int checkpointEvery, int gainEvery, int threads) {
        public static Options defaults() {
            return new Options(100, 8, 100, 100, Runtime.getRuntime().availableProcessors());
        }
    }

    /** Raised when a loss or gradient becomes NaN or infinite; nothing is saved after it. */
    public static final class DivergedException extends RuntimeException {
        public DivergedException(String message) {
            super(message);
        }
    }

    private final Params params;
    private final Config cfg;
    private final TrainSettings settings;
    private final Corpus corpus;
    private final Options options;
    private final Optimizer optimizer;
    private final BatchSampler sampler;
    private final Path outDir;
    private final Path logFile;
    private int step;
    private volatile boolean stopRequested;
    private Consumer<JsonObject> listener = r -> {
    };
    private double lastValLoss = Double.NaN;

    /** A new run from initialized parameters. */
    public Trainer(Params params, TrainSettings settings, Corpus corpus, Path outDir, Path logFile, Options options) {
        this(params, settings, corpus, outDir, logFile, options, new Optimizer(params.config(), settings), 0, null);
    }

    /** A run resumed from a training checkpoint. */
    public static Trainer resume(TrainState state, TrainSettings settings, Corpus corpus, Path outDir, Path logFile, Options options) {
        Optimizer opt = new Optimizer(settings, state.m(), state.v(), state.step());
        return new Trainer(state.params(), settings, corpus, outDir, logFile, options, opt, state.step(), state.samplerState());
    }

    private Trainer(Params params, TrainSettings settings, Corpus corpus, Path outDir, Path logFile, Options options,
                    Optimizer optimizer, int step, Long samplerState) {
        this.params = params;
        this.cfg = params.config();
        this.settings = settings;
        this.corpus = corpus;
        this.options = options;
        this.optimizer = optimizer;
        this.outDir = outDir;
        this.logFile = logFile;
        this.step = step;
        corpus.requireWindow(cfg.seqLen());
        this.sampler = new BatchSampler(corpus.train(), cfg.batchSize(), cfg.seqLen(), settings.seed());
        if (samplerState != null) {
            sampler.restore(samplerState);
        }
    }

    /** Receives every log record (the JSON line of a step, with eval and gain fields when measured). */
    public void onRecord(Consumer<JsonObject> l) {
        this.listener = l;
    }

    /** Asks the loop to stop after the current step and write a checkpoint (e.g. on Ctrl-C). */
    public void requestStop() {
        stopRequested = true;
    }

    public Params params() {
        return params;
    }

    public int step() {
        return step;
    }

    public double lastValLoss() {
        return lastValLoss;
    }

    /** Path of the checkpoint written after {@code s} steps. */
    public static Path checkpointPath(Path dir, int s) {
        return dir.resolve(String.format(Locale.ROOT, "step-%06d.safetensors", s));
    }

    /** Trains to {@code settings.steps()} (or until stopped); returns the path of the last checkpoint. */
    public Path run() {
        int B = cfg.batchSize(), T = cfg.seqLen();
        Params grads = new Params(cfg);
        Path last = null;
        try (StepRunner runner = new StepRunner(params, options.threads());
             BufferedWriter jsonl = logFile == null ? null : Files.newBufferedWriter(logFile, StandardCharsets.UTF_8,
                     StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            while (step < settings.steps()) {
                long t0 = System.nanoTime();
                int[] batch = sampler.next();
                boolean gainsNow = options.gainEvery() > 0 && (step + 1) % options.gainEvery() == 0;
                StepRunner.Result r = runner.step(batch, B, T, grads, gainsNow);
                if (r.nonFinite() != null || !Double.isFinite(r.loss())) {
                    throw new DivergedException(String.format(Locale.ROOT,
                            "step %d: the loss is %s; the first non-finite output is in %s. Nothing was saved after step %d; "
                                    + "lower --lr or resume from an earlier checkpoint", step + 1, r.loss(),
                            r.nonFinite() == null ? "the loss" : r.nonFinite(), step));
                }
                double norm = Optimizer.gradNorm(grads);
                if (!Double.isFinite(norm)) {
                    throw new DivergedException(String.format(Locale.ROOT,
                            "step %d: the gradient of %s is not finite (loss %.4f). Nothing was saved after step %d; "
                                    + "lower --lr or resume from an earlier checkpoint", step + 1,
                            Optimizer.firstNonFiniteGradient(grads), r.loss(), step));
                }
                double lr = settings.lrAt(step);
                optimizer.update(params, grads, lr, norm);
                Optimizer.updateRouterBias(params, r.loads());
                step++;
                double seconds = (System.nanoTime() - t0) / 1e9;
                JsonObject rec = new JsonObject();
                rec.addProperty("step", step);
                rec.addProperty("loss", r.loss());
                rec.addProperty("lr", lr);
                rec.addProperty("grad_norm", norm);
                rec.addProperty("tokens_per_s", B * T / seconds);
                if (r.gains() != null) {
                    Gains g = r.gains();
                    rec.addProperty("gain_fwd", g.maxCompositeForward());
                    rec.addProperty("gain_bwd", g.maxCompositeBackward());
                }
                boolean lastStep = step == settings.steps();
                if ((options.evalEvery() > 0 && step % options.evalEvery() == 0) || lastStep) {
                    double val = evaluate(runner, options.evalBatches());
                    lastValLoss = val;
                    rec.addProperty("val_loss", val);
                    rec.addProperty("val_bpb", val / Math.log(2));
                }
                if (jsonl != null) {
                    jsonl.write(rec.toString());
                    jsonl.newLine();
                    jsonl.flush();
                }
                listener.accept(rec);
                if ((options.checkpointEvery() > 0 && step % options.checkpointEvery() == 0) || lastStep || stopRequested) {
                    last = save();
                }
                if (stopRequested) {
                    log.info("stopped after step {}; checkpoint {}", step, last);
                    break;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the log " + logFile + ": " + e.getMessage(), e);
        }
        return last;
    }

    /** Mean validation loss (nats per byte) over fixed, evenly spaced windows of the validation split. */
    public double evaluate(StepRunner runner, int batches) {
        int B = cfg.batchSize(), T = cfg.seqLen();
        double sum = 0;
        for (int i = 0; i < batches; i++) {
            sum += runner.loss(BatchSampler.evalBatch(corpus.validation(), B, T, i, batches), B, T);
        }
        return sum / batches;
    }

    private Path save() {
        if (outDir == null) {
            return null;
        }
        Path p = checkpointPath(outDir, step);
        new TrainState(params, optimizer.firstMoments(), optimizer.secondMoments(), step, sampler.state(), settings,
                corpus.source()).save(p);
        return p;
    }

    /** Checks that a run directory can be written before any work is done. */
    public static void prepareOutDir(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new InputException(dir + ": cannot create the output directory (" + e.getMessage() + "); choose another --out");
        }
        if (!Files.isWritable(dir)) {
            throw new InputException(dir + ": the output directory is not writable; choose another --out");
        }
    }
}
