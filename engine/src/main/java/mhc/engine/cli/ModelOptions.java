package mhc.engine.cli;

import mhc.engine.Config;
import picocli.CommandLine.ArgGroup;
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
    @Option(names = "--ffn", paramLabel = "KIND", description = "dense or moe.")
    String ffn;
    @Option(names = "--width", paramLabel = "C", description = "Model width.")
    Integer width;
    @Option(names = "--blocks", paramLabel = "L", description = "Transformer blocks (2L sublayers).")
    Integer blocks;
    @Option(names = "--heads", paramLabel = "H", description = "Attention heads.")
    Integer heads;
    @Option(names = "--streams", paramLabel = "n", description = "Residual streams of hc/mhc.")
    Integer streams;
    @Option(names = "--ffn-hidden", paramLabel = "F", description = "Hidden width of the dense FFN.")
    Integer ffnHidden;
    @Option(names = "--experts", paramLabel = "E", description = "Routed experts (moe).")
    Integer experts;
    @Option(names = "--experts-active", paramLabel = "K", description = "Experts per token (moe).")
    Integer expertsActive;
    @Option(names = "--shared-experts", paramLabel = "S", description = "Shared experts (moe).")
    Integer sharedExperts;
    @Option(names = "--expert-hidden", paramLabel = "F", description = "Hidden width of each expert (moe).")
    Integer expertHidden;
    @Option(names = "--sinkhorn-iters", paramLabel = "N", description = "Sinkhorn-Knopp iterations of mhc (default 20).")
    Integer sinkhornIters;
    @Option(names = "--seq-len", paramLabel = "T", description = "Tokens per training sequence.")
    Integer seqLen;
    @Option(names = "--batch-size", paramLabel = "B", description = "Sequences per training batch.")
    Integer batchSize;
    @Option(names = "--router-gamma", paramLabel = "X", description = "Step of the MoE router-bias update (default 0.001).")
    Double routerGamma;

    /** The overrides given on the command line, by config key. */
    Map<String, Object> overrides() {
        Map<String, Object> m = new LinkedHashMap<>();
        put(m, "connection", connection);
        put(m, "ffn", ffn);
        put(m, "width", width);
        put(m, "blocks", blocks);
        put(m, "heads", heads);
        put(m, "streams", streams);
        put(m, "ffn_hidden", ffnHidden);
        put(m, "experts", experts);
        put(m, "experts_active", expertsActive);
        put(m, "shared_experts", sharedExperts);
        put(m, "expert_hidden", expertHidden);
        put(m, "sinkhorn_iters", sinkhornIters);
        put(m, "seq_len", seqLen);
        put(m, "batch_size", batchSize);
        put(m, "router_gamma", routerGamma);
        return m;
    }

    private static void put(Map<String, Object> m, String key, Object v) {
        if (v != null) {
            m.put(key, v);
        }
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
