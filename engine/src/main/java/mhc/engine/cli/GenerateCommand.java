package mhc.engine.cli;

import mhc.engine.Checkpoint;
import mhc.engine.Generator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Continue a prompt with bytes sampled from a checkpoint; prints the continuation as UTF-8.")
final class GenerateCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", paramLabel = "CK", required = true, description = "Model checkpoint.")
    Path checkpoint;
    @Option(names = "--prompt", paramLabel = "TEXT", required = true, description = "Text to continue.")
    String prompt;
    @Option(names = "--tokens", paramLabel = "N", defaultValue = "200", description = "Bytes to generate (default ${DEFAULT-VALUE}).")
    int tokens;
    @Option(names = "--temperature", paramLabel = "X", defaultValue = "0.8", description = "Sampling temperature, 0: greedy (default ${DEFAULT-VALUE}).")
    double temperature;
    @Option(names = "--top-k", paramLabel = "K", defaultValue = "40", description = "Sample among the K likeliest bytes, 0: all (default ${DEFAULT-VALUE}).")
    int topK;
    @Option(names = "--seed", paramLabel = "S", defaultValue = "1", description = "Sampling seed (default ${DEFAULT-VALUE}).")
    long seed;
    @Mixin
    BackendOptions backendOptions;
    @Mixin
    Common common;

    @Override
    public Integer call() {
        Generator g = new Generator(Checkpoint.load(checkpoint), backendOptions.select());
        byte[] out = g.generate(prompt.getBytes(StandardCharsets.UTF_8), tokens, temperature, topK, seed);
        System.out.println(Generator.decodeUtf8(out));
        return 0;
    }
}
