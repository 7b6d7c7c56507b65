package mhc.engine.cli;

import com.google.gson.JsonObject;
import mhc.engine.Config;
import mhc.engine.InputException;
import mhc.engine.data.Corpus;
import mhc.engine.study.ConnectionRun;
import mhc.engine.study.Study;
import mhc.engine.study.StudyReport;
import mhc.engine.study.StudyResult;
import mhc.engine.study.StudySettings;
import mhc.engine.train.TrainSettings;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "study", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Stability study: train residual, hc and mhc with identical data order, init seed and schedule; "
                + "record per step loss and gradient norm, at intervals the single and composite Amax gains of every "
                + "sublayer and the validation loss; write DIR/study.json (every number), DIR/report.md (tables) and "
                + "PNG plots (loss.png, loss_gap.png, grad_norm.png, gain_by_sublayer.png, max_gain.png, sinkhorn_sweep.png).",
                "Default model: the tiny preset with 12 blocks (24 sublayers) and batches of 8 (C=64 H=2 n=4 T=64 F=172), "
                + "1000 steps at lr 3e-3: sized to finish within an hour on 2 cores."})
final class StudyCommand implements Callable<Integer> {
    static final class Source {
        @Option(names = "--preset", paramLabel = "NAME", description = "Named config (tiny, gpt-small) instead of the study's default model.")
        String preset;
        @Option(names = "--config", paramLabel = "FILE", description = "Config JSON file (the keys of MODEL.md); its connection key is ignored.")
        Path config;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1")
    Source source;

    @Option(names = "--connections", paramLabel = "LIST", defaultValue = "residual,hc,mhc",
            description = "Connections to train, comma-separated, in this order (default ${DEFAULT-VALUE}).")
    String connections;
    @Option(names = "--steps", paramLabel = "N", description = "Optimizer steps per connection (default " + StudySettings.DEFAULT_STEPS + ").")
    Integer steps;
    @Option(names = "--lr", paramLabel = "X", description = "Peak learning rate, the same for every connection (default " + StudySettings.DEFAULT_LR + ").")
    Double lr;
    @Option(names = "--warmup", paramLabel = "N", description = "Linear warmup steps (default 50).")
    Integer warmup;
    @Option(names = "--seed", paramLabel = "S", description = "Seed of the init and of the batch order, the same for every connection (default 1).")
    Long seed;
    @Option(names = "--data", paramLabel = "PATH", description = "UTF-8 text file or directory (default: the bundled Europarl sample).")
    Path data;
    @Option(names = "--out", paramLabel = "DIR", description = "Output directory (default runs/study-<time>); existing study files in it are replaced.")
    Path out;
    @Option(names = "--gain-every", paramLabel = "N", defaultValue = "10",
            description = "Steps between Amax gain measurements (also at step 1 and the last step), 0: only those (default ${DEFAULT-VALUE}).")
    int gainEvery;
    @Option(names = "--eval-every", paramLabel = "N", defaultValue = "100",
            description = "Steps between validation losses (also at the last step), 0: only at the end (default ${DEFAULT-VALUE}).")
    int evalEvery;
    @Option(names = "--eval-batches", paramLabel = "N", defaultValue = "4", description = "Validation batches per evaluation (default ${DEFAULT-VALUE}).")
    int evalBatches;
    @Option(names = "--sinkhorn-iters", paramLabel = "LIST",
            description = "Sinkhorn iteration sweep of mhc, e.g. 1,3,5,10,20,40: column-sum error of Hres and max composite "
                    + "backward gain per count, by re-evaluating the trained mhc model with each count (mhc trains with the "
                    + "config's sinkhorn_iters, 20 unless --config says otherwise).")
    String sweep;
    @Option(names = "--sweep-train", description = "Train a fresh mhc model per sweep count instead (one full training run per count).")
    boolean sweepTrain;
    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores); results do not depend on it.")
    Integer threads;

    // model overrides as in 'mhc train', but --connection and --sinkhorn-iters (the study varies both)
    @Mixin
    ShapeOptions shape;
    @Option(names = "--connection", paramLabel = "KIND", hidden = true)
    String connection;

    @Mixin
    Common common;
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (connection != null) {
            throw new InputException("--connection does not apply to a study; list the connections with --connections residual,hc,mhc");
        }
        List<String> conns = StudySettings.parseConnections(connections);
        List<Integer> iters = sweep == null ? List.of() : StudySettings.parseSweep(sweep);
        if (sweepTrain && iters.isEmpty()) {
            throw new InputException("--sweep-train needs --sinkhorn-iters LIST");
        }
        Config cfg = config();
        TrainSettings ts = TrainSettings.defaults().withSteps(steps != null ? steps : StudySettings.DEFAULT_STEPS)
                .withLr(lr != null ? lr : StudySettings.DEFAULT_LR);
        if (warmup != null) {
            ts = ts.withWarmup(warmup);
        }
        if (seed != null) {
            ts = ts.withSeed(seed);
        }
        int nThreads = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        StudySettings settings = new StudySettings(cfg, conns, ts, gainEvery, evalEvery, evalBatches, iters, sweepTrain, nThreads);
        Path dir = out != null ? out : Path.of("runs", "study-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        StudyReport.prepare(dir);
        String noPlots = StudyReport.plotsUnavailable();
        if (noPlots != null) {
            System.err.println("mhc study: the plots will be skipped: " + noPlots + "; study.json and report.md are written as usual");
        }
        Corpus corpus = Corpus.load(data);
        corpus.requireWindow(cfg.seqLen());
        System.err.println("study of " + String.join(", ", conns) + ": " + cfg.summary().replaceFirst("^\\w+/", "")
                + ", " + ts.steps() + " steps each, lr " + ts.lr() + ", seed " + ts.seed() + ", on " + corpus.source()
                + " with " + nThreads + " threads; output in " + dir);

        StudyResult result = Study.run(settings, corpus, new Listener(conns.size()));
        StudyReport.Written written = StudyReport.write(result, dir,
                "mhc " + String.join(" ", spec.commandLine().getParseResult().originalArgs()), noPlots);
        if (written.plotsSkipped() != null && noPlots == null) {
            System.err.println("mhc study: plots not drawn: " + written.plotsSkipped());
        }

        System.out.print(StudyReport.resultsTable(result));
        String ratio = StudyReport.ratioSentence(result);
        if (ratio != null) {
            System.out.println(ratio.replace("**", ""));
        }
        if (!result.sweep().isEmpty()) {
            System.out.print(StudyReport.sweepTable(result));
        }
        System.out.printf(Locale.ROOT, "study done in %s; wrote %s in %s%n", Progress.duration(result.wallSeconds()),
                String.join(", ", written.files()), dir);
        return 0;
    }

    private Config config() {
        Config base;
        if (source != null && source.config != null) {
            base = Config.fromFile(source.config);
        } else if (source != null && source.preset != null) {
            base = Config.preset(source.preset);
        } else {
            base = StudySettings.defaultConfig();
        }
        Map<String, Object> o = new LinkedHashMap<>(shape.overrides());
        o.put("connection", "mhc"); // a placeholder: each run sets its own
        return base.withAll(o);
    }

    /** Progress on stderr: a header per trained model, then the train command's progress lines or bar. */
    private static final class Listener implements Study.Listener {
        private final int total;
        private int index;
        private Progress progress;

        Listener(int total) {
            this.total = total;
        }

        @Override
        public void begin(String label, Config cfg, int steps) {
            index++;
            System.err.println("[" + (index <= total ? index + "/" + total : "sweep") + "] " + label + ": " + cfg.summary());
            progress = Progress.create(steps, 0);
        }

        @Override
        public void step(String label, JsonObject record) {
            progress.update(record);
        }

        @Override
        public void end(String label, ConnectionRun run) {
            progress.close();
            ConnectionRun.GainPoint g = run.lastGains();
            System.err.printf(Locale.ROOT, "%s done in %s: final val loss %.4f, max composite gain forward %.4g, backward %.4g%n",
                    label, Progress.duration(run.wallSeconds()), run.finalValLoss(), run.maxCompositeForward(), run.maxCompositeBackward());
        }

        @Override
        public void note(String line) {
            System.err.println(line);
        }
    }
}
