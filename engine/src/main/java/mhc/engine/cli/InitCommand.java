package mhc.engine.cli;

import mhc.engine.Checkpoint;
import mhc.engine.Config;
import mhc.engine.InputException;
import mhc.engine.Init;
import mhc.engine.model.Params;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "init", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write a freshly initialized model checkpoint (MODEL.md's init).")
final class InitCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;
    @Option(names = "--seed", paramLabel = "S", defaultValue = "1", description = "Random seed (default ${DEFAULT-VALUE}).")
    long seed;
    @Option(names = "--out", paramLabel = "CK.safetensors", required = true, description = "Checkpoint to write.")
    Path out;
    @Mixin
    Common common;

    @Override
    public Integer call() {
        if (!model.hasSource()) {
            throw new InputException("give --preset NAME or --config FILE");
        }
        Config cfg = model.resolve(null);
        Params p = Init.initialize(cfg, seed);
        Paths.requireWritableParent(out);
        Checkpoint.save(out, p);
        System.out.println("wrote " + out + ": " + cfg.summary());
        return 0;
    }
}
