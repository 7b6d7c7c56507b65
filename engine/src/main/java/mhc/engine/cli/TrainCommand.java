package mhc.engine.cli;

import mhc.engine.Backend;
import mhc.engine.Config;
import mhc.engine.InputException;
import mhc.engine.Init;
import mhc.engine.data.Corpus;
import mhc.engine.model.Params;
import mhc.engine.train.TrainSettings;
import mhc.engine.train.TrainState;
import mhc.engine.train.Trainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train a model on text (default: gpt-small, mhc, on the bundled Europarl sample).",
                "Writes DIR/step-NNNNNN.safetensors checkpoints (resumable) and DIR/log.jsonl; Ctrl-C stops after the current step and saves."})
final class TrainCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;
    @Option(names = "--data", paramLabel = "PATH", description = "UTF-8 text file or directory (default: the bundled Europarl sample).")
    Path data;
    @Option(names = "--steps", paramLabel = "N", description = "Optimizer steps of the run (default 1000).")
    Integer steps;
    @Option(names = "--lr", paramLabel = "X", description = "Peak learning rate (default 3e-3).")
    Double lr;
    @Option(names = "--warmup", paramLabel = "N", description = "Linear warmup steps (default 50).")
    Integer warmup;
    @Option(names = "--seed", paramLabel = "S", description = "Seed of the init and of the batch order (default 1).")
    Long seed;
    @Option(names = "--out", paramLabel = "DIR", description = "Run directory (default runs/<preset>-<time>; on --resume the checkpoint's).")
    Path out;
    @Option(names = "--resume", paramLabel = "CK", description = "Continue a run from one of its checkpoints, bit for bit.")
    Path resume;
    @Option(names = "--eval-every", paramLabel = "N", defaultValue = "100", description = "Steps between validation runs, 0: only at the end (default ${DEFAULT-VALUE}).")
    int evalEvery;
    @Option(names = "--eval-batches", paramLabel = "N", defaultValue = "8", description = "Validation batches per evaluation (default ${DEFAULT-VALUE}).")
    int evalBatches;
    @Option(names = "--checkpoint-every", paramLabel = "N", defaultValue = "100", description = "Steps between checkpoints, 0: only at the end (default ${DEFAULT-VALUE}).")
    int checkpointEvery;
    @Option(names = "--gain-every", paramLabel = "N", defaultValue = "50", description = "Steps between Amax gain measurements, 0: never (default ${DEFAULT-VALUE}).")
    int gainEvery;
    @Option(names = "--log", paramLabel = "FILE.jsonl", description = "JSON-lines log, one object per step (default DIR/log.jsonl).")
    Path logFile;
    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores); results do not depend on it.")
    Integer threads;
    @Mixin
    BackendOptions backendOptions;
    @Mixin
    Common common;

    @Override
    public Integer call() throws IOException {
        if (evalEvery < 0 || checkpointEvery < 0 || gainEvery < 0) {
            throw new InputException("--eval-every, --checkpoint-every and --gain-every must be >= 0");
        }
        if (evalBatches < 1) {
            throw new InputException("--eval-batches must be >= 1, got " + evalBatches);
        }
        int nThreads = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        if (nThreads < 1) {
            throw new InputException("--threads must be >= 1, got " + nThreads);
        }
        Backend backend = backendOptions.select();
        Trainer.Options options = new Trainer.Options(evalEvery, evalBatches, checkpointEvery, gainEvery,
                backend.workerThreads(nThreads), backend);
        Trainer trainer;
        Path dir;
        int totalSteps;
        if (resume != null) {
            TrainState state = TrainState.load(resume);
            Config saved = state.params().config();
            if (model.hasSource()) {
                throw new InputException("--resume takes the model config from " + resume + "; drop --preset/--config");
            }
            Map<String, Object> o = model.overrides();
            if (!o.isEmpty()) {
                List<String> diff = saved.withAll(o).differences(saved);
                if (!diff.isEmpty()) {
                    throw new InputException(resume + ": the checkpoint's config differs from the flags (" + String.join("; ", diff)
                            + " given vs saved); drop those flags or start a new run");
                }
            }
            TrainSettings s = settings(state.settings());
            dir = out != null ? out : resume.toAbsolutePath().getParent();
            Trainer.prepareOutDir(dir);
            Corpus corpus = Corpus.load(data);
            trainer = Trainer.resume(state, s, corpus, dir, logPath(dir), options);
            totalSteps = s.steps();
            System.err.println("resuming " + saved.summary() + " at step " + state.step() + " of " + s.steps() + " from " + resume);
        } else {
            Config cfg = model.resolve("gpt-small");
            TrainSettings s = settings(TrainSettings.defaults());
            dir = out != null ? out : Path.of("runs", (model.source != null && model.source.preset != null ? model.source.preset : "gpt-small")
                    + "-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
            refuseToOverwrite(dir);
            Trainer.prepareOutDir(dir);
            Corpus corpus = Corpus.load(data);
            Params params = Init.initialize(cfg, s.seed());
            trainer = new Trainer(params, s, corpus, dir, logPath(dir), options);
            totalSteps = s.steps();
            System.err.println("training " + cfg.summary() + " for " + s.steps() + " steps on " + corpus.source()
                    + " with " + options.threads() + " threads on " + options.backend().description() + "; run directory " + dir);
        }
        try (Progress progress = Progress.create(totalSteps, trainer.step())) {
            trainer.onRecord(progress::update);
            CountDownLatch done = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                trainer.requestStop();
                try {
                    done.await();
                } catch (InterruptedException ignored) {
                    Thread.currentThread().interrupt();
                }
            }, "mhc-stop");
            Runtime.getRuntime().addShutdownHook(hook);
            Path last;
            try {
                last = trainer.run();
            } finally {
                done.countDown();
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException shuttingDown) {
                    // the hook is running: it waited for this run to finish
                }
            }
            progress.close();
            String val = trainer.lastValStep() == 0 ? "no validation yet" : String.format(java.util.Locale.ROOT,
                    "val_loss %.4f nats/byte (%.4f bits/byte) at step %d", trainer.lastValLoss(),
                    trainer.lastValLoss() / Math.log(2), trainer.lastValStep());
            System.out.printf(java.util.Locale.ROOT, "%s after step %d: %s; checkpoint %s%n",
                    trainer.step() < totalSteps ? "stopped" : "finished", trainer.step(), val, last);
        }
        return 0;
    }

    private TrainSettings settings(TrainSettings base) {
        TrainSettings s = base;
        if (steps != null) {
            s = s.withSteps(steps);
        }
        if (lr != null) {
            s = s.withLr(lr);
        }
        if (warmup != null) {
            s = s.withWarmup(warmup);
        }
        if (seed != null) {
            s = s.withSeed(seed);
        }
        return s;
    }

    private Path logPath(Path dir) {
        return logFile != null ? logFile : dir.resolve("log.jsonl");
    }

    /** A new run never writes into a directory that holds another run's checkpoints. */
    private static void refuseToOverwrite(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (Stream<Path> files = Files.list(dir)) {
            if (files.anyMatch(p -> p.getFileName().toString().startsWith("step-"))) {
                throw new InputException(dir + ": holds checkpoints of another run; continue it with --resume "
                        + dir.resolve("step-NNNNNN.safetensors") + " or choose another --out");
            }
        }
    }
}
