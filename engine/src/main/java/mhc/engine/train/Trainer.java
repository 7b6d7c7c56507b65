package mhc.engine.train;

import com.google.gson.JsonObject;
import mhc.engine.Backend;
import mhc.engine.Config;
import mhc.engine.InputException;
import mhc.engine.LanguageModel;
import mhc.engine.data.BatchSampler;
import mhc.engine.data.Corpus;
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
 * The training loop of {@code mhc train}: batches from a corpus, {@link LanguageModel#trainStep}
 * (forward/backward across threads, AdamW, router-bias update), periodic evaluation, Amax gains
 * and checkpoints, one JSON line per step.
 *
 * <pre>
 *   for step in start..steps-1:
 *       batch = sampler.next()                 seeded; its state is saved in checkpoints
 *       lm.trainStep(batch)                    stops the run if anything is non-finite
 *       log; eval / gains / checkpoint every N steps; stop cleanly when asked to
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
     * @param backend         where the operations run
     */
    public record Options(int evalEvery, int evalBatches, int checkpointEvery, int gainEvery, int threads, Backend backend) {
        public Options(int evalEvery, int evalBatches, int checkpointEvery, int gainEvery, int threads) {
            this(evalEvery, evalBatches, checkpointEvery, gainEvery, threads, Backend.defaultBackend());
        }

        public static Options defaults() {
            return new Options(100, 8, 100, 50, Runtime.getRuntime().availableProcessors());
        }
    }

    private final LanguageModel lm;
    private final Config cfg;
    private final TrainSettings settings;
    private final Corpus corpus;
    private final Options options;
    private final BatchSampler sampler;
    private final Path outDir;
    private final Path logFile;
    private volatile boolean stopRequested;
    private Consumer<JsonObject> listener = r -> {
    };
    private double lastValLoss = Double.NaN;
    private int lastValStep;

    /** A new run from initialized parameters. */
    public Trainer(mhc.engine.model.Params params, TrainSettings settings, Corpus corpus, Path outDir, Path logFile, Options options) {
        this(LanguageModel.wrap(params, settings, options.threads(), options.backend()), null, corpus, outDir, logFile, options);
    }

    /** A run resumed from a training checkpoint, with the given settings (normally the saved ones). */
    public static Trainer resume(TrainState state, TrainSettings settings, Corpus corpus, Path outDir, Path logFile, Options options) {
        return new Trainer(LanguageModel.resume(state, settings, options.threads(), options.backend()), state.samplerState(),
                corpus, outDir, logFile, options);
    }

    private Trainer(LanguageModel lm, Long samplerState, Corpus corpus, Path outDir, Path logFile, Options options) {
        this.lm = lm;
        this.cfg = lm.config();
        this.settings = lm.settings();
        this.corpus = corpus;
        this.options = options;
        this.outDir = outDir;
        this.logFile = logFile;
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

    public LanguageModel model() {
        return lm;
    }

    public int step() {
        return lm.step();
    }

    public double lastValLoss() {
        return lastValLoss;
    }

    /** The step of {@link #lastValLoss()} (0: none yet). */
    public int lastValStep() {
        return lastValStep;
    }

    /** Path of the checkpoint written after {@code s} steps. */
    public static Path checkpointPath(Path dir, int s) {
        return dir.resolve(String.format(Locale.ROOT, "step-%06d.safetensors", s));
    }

    /**
     * Trains to {@code settings.steps()} (or until stopped) and returns the last checkpoint written.
     * On a non-finite loss or gradient it throws {@link LanguageModel.DivergedException} and
     * writes nothing more: the checkpoints on disk all hold finite numbers.
     */
    public Path run() {
        int B = cfg.batchSize(), T = cfg.seqLen();
        Path last = null;
        try (BufferedWriter jsonl = logFile == null ? null : Files.newBufferedWriter(logFile, StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            while (lm.step() < settings.steps()) {
                long t0 = System.nanoTime();
                int next = lm.step() + 1;
                boolean gainsNow = options.gainEvery() > 0 && next % options.gainEvery() == 0;
                LanguageModel.Step s;
                try {
                    s = lm.trainStep(sampler.next(), gainsNow);
                } catch (LanguageModel.DivergedException e) {
                    throw new LanguageModel.DivergedException(e.getMessage() + ". Nothing was saved after step " + (next - 1)
                            + "; lower --lr or resume from an earlier checkpoint");
                }
                double seconds = (System.nanoTime() - t0) / 1e9;
                JsonObject rec = new JsonObject();
                rec.addProperty("step", s.step());
                rec.addProperty("loss", s.loss());
                rec.addProperty("lr", s.lr());
                rec.addProperty("grad_norm", s.gradNorm());
                rec.addProperty("tokens_per_s", B * T / seconds);
                if (s.gains() != null) {
                    rec.addProperty("gain_fwd", s.gains().maxCompositeForward());
                    rec.addProperty("gain_bwd", s.gains().maxCompositeBackward());
                }
                boolean lastStep = s.step() == settings.steps();
                if ((options.evalEvery() > 0 && s.step() % options.evalEvery() == 0) || lastStep) {
                    lastValLoss = lm.evaluate(corpus.validation(), options.evalBatches());
                    lastValStep = s.step();
                    rec.addProperty("val_loss", lastValLoss);
                    rec.addProperty("val_bpb", lastValLoss / Math.log(2));
                }
                if (jsonl != null) {
                    jsonl.write(rec.toString());
                    jsonl.newLine();
                    jsonl.flush();
                }
                listener.accept(rec);
                if ((options.checkpointEvery() > 0 && s.step() % options.checkpointEvery() == 0) || lastStep || stopRequested) {
                    last = save();
                }
                if (stopRequested) {
                    log.info("stopped after step {}; checkpoint {}", s.step(), last);
                    break;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the log " + logFile + ": " + e.getMessage(), e);
        } finally {
            lm.close();
        }
        return last;
    }

    private Path save() {
        if (outDir == null) {
            return null;
        }
        Path p = checkpointPath(outDir, lm.step());
        lm.trainState(sampler.state(), corpus.source()).save(p);
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
