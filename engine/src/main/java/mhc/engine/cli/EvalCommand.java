package mhc.engine.cli;

import mhc.engine.Checkpoint;
import mhc.engine.Config;
import mhc.engine.InputException;
import mhc.engine.LanguageModel;
import mhc.engine.data.Corpus;
import mhc.engine.model.Params;
import mhc.engine.train.TrainSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Validation loss (nats per byte) and bits per byte of a checkpoint on the validation split.")
final class EvalCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", paramLabel = "CK", required = true, description = "Model checkpoint.")
    Path checkpoint;
    @Option(names = "--data", paramLabel = "PATH", description = "UTF-8 text file or directory (default: the bundled Europarl sample).")
    Path data;
    @Option(names = "--batches", paramLabel = "N", defaultValue = "8", description = "Batches of the config's B x seq_len (default ${DEFAULT-VALUE}).")
    int batches;
    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores).")
    Integer threads;
    @Mixin
    BackendOptions backendOptions;
    @Mixin
    Common common;

    @Override
    public Integer call() {
        if (batches < 1) {
            throw new InputException("--batches must be >= 1, got " + batches);
        }
        Params params = Checkpoint.load(checkpoint);
        Config cfg = params.config();
        Corpus corpus = Corpus.load(data);
        corpus.requireWindow(cfg.seqLen());
        int B = cfg.batchSize(), T = cfg.seqLen();
        int n = threads != null ? Math.max(1, threads) : Runtime.getRuntime().availableProcessors();
        double loss;
        try (LanguageModel lm = LanguageModel.wrap(params, TrainSettings.defaults(), n, backendOptions.select())) {
            loss = lm.evaluate(corpus, batches);
        }
        System.out.printf(Locale.ROOT, "val_loss %.4f nats/byte, %.4f bits/byte (%d batches of %d x %d bytes of %s)%n",
                loss, loss / Math.log(2), batches, B, T, corpus.source());
        return 0;
    }
}
