package mhc.engine;

import mhc.engine.data.BatchSampler;
import mhc.engine.data.Corpus;
import mhc.engine.model.Gains;
import mhc.engine.model.Ops;
import mhc.engine.model.Params;
import mhc.engine.train.Optimizer;
import mhc.engine.train.StepRunner;
import mhc.engine.train.TrainSettings;
import mhc.engine.train.TrainState;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The library entry point: a model with its optimizer, ready to train, evaluate and generate.
 *
 * <pre>{@code
 * Config cfg = Config.preset("tiny").with("connection", "mhc");
 * try (LanguageModel lm = LanguageModel.create(cfg, 42, TrainSettings.defaults().withSteps(200))) {
 *     Corpus text = Corpus.load(null);                      // the bundled Europarl sample
 *     BatchSampler batches = new BatchSampler(text.train(), cfg.batchSize(), cfg.seqLen(), 1);
 *     for (int i = 0; i < 200; i++) {
 *         LanguageModel.Step s = lm.trainStep(batches.next());
 *     }
 *     double valLoss = lm.evaluate(text.validation(), 4);   // nats per byte
 *     lm.save(Path.of("tiny.safetensors"));
 *     String more = lm.generate("The Commission", 100, 0.8, 40, 7);
 * }
 * }</pre>
 *
 * Batches are B rows of T+1 byte tokens ({@code cfg.batchSize()} x {@code cfg.seqLen()+1}).
 * Work is spread over all cores; the numbers do not depend on how many.
 */
public final class LanguageModel implements AutoCloseable {
    private final Params params;
    private final Config cfg;
    private final TrainSettings settings;
    private final Optimizer optimizer;
    private final Ops optimizerOps; // where the AdamW update runs (closed with the model)
    private final StepRunner runner;
    private Params grads;

    /** The outcome of one optimizer step. {@code gains} is null unless asked for. */
    public record Step(int step, double loss, double lr, double gradNorm, Gains gains) {
    }

    /** Raised when a loss or gradient becomes NaN or infinite; the parameters are left as before the step. */
    public static final class DivergedException extends RuntimeException {
        public DivergedException(String message) {
            super(message);
        }
    }

    private final Backend backend;
    private Optimizer.DeviceUpdate deviceUpdate; // the optimizer's calls in a step on the device
    private boolean deviceNewer; // the device holds newer parameters and moments than the host

    /**
     * After steps on the device, copies the parameters and moments back, so the host copies
     * (evaluation, generation, checkpoints, {@link #params()}) are current.
     */
    private void syncFromDevice() {
        if (deviceNewer) {
            runner.pullFromDevice();
            deviceNewer = false;
        }
    }

    private LanguageModel(Params params, TrainSettings settings, Optimizer optimizer, int threads, Backend backend) {
        this.params = params;
        this.cfg = params.config();
        this.settings = settings;
        // AdamW runs on the backend, except TornadoVM: there a step runs whole on the device
        // (trainStep), and a step on the host (gains, a diverged step) has its gradients on the
        // host, where a call-by-call device AdamW would copy four arrays per tensor both ways.
        // On the JVM it splits each tensor's update over the model's threads (elementwise: the
        // same bits for any split).
        this.optimizerOps = backend.name().equals("tornado") ? Backend.host().newOps() : backend.newOps(threads);
        this.optimizer = optimizer.withOps(optimizerOps);
        this.backend = backend;
        this.runner = new StepRunner(params, backend.workerThreads(threads), backend);
    }

    /** A freshly initialized model (MODEL.md's init) that will train with {@code settings}. */
    public static LanguageModel create(Config cfg, long seed, TrainSettings settings) {
        return wrap(Init.initialize(cfg, seed), settings);
    }

    /** A model around given parameters, with fresh optimizer state, on all cores of the default backend. */
    public static LanguageModel wrap(Params params, TrainSettings settings) {
        return wrap(params, settings, defaultThreads(), Backend.defaultBackend());
    }

    /** On {@code threads} worker threads of the default backend; the numbers do not depend on the count. */
    public static LanguageModel wrap(Params params, TrainSettings settings, int threads) {
        return wrap(params, settings, threads, Backend.defaultBackend());
    }

    /** The same on {@code threads} worker threads (the numbers do not depend on the count) of a backend. */
    public static LanguageModel wrap(Params params, TrainSettings settings, int threads, Backend backend) {
        return new LanguageModel(params, settings, new Optimizer(params.config(), settings), threads, backend);
    }

    /** A model checkpoint, for evaluation and generation (or training with fresh optimizer state). */
    public static LanguageModel load(Path checkpoint) {
        return wrap(Checkpoint.load(checkpoint), TrainSettings.defaults());
    }

    /** Continues from a training checkpoint: parameters, optimizer moments and step count. */
    public static LanguageModel resume(TrainState state, TrainSettings settings, int threads, Backend backend) {
        return new LanguageModel(state.params(), settings,
                new Optimizer(settings, state.m(), state.v(), state.step()), threads, backend);
    }

    static int defaultThreads() {
        return Runtime.getRuntime().availableProcessors();
    }

    public Backend backend() {
        return backend;
    }

    public Config config() {
        return cfg;
    }

    /**
     * The parameters, current on the host: after steps that ran on a device they are copied
     * back first. To change them between steps there, call {@link #parametersChanged()} after.
     */
    public Params params() {
        syncFromDevice();
        return params;
    }

    /** The caller changed {@link #params()}: a device that trains copies them in again before the next step. */
    public void parametersChanged() {
        runner.hostChanged();
    }

    public TrainSettings settings() {
        return settings;
    }

    /** Optimizer steps taken so far. */
    public int step() {
        return optimizer.stepsTaken();
    }

    public Step trainStep(int[] batch) {
        return trainStep(batch, false);
    }

    /**
     * One step on a batch of {@code batchSize} rows of {@code seqLen+1} tokens: forward, backward,
     * AdamW at the scheduled learning rate with gradient clipping, then the MoE router-bias update.
     * With {@code withGains}, also the Amax gains of this batch.
     *
     * <p>On TornadoVM the whole step runs on the device as one captured pass, the
     * optimizer included: only the batch and the step's learning rate go in, and the loss and
     * gradient norm come back. The parameters and moments stay there; they are copied back when
     * the host needs them (evaluation, generation, checkpoints, {@link #params()}).
     */
    public Step trainStep(int[] batch, boolean withGains) {
        int B = cfg.batchSize(), T = cfg.seqLen();
        checkBatch(batch, B, T);
        if (grads == null) {
            grads = new Params(cfg);
        }
        int s = optimizer.stepsTaken();
        if (runner.trainsOnDevice()) {
            Gains gains = null;
            if (withGains) {
                // the gains need the activations on the host: one pass call by call, on the
                // parameters of this step; the step itself still runs whole on the device
                syncFromDevice();
                gains = runner.step(batch, B, T, grads, true).gains();
            }
            double lr = settings.lrAt(s);
            if (deviceUpdate == null) {
                deviceUpdate = optimizer.deviceUpdate(params);
            }
            deviceUpdate.prepare(lr);
            runner.trainOnDevice(batch, B, T, deviceUpdate);
            deviceNewer = true;
            if (deviceUpdate.finish()) {
                Optimizer.updateRouterBias(params, runner.deviceLoads()); // the bias goes in with each step
                return new Step(s + 1, deviceUpdate.lossSum() / (B * T), lr, deviceUpdate.gradNorm(), gains);
            }
            // Not finite: the device left the parameters and moments as they were. The step
            // below, on the host, finds the first non-finite output and throws.
        }
        syncFromDevice();
        StepRunner.Result r = runner.step(batch, B, T, grads, withGains);
        if (r.nonFinite() != null || !Double.isFinite(r.loss())) {
            throw new DivergedException(String.format(Locale.ROOT, "step %d: the loss is %s; the first non-finite output is in %s",
                    s + 1, r.loss(), r.nonFinite() == null ? "the loss" : r.nonFinite()));
        }
        double norm = Optimizer.gradNorm(grads);
        if (!Double.isFinite(norm)) {
            throw new DivergedException(String.format(Locale.ROOT, "step %d: the gradient of %s is not finite (loss %.4f)",
                    s + 1, Optimizer.firstNonFiniteGradient(grads), r.loss()));
        }
        double lr = settings.lrAt(s);
        optimizer.update(params, grads, lr, norm);
        Optimizer.updateRouterBias(params, r.loads());
        runner.hostChanged();
        return new Step(s + 1, r.loss(), lr, norm, r.gains());
    }

    /** Mean loss (nats per byte) of one batch of any B rows of T+1 tokens, forward only. */
    public double loss(int[] batch, int B, int T) {
        checkBatch(batch, B, T);
        syncFromDevice();
        return runner.loss(batch, B, T);
    }

    /** Mean loss over {@code batches} fixed, evenly spaced windows of {@code text} ({@code batchSize x seqLen}). */
    public double evaluate(byte[] text, int batches) {
        int B = cfg.batchSize(), T = cfg.seqLen();
        if (text.length < T + 1) {
            throw new InputException("evaluation text of " + text.length + " bytes is shorter than one window of " + (T + 1));
        }
        syncFromDevice();
        double sum = 0;
        for (int i = 0; i < batches; i++) {
            sum += runner.loss(BatchSampler.evalBatch(text, B, T, i, batches), B, T);
        }
        return sum / batches;
    }

    /** Validation loss of a corpus: {@link #evaluate(byte[], int)} on its validation split. */
    public double evaluate(Corpus corpus, int batches) {
        return evaluate(corpus.validation(), batches);
    }

    /** Continues {@code prompt} by {@code tokens} sampled bytes, decoded as UTF-8 (broken sequences replaced). */
    public String generate(String prompt, int tokens, double temperature, int topK, long seed) {
        syncFromDevice();
        byte[] out = new Generator(params, backend).generate(prompt.getBytes(StandardCharsets.UTF_8), tokens, temperature, topK, seed);
        return Generator.decodeUtf8(out);
    }

    /** Writes a model checkpoint (MODEL.md's format) atomically. */
    public void save(Path path) {
        syncFromDevice();
        Checkpoint.save(path, params);
    }

    /** Everything needed to resume, with the caller's data-sampler state. */
    public TrainState trainState(long samplerState, String dataSource) {
        syncFromDevice();
        return new TrainState(params, optimizer.firstMoments(), optimizer.secondMoments(), optimizer.stepsTaken(),
                samplerState, settings, dataSource);
    }

    private static void checkBatch(int[] batch, int B, int T) {
        if (batch.length != B * (T + 1)) {
            throw new InputException("a batch must hold " + B + " rows of " + (T + 1) + " tokens (" + B * (T + 1)
                    + "), got " + batch.length);
        }
        for (int t : batch) {
            if (t < 0 || t >= Config.VOCAB) {
                throw new InputException("token " + t + " is outside 0..255 (tokens are bytes)");
            }
        }
    }

    @Override
    public void close() {
        runner.close();
        optimizerOps.close();
    }
}
