package mhc.engine.cli;

import mhc.engine.Batch;
import mhc.engine.Checkpoint;
import mhc.engine.ParamSpec;
import mhc.engine.io.Safetensors;
import mhc.engine.io.Safetensors.Tensor;
import mhc.engine.model.Model;
import mhc.engine.model.Params;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "grads", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Loss and gradients of a checkpoint on one batch of tokens.",
                "Writes F32 'loss' [1] and 'grad.<name>' for every trainable parameter (all but router_bias)."})
final class GradsCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", paramLabel = "CK", required = true, description = "Model checkpoint (safetensors).")
    Path checkpoint;
    @Option(names = "--tokens", paramLabel = "TK", required = true, description = "Safetensors file with I32 'tokens' [B, T+1].")
    Path tokens;
    @Option(names = "--out", paramLabel = "OUT", required = true, description = "Safetensors file to write.")
    Path out;
    @Mixin
    BackendOptions backendOptions;
    @Mixin
    Common common;

    @Override
    public Integer call() {
        Params params = Checkpoint.load(checkpoint);
        Batch batch = Batch.load(tokens);
        Paths.requireWritableParent(out);
        Model model = new Model(params, backendOptions.select().newOps());
        double loss = model.forward(batch.tokens(), batch.rows(), batch.length());
        model.backward();
        List<Tensor> tensors = new ArrayList<>();
        tensors.add(Tensor.f32("loss", new int[]{1}, new float[]{(float) loss}));
        for (ParamSpec spec : params.specs()) {
            if (spec.trainable()) {
                tensors.add(Tensor.f32("grad." + spec.name(), spec.shape(), model.grads().get(spec.name())));
            }
        }
        try {
            Safetensors.write(out, Map.of(Checkpoint.CONFIG_KEY, params.config().toJson()), tensors);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
        }
        System.out.println("loss " + (float) loss);
        return 0;
    }
}
