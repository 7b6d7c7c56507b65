package mhc.engine.cli;

import picocli.CommandLine.Option;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The model-shape overrides every model command shares: width, depth, heads, streams, FFN and
 * MoE sizes, sequence and batch. The connection and the Sinkhorn iteration count are left to
 * the command ({@link ModelOptions} adds them; {@code mhc study} varies both itself).
 */
final class ShapeOptions {
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
    @Option(names = "--seq-len", paramLabel = "T", description = "Tokens per training sequence.")
    Integer seqLen;
    @Option(names = "--batch-size", paramLabel = "B", description = "Sequences per training batch.")
    Integer batchSize;
    @Option(names = "--router-gamma", paramLabel = "X", description = "Step of the MoE router-bias update (default 0.001).")
    Double routerGamma;

    /** The overrides given on the command line, by config key. */
    Map<String, Object> overrides() {
        Map<String, Object> m = new LinkedHashMap<>();
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
        put(m, "seq_len", seqLen);
        put(m, "batch_size", batchSize);
        put(m, "router_gamma", routerGamma);
        return m;
    }

    static void put(Map<String, Object> m, String key, Object v) {
        if (v != null) {
            m.put(key, v);
        }
    }
}
