package mhc.engine.train;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import mhc.engine.Checkpoint;
import mhc.engine.InputException;
import mhc.engine.ParamSpec;
import mhc.engine.io.Safetensors;
import mhc.engine.io.Safetensors.Tensor;
import mhc.engine.model.Params;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Everything a run needs to continue bit for bit: the model, the AdamW moments, the number of
 * steps taken, the batch sampler's generator state and the settings. Stored in one safetensors
 * file that is also a plain model checkpoint (MODEL.md): the moments live under
 * {@code optim.m.<name>} / {@code optim.v.<name>}, the rest as JSON under the metadata key
 * {@code train}; readers of the model ignore both.
 */
public record TrainState(Params params, Params m, Params v, int step, long samplerState,
                         TrainSettings settings, String dataSource) {
    public static final String META_KEY = "train";

    public void save(Path path) {
        List<Tensor> extra = new ArrayList<>();
        for (ParamSpec spec : params.specs()) {
            if (spec.trainable()) {
                extra.add(Tensor.f32("optim.m." + spec.name(), spec.shape(), m.get(spec.name())));
                extra.add(Tensor.f32("optim.v." + spec.name(), spec.shape(), v.get(spec.name())));
            }
        }
        JsonObject o = new JsonObject();
        o.addProperty("step", step);
        // A string: JSON readers that parse numbers as doubles would round a 64-bit state.
        o.addProperty("sampler_state", Long.toString(samplerState));
        o.add("settings", settings.toJson());
        o.addProperty("data", dataSource);
        Checkpoint.save(path, params, Map.of(META_KEY, o.toString()), extra);
    }

    public static TrainState load(Path path) {
        Safetensors.Contents file = Safetensors.read(path);
        Params params = Checkpoint.load(file);
        String json = file.metadata().get(META_KEY);
        if (json == null) {
            throw new InputException(path + ": a model checkpoint without training state (no '" + META_KEY
                    + "' metadata); resume from a checkpoint written by 'mhc train'");
        }
        Params m = new Params(params.config());
        Params v = new Params(params.config());
        for (ParamSpec spec : params.specs()) {
            if (spec.trainable() && spec.size() > 0) {
                System.arraycopy(file.f32("optim.m." + spec.name(), spec.shape()), 0, m.get(spec.name()), 0, (int) spec.size());
                System.arraycopy(file.f32("optim.v." + spec.name(), spec.shape()), 0, v.get(spec.name()), 0, (int) spec.size());
            }
        }
        try {
            JsonObject o = JsonParser.parseString(json).getAsJsonObject();
            return new TrainState(params, m, v, o.get("step").getAsInt(), Long.parseLong(o.get("sampler_state").getAsString()),
                    TrainSettings.fromJson(o.get("settings").toString()), o.get("data").getAsString());
        } catch (RuntimeException e) {
            if (e instanceof InputException) {
                throw e;
            }
            throw new InputException(path + ": malformed '" + META_KEY + "' metadata (" + e.getMessage() + ")");
        }
    }
}
