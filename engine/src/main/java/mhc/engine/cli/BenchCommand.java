package mhc.engine.cli;

import com.google.gson.GsonBuilder;
import mhc.engine.Backend;
import mhc.engine.Config;
import mhc.engine.InputException;
import mhc.engine.bench.Bench;
import mhc.engine.bench.BenchSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Cross-device benchmark. Every op of the model, at the shapes of the config",
                "(default gpt-small), is validated on every device against the plain JVM kernel,",
                "then timed: one line per (op, device) with median, min, coefficient of",
                "variation, GFLOP/s or GB/s, and speed-up over the plain kernel on one thread.",
                "Then whole training steps with residual and with mhc connections, interleaved:",
                "tokens/s of each and the mHC overhead (so --connection does not apply).",
                "Devices: jvm/1 thread (the reference); fast/N threads (the Vector API path,",
                "needs --add-modules jdk.incubator.vector, which engine/target/mhc adds);",
                "TornadoVM devices when that backend is present. A failed validation prints",
                "the op, device, index and values, is not timed, and makes the exit code 1."})
final class BenchCommand implements Callable<Integer> {
    /** The --quick model: small enough that every op and a training step take milliseconds. */
    static final Map<String, Object> QUICK = Map.ofEntries(Map.entry("width", 32), Map.entry("blocks", 1),
            Map.entry("heads", 2), Map.entry("streams", 4), Map.entry("ffn_hidden", 48), Map.entry("experts", 4),
            Map.entry("experts_active", 2), Map.entry("shared_experts", 1), Map.entry("expert_hidden", 16),
            Map.entry("seq_len", 16), Map.entry("batch_size", 2));

    @Option(names = "--quick", description = "Small shapes (C=32 T=16 B=2 ...) and few runs: a smoke test in seconds.")
    boolean quick;
    @Option(names = "--ops", paramLabel = "REGEX", description = "Only the ops whose name matches (anywhere), e.g. 'matmul|attention'.")
    String ops;
    @Option(names = "--targets", paramLabel = "REGEX", description = "Only the devices whose name matches, besides the reference jvm/1 thread.")
    String targets;
    @Option(names = "--threads", paramLabel = "N", description = "Threads of the multi-threaded devices and of the training step (default: all cores).")
    Integer threads;
    @Option(names = "--warmup", paramLabel = "S", description = "Seconds of untimed calls per line (default 0.2; --quick 0.005).")
    Double warmup;
    @Option(names = "--min-time", paramLabel = "S", description = "Timed seconds per line, at least (default 0.5; --quick 0.01).")
    Double minTime;
    @Option(names = "--reps", paramLabel = "N", description = "Timed calls per line, at least (default 5; --quick 2).")
    Integer reps;
    @Option(names = "--seed", paramLabel = "S", defaultValue = "1", description = "Seed of the inputs, the initial parameters and the batches (default ${DEFAULT-VALUE}).")
    long seed;
    @Option(names = "--skip-ops", description = "No per-op table, only the training step.")
    boolean skipOps;
    @Option(names = "--step-backends", paramLabel = "LIST",
            description = "Backends of the training step, comma-separated (jvm, fast), or 'none' (default: the default backend).")
    String stepBackends;
    @Option(names = "--skip-step", description = "No training step, only the per-op table (same as --step-backends none).")
    boolean skipStep;
    @Option(names = "--step-warmup", paramLabel = "K", description = "Untimed training steps per connection (default 3; --quick 1).")
    Integer stepWarmup;
    @Option(names = "--step-steps", paramLabel = "K", description = "Timed training steps per connection (default 8; --quick 2).")
    Integer stepSteps;
    @Option(names = "--json", paramLabel = "FILE", description = "Also write everything (machine, settings, every line, the steps) as JSON.")
    Path json;
    @Mixin
    ModelOptions model;
    @Mixin
    Common common;

    @Override
    public Integer call() {
        if (model.connection != null) {
            throw new InputException("--connection does not apply to bench: it times every op, and the training step with both residual and mhc");
        }
        Config cfg;
        if (model.hasSource()) {
            cfg = model.resolve("gpt-small");
        } else {
            Config base = quick ? Config.preset("tiny").withAll(QUICK) : Config.preset("gpt-small");
            Map<String, Object> o = model.overrides();
            cfg = o.isEmpty() ? base : base.withAll(o);
        }
        int nThreads = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        positive("--threads", nThreads);
        int nReps = reps != null ? reps : quick ? 2 : 5;
        positive("--reps", nReps);
        double w = warmup != null ? warmup : quick ? 0.005 : 0.2;
        double mt = minTime != null ? minTime : quick ? 0.01 : 0.5;
        nonNegative("--warmup", w);
        nonNegative("--min-time", mt);
        // Three untimed steps: the JIT compiles the kernels during the first few steps (a JFR
        // profile of gpt-small showed the Vector API kernels still interpreted up to ~10 s in,
        // the first 3-4 steps, longer for mhc, which has more kernels). Eight timed steps: the
        // steps of one run vary by 10-20% on a shared host, and the overhead is a small
        // difference of two medians.
        int sw = stepWarmup != null ? stepWarmup : quick ? 1 : 3;
        int ss = stepSteps != null ? stepSteps : quick ? 2 : 8;
        nonNegative("--step-warmup", sw);
        positive("--step-steps", ss);
        List<String> backends;
        if (skipStep || "none".equals(stepBackends)) {
            backends = List.of();
        } else if (stepBackends == null) {
            backends = List.of(Backend.defaultBackend().name());
        } else {
            backends = Arrays.stream(stepBackends.split(",")).map(String::trim).filter(x -> !x.isEmpty()).toList();
            for (String b : backends) {
                Backend.select(b); // an unknown or unavailable backend fails here, before any timing
            }
        }
        BenchSettings settings = new BenchSettings(cfg, w, mt, nReps, seed, regex("--ops", ops), regex("--targets", targets),
                nThreads, !skipOps, backends, sw, ss, quick);
        Bench.Outcome outcome = Bench.run(settings, System.out);
        System.out.flush();
        if (json != null) {
            try {
                Path parent = json.toAbsolutePath().getParent();
                if (parent != null) {
                    Files.createDirectories(parent);
                }
                Files.writeString(json, new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create()
                        .toJson(outcome.report()) + "\n");
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + json + ": " + e.getMessage(), e);
            }
        }
        if (outcome.failures() > 0) {
            System.err.println("mhc bench: " + outcome.failures() + " (op, device) validation(s) FAILED; see the FAILED lines");
            System.err.flush();
            return 1;
        }
        return 0;
    }

    private static Pattern regex(String flag, String re) {
        if (re == null) {
            return null;
        }
        try {
            return Pattern.compile(re);
        } catch (PatternSyntaxException e) {
            throw new InputException(flag + " '" + re + "' is not a regular expression: " + e.getDescription());
        }
    }

    private static void positive(String flag, long v) {
        if (v < 1) {
            throw new InputException(flag + " must be >= 1, got " + v);
        }
    }

    private static void nonNegative(String flag, double v) {
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new InputException(flag + " must be a number >= 0, got " + v);
        }
    }
}
