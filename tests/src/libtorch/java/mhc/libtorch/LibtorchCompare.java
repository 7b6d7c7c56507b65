package mhc.libtorch;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import mhc.engine.Backend;
import mhc.engine.Config;
import mhc.engine.Init;
import mhc.engine.InputException;
import mhc.engine.LanguageModel;
import mhc.engine.bench.Machine;
import mhc.engine.bench.Timing;
import mhc.engine.model.Model;
import mhc.engine.model.Ops;
import mhc.engine.model.Params;
import mhc.engine.train.TrainSettings;
import org.bytedeco.pytorch.global.torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * The engine's training step against the same model in libtorch ({@link TorchModel}), in one
 * process: first both compute the loss and every gradient of one batch from the same initial
 * parameters and must agree; then whole training steps alternate (engine, libtorch, per
 * connection, on the same batches), so that the host's drift hits both alike. Prints tokens/s
 * of each, the engine's speed-up over libtorch (ratio of the medians, and the median of the
 * per-step ratios) and each one's mHC overhead over residual. {@code --json FILE} also writes
 * the machine, the settings, the checks and every timed step.
 */
@Command(name = "libtorch-compare", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Training steps of the engine and of libtorch (PyTorch's C++ library) on the same model,",
                "checked against each other, then timed alternately in one process."})
public final class LibtorchCompare implements Callable<Integer> {
    @Option(names = "--preset", defaultValue = "gpt-small", description = "Config preset (default gpt-small).")
    String preset;
    @Option(names = "--width", description = "Model width.")
    Integer width;
    @Option(names = "--ffn-hidden", description = "Hidden width of the dense FFN.")
    Integer ffnHidden;
    @Option(names = "--blocks", description = "Transformer blocks.")
    Integer blocks;
    @Option(names = "--batch-size", description = "Sequences per step.")
    Integer batchSize;
    @Option(names = "--seq-len", description = "Tokens per sequence.")
    Integer seqLen;
    @Option(names = "--connections", split = ",", defaultValue = "residual,mhc",
            description = "Connections to compare (residual, mhc; default both).")
    List<String> connections;
    @Option(names = "--threads", description = "The engine's threads (default: all cores).")
    Integer threads;
    @Option(names = "--torch-threads", description = {"libtorch's intra-op (OpenMP) threads (default: --threads). Its BLAS",
            "(OpenBLAS) keeps threads of its own: OPENBLAS_NUM_THREADS sets them."})
    Integer torchThreads;
    @Option(names = "--warmup", defaultValue = "3", description = {"Untimed steps per connection (default 3). The JIT compiles the",
            "engine's kernels in the first seconds: small models need more steps (tiny: 15)."})
    int warmup;
    @Option(names = "--steps", defaultValue = "8", description = "Timed steps per connection (default 8).")
    int steps;
    @Option(names = "--pause-ms", defaultValue = "300",
            description = {"Untimed pause before each timed step (default 300 ms), so that one library's idle",
                    "threads have stopped spinning (OpenBLAS's spin for about 0.1 s after a call) before the other's step."})
    int pauseMs;
    @Option(names = "--seed", defaultValue = "1", description = "Seed of the parameters and batches (default 1).")
    long seed;
    @Option(names = "--json", paramLabel = "FILE", description = "Also write everything (machine, settings, checks, every timed step) as JSON.")
    Path json;

    public static void main(String[] args) {
        Harness.main("libtorch-compare", new LibtorchCompare(), args);
    }

    @Override
    public Integer call() {
        Config base = config();
        int nThreads = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        if (nThreads < 1 || warmup < 0 || steps < 1) {
            throw new InputException("--threads and --steps must be >= 1 and --warmup >= 0");
        }
        for (String c : connections) {
            if (!c.equals("residual") && !c.equals("mhc")) {
                throw new InputException("--connections: residual or mhc, got '" + c + "'");
            }
        }
        int nTorch = torchThreads != null ? torchThreads : nThreads;
        if (nTorch < 1) {
            throw new InputException("--torch-threads must be >= 1");
        }
        Harness.checkWritable(json);
        torch.set_num_threads(nTorch);
        Backend backend = Backend.defaultBackend();
        JsonObject report = new JsonObject();
        report.addProperty("command", "libtorch-compare");
        report.add("machine", Machine.json());
        String version = libtorchVersion(), blas = torch.hasMKL() ? "MKL" : "OpenBLAS";
        String ompWait = env("OMP_WAIT_POLICY"), blasThreads = env("OPENBLAS_NUM_THREADS");
        JsonObject lib = new JsonObject();
        lib.addProperty("version", version);
        lib.addProperty("blas", blas);
        lib.addProperty("openmp_threads", torch.get_num_threads());
        lib.addProperty("OMP_WAIT_POLICY", ompWait);
        lib.addProperty("OPENBLAS_NUM_THREADS", blasThreads);
        report.add("libtorch", lib);
        JsonObject eng = new JsonObject();
        eng.addProperty("backend", backend.description());
        eng.addProperty("threads", nThreads);
        report.add("engine", eng);
        report.add("config", JsonParser.parseString(base.toJson()));
        JsonArray conns = new JsonArray();
        connections.forEach(conns::add);
        report.add("connections", conns);
        report.addProperty("warmup_steps", warmup);
        report.addProperty("timed_steps", steps);
        report.addProperty("pause_ms", pauseMs);
        report.addProperty("seed", seed);
        JsonArray checks = new JsonArray();
        report.add("checks", checks);
        System.out.printf(Locale.ROOT, "libtorch %s (%s BLAS, %d OpenMP threads; OMP_WAIT_POLICY=%s, OPENBLAS_NUM_THREADS=%s)%n",
                version, blas, torch.get_num_threads(), ompWait, blasThreads);
        System.out.printf(Locale.ROOT, "engine: %s, %d threads; Java %s; %d cores%n",
                backend.description(), nThreads, Runtime.version(), Runtime.getRuntime().availableProcessors());
        System.out.println("model: " + base.with("connection", connections.get(0)).summary() + "; connections " + String.join(", ", connections));

        int B = base.batchSize(), T = base.seqLen();
        SplittableRandom r = new SplittableRandom(seed);
        int[][] batches = new int[4][B * (T + 1)];
        for (int[] b : batches) {
            for (int i = 0; i < b.length; i++) {
                b[i] = r.nextInt(base.vocab());
            }
        }
        TrainSettings settings = TrainSettings.defaults().withSteps(warmup + steps).withWarmup(0);
        Map<String, LanguageModel> ours = new LinkedHashMap<>();
        Map<String, TorchModel> theirs = new LinkedHashMap<>();
        try {
            boolean agree = true;
            for (String c : connections) {
                Config cfg = base.with("connection", c);
                Params init = Init.initialize(cfg, seed);
                TorchModel tm = new TorchModel(init, settings);
                theirs.put(c, tm);
                Ops ops = backend.newOps();
                try {
                    JsonObject check = agree(c, new Model(init, ops), tm, batches[0], B, T);
                    checks.add(check);
                    agree &= check.get("agree").getAsBoolean();
                } finally {
                    ops.close();
                }
                ours.put(c, LanguageModel.wrap(init, settings, nThreads, backend));
            }
            report.addProperty("agree", agree);
            if (!agree) {
                System.out.println("the two implementations disagree: not timed");
                Harness.writeJson(json, report);
                return 1;
            }
            report.add("timing", time(ours, theirs, batches, B * T));
            Harness.writeJson(json, report);
            return 0;
        } finally {
            ours.values().forEach(LanguageModel::close);
            theirs.values().forEach(TorchModel::close);
        }
    }

    /**
     * Loss and gradients of one batch from the same parameters: the loss within 1e-5 relative and
     * every gradient within 1e-3 of its tensor's largest entry (FastModelTest's bound for the fast
     * path against the plain kernels). Prints the worst tensor; returns the check, its verdict in
     * {@code agree}.
     */
    static JsonObject agree(String connection, Model ours, TorchModel theirs, int[] batch, int B, int T) {
        double lossOurs = ours.forward(batch, B, T);
        ours.backward();
        double lossTheirs = theirs.forwardBackward(batch);
        boolean ok = Math.abs(lossOurs - lossTheirs) <= 1e-5 * Math.abs(lossOurs);
        String worst = "";
        double worstRatio = 0;
        for (String name : theirs.names()) {
            float[] a = ours.grads().get(name), b = theirs.grad(name);
            double diff = 0, scale = 0;
            for (int i = 0; i < a.length; i++) {
                diff = Math.max(diff, Math.abs(a[i] - b[i]));
                scale = Math.max(scale, Math.abs(a[i]));
            }
            double ratio = scale == 0 ? (diff == 0 ? 0 : Double.POSITIVE_INFINITY) : diff / scale;
            if (!(ratio <= 1e-3)) {
                ok = false;
            }
            if (!(ratio <= worstRatio)) {
                worstRatio = ratio;
                worst = name;
            }
        }
        System.out.printf(Locale.ROOT, "check %-8s loss engine %.7f libtorch %.7f; largest gradient difference %.2e of its tensor's scale (%s): %s%n",
                connection, lossOurs, lossTheirs, worstRatio, worst, ok ? "agree" : "DISAGREE (bound 1e-5 loss, 1e-3 gradients)");
        JsonObject o = new JsonObject();
        o.addProperty("connection", connection);
        o.addProperty("loss_engine", lossOurs);
        o.addProperty("loss_libtorch", lossTheirs);
        o.addProperty("largest_gradient_difference_of_scale", worstRatio);
        o.addProperty("largest_gradient_difference_tensor", worst);
        o.addProperty("agree", ok);
        return o;
    }

    /** Alternates and times the steps, prints the table; returns it as JSON. */
    private JsonObject time(Map<String, LanguageModel> ours, Map<String, TorchModel> theirs, int[][] batches, int tokens) {
        int k = connections.size();
        double[][] tOurs = new double[k][steps], tTheirs = new double[k][steps];
        double[][][] losses = new double[k][2][warmup + steps];
        for (int s = 0; s < warmup + steps; s++) {
            int[] batch = batches[s % batches.length];
            for (int c = 0; c < k; c++) {
                String conn = connections.get(c);
                Harness.pause(pauseMs);
                long t0 = System.nanoTime();
                losses[c][0][s] = ours.get(conn).trainStep(batch).loss();
                long t1 = System.nanoTime();
                Harness.pause(pauseMs);
                long t2 = System.nanoTime();
                losses[c][1][s] = theirs.get(conn).trainStep(batch);
                long t3 = System.nanoTime();
                if (s >= warmup) {
                    tOurs[c][s - warmup] = (t1 - t0) / 1e9;
                    tTheirs[c][s - warmup] = (t3 - t2) / 1e9;
                }
            }
        }
        System.out.printf(Locale.ROOT, "%n%d untimed + %d timed training steps per connection and implementation, alternated on the same batches%n",
                warmup, steps);
        System.out.printf(Locale.ROOT, "%-10s %-9s %10s %10s %7s %10s %11s%n", "connection", "impl", "median", "min", "CV", "tokens/s", "loss (last)");
        JsonObject out = new JsonObject();
        for (int c = 0; c < k; c++) {
            JsonObject o = new JsonObject();
            o.add("engine", row(connections.get(c), "engine", tOurs[c], tokens, losses[c][0]));
            o.add("libtorch", row(connections.get(c), "libtorch", tTheirs[c], tokens, losses[c][1]));
            out.add(connections.get(c), o);
        }
        for (int c = 0; c < k; c++) {
            double medians = median(tTheirs[c]) / median(tOurs[c]), paired = pairedMedian(tTheirs[c], tOurs[c]);
            System.out.printf(Locale.ROOT, "%s: engine %.2fx libtorch's speed (ratio of medians), %.2fx (median of paired steps)%n",
                    connections.get(c), medians, paired);
            JsonObject o = out.getAsJsonObject(connections.get(c));
            o.addProperty("engine_speed_over_libtorch_medians", medians);
            o.addProperty("engine_speed_over_libtorch_paired", paired);
        }
        int res = connections.indexOf("residual"), mhc = connections.indexOf("mhc");
        if (res >= 0 && mhc >= 0) {
            double em = median(tOurs[mhc]) / median(tOurs[res]) - 1, ep = pairedMedian(tOurs[mhc], tOurs[res]) - 1;
            double tm = median(tTheirs[mhc]) / median(tTheirs[res]) - 1, tp = pairedMedian(tTheirs[mhc], tTheirs[res]) - 1;
            System.out.printf(Locale.ROOT, "mHC overhead over residual: engine %+.1f%% (medians) / %+.1f%% (paired); libtorch %+.1f%% / %+.1f%%%n",
                    100 * em, 100 * ep, 100 * tm, 100 * tp);
            JsonObject o = new JsonObject();
            o.addProperty("engine_medians", em);
            o.addProperty("engine_paired", ep);
            o.addProperty("libtorch_medians", tm);
            o.addProperty("libtorch_paired", tp);
            out.add("mhc_overhead", o);
        }
        return out;
    }

    /** Prints one row of the table; returns it as JSON, with every timed step's seconds and every step's loss. */
    private static JsonObject row(String conn, String impl, double[] times, int tokens, double[] losses) {
        Timing.Stats st = new Timing.Stats(times);
        double loss = losses[losses.length - 1];
        System.out.printf(Locale.ROOT, "%-10s %-9s %7.0f ms %7.0f ms %6.1f%% %10.0f %11.4f%n", conn, impl,
                1e3 * st.median(), 1e3 * st.min(), 100 * st.cv(), tokens / st.median(), loss);
        JsonObject o = new JsonObject();
        o.addProperty("median_s", st.median());
        o.addProperty("min_s", st.min());
        o.addProperty("cv", st.cv());
        o.addProperty("tokens_per_s", tokens / st.median());
        o.addProperty("last_loss", loss);
        o.add("step_seconds", Harness.array(times));
        o.add("losses", Harness.array(losses));
        return o;
    }

    private static double median(double[] x) {
        return new Timing.Stats(x).median();
    }

    /** The median of a[i] / b[i]. */
    private static double pairedMedian(double[] a, double[] b) {
        double[] q = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            q[i] = a[i] / b[i];
        }
        return median(q);
    }

    private Config config() {
        Config cfg = Config.preset(preset);
        Map<String, Object> changes = new LinkedHashMap<>();
        if (width != null) {
            changes.put("width", width);
        }
        if (ffnHidden != null) {
            changes.put("ffn_hidden", ffnHidden);
        }
        if (blocks != null) {
            changes.put("blocks", blocks);
        }
        if (batchSize != null) {
            changes.put("batch_size", batchSize);
        }
        if (seqLen != null) {
            changes.put("seq_len", seqLen);
        }
        return changes.isEmpty() ? cfg : cfg.withAll(changes);
    }

    private static String env(String name) {
        String v = System.getenv(name);
        return v == null ? "(unset)" : v;
    }

    /** The presets' version, from the Maven metadata in their jar. */
    private static String libtorchVersion() {
        try (InputStream in = torch.class.getResourceAsStream("/META-INF/maven/org.bytedeco/pytorch/pom.properties")) {
            if (in == null) {
                return "(version unknown)";
            }
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version", "(version unknown)") + " (JavaCPP presets)";
        } catch (IOException e) {
            return "(version unknown)";
        }
    }
}
