package mhc.engine.cli;

import mhc.engine.Config;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Where a model config comes from: a preset or a JSON file, then any field overridden by a flag. */
final class ModelOptions {
    static final class Source {
        @Option(names = "--preset", paramLabel = "NAME", description = "Named config: tiny, gpt-small.")
        String preset;
        @Option(names = "--config", paramLabel = "FILE", description = "Config JSON file (the keys of MODEL.md).")
        Path config;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1")
    Source source;

    @Option(names = "--connection", paramLabel = "KIND", description = "residual, hc or mhc.")
    String connection;
    @Mixin
    ShapeOptions shape;
    @Option(names = "--sinkhorn-iters", paramLabel = "N", description = "Sinkhorn-Knopp iterations of mhc (default 20).")
    Integer sinkhornIters;

    /** The overrides given on the command line, by config key. */
    Map<String, Object> overrides() {
        Map<String, Object> m = new LinkedHashMap<>();
        ShapeOptions.put(m, "connection", connection);
        m.putAll(shape.overrides());
        ShapeOptions.put(m, "sinkhorn_iters", sinkhornIters);
        return m;
    }

    boolean hasSource() {
        return source != null;
    }

    /** The config: the preset or file (or {@code defaultPreset}), with the overrides applied. */
    Config resolve(String defaultPreset) {
        Config base;
        if (source != null && source.config != null) {
            base = Config.fromFile(source.config);
        } else {
            base = Config.preset(source != null && source.preset != null ? source.preset : defaultPreset);
        }
        Map<String, Object> o = overrides();
        return o.isEmpty() ? base : base.withAll(o);
    }
}
