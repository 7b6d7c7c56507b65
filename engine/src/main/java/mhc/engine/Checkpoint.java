package mhc.engine;

import mhc.engine.io.Safetensors;
import mhc.engine.io.Safetensors.Tensor;
import mhc.engine.model.Params;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Model checkpoints in MODEL.md's format: one safetensors file, F32 tensors under the spec's
 * names, the config JSON under the metadata key {@code config}. Anything else in the file
 * (optimizer state under other names, extra metadata) is ignored when reading a model.
 */
public final class Checkpoint {
    public static final String CONFIG_KEY = "config";

    private Checkpoint() {
    }

    /** The config stored in a checkpoint file. */
    public static Config config(Safetensors.Contents file) {
        String json = file.metadata().get(CONFIG_KEY);
        if (json == null) {
            throw new InputException(file.path() + ": no '" + CONFIG_KEY + "' in the safetensors metadata; is this a model checkpoint?");
        }
        return Config.fromJson(json, file.path() + " (metadata 'config')", false);
    }

    /** Reads a model; every parameter must be present with its exact shape. */
    public static Params load(Path path) {
        return load(Safetensors.read(path));
    }

    public static Params load(Safetensors.Contents file) {
        Params p = new Params(config(file));
        for (ParamSpec spec : p.specs()) {
            if (spec.size() == 0 && !file.tensors().containsKey(spec.name())) {
                continue; // empty tensors (S = 0 shared experts) may be left out by other writers
            }
            float[] data = file.f32(spec.name(), spec.shape());
            System.arraycopy(data, 0, p.get(spec.name()), 0, data.length);
        }
        return p;
    }

    /** Writes a model atomically, with extra metadata and extra tensors (e.g. optimizer state) after it. */
    public static void save(Path path, Params params, Map<String, String> extraMetadata, List<Tensor> extraTensors) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(CONFIG_KEY, params.config().toJson());
        meta.putAll(extraMetadata);
        List<Tensor> tensors = new ArrayList<>(tensors("", params));
        tensors.addAll(extraTensors);
        try {
            Safetensors.write(path, meta, tensors);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
        }
    }

    public static void save(Path path, Params params) {
        save(path, params, Map.of(), List.of());
    }

    /** Every tensor of {@code params} as a safetensors tensor named {@code prefix + name}. */
    public static List<Tensor> tensors(String prefix, Params params) {
        List<Tensor> out = new ArrayList<>();
        for (ParamSpec spec : params.specs()) {
            out.add(Tensor.f32(prefix + spec.name(), spec.shape(), params.get(spec.name())));
        }
        return out;
    }
}
