package mhc.engine.cli;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import mhc.engine.Batch;
import mhc.engine.Checkpoint;
import mhc.engine.model.Gains;
import mhc.engine.model.Model;
import mhc.engine.model.Params;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "gain", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Amax gains of each sublayer's residual mixing, as JSON on stdout.",
                "Single gains of every Hres and composite gains of Hres_{2L-1}...Hres_l (MODEL.md),",
                "averaged over the tokens of one batch."})
final class GainCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", paramLabel = "CK", required = true, description = "Model checkpoint (safetensors).")
    Path checkpoint;
    @Option(names = "--tokens", paramLabel = "TK", required = true, description = "Safetensors file with I32 'tokens' [B, T+1].")
    Path tokens;
    @Mixin
    BackendOptions backendOptions;
    @Mixin
    Common common;

    @Override
    public Integer call() {
        Params params = Checkpoint.load(checkpoint);
        Batch batch = Batch.load(tokens);
        Model model = new Model(params, backendOptions.select().newOps());
        double loss = model.forward(batch.tokens(), batch.rows(), batch.length());
        System.out.println(json(loss, model.gains()));
        return 0;
    }

    /** The gain report: {"loss", "layers": [{layer, forward, backward, composite_forward, composite_backward}], max_*}. */
    static String json(double loss, Gains g) {
        JsonObject o = new JsonObject();
        o.addProperty("loss", loss);
        JsonArray layers = new JsonArray();
        for (int l = 0; l < g.forward().length; l++) {
            JsonObject e = new JsonObject();
            e.addProperty("layer", l);
            e.addProperty("forward", g.forward()[l]);
            e.addProperty("backward", g.backward()[l]);
            e.addProperty("composite_forward", g.compositeForward()[l]);
            e.addProperty("composite_backward", g.compositeBackward()[l]);
            layers.add(e);
        }
        o.add("layers", layers);
        o.addProperty("max_composite_forward", g.maxCompositeForward());
        o.addProperty("max_composite_backward", g.maxCompositeBackward());
        return new GsonBuilder().setPrettyPrinting().create().toJson(o);
    }
}
