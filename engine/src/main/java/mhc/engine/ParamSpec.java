package mhc.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * One parameter tensor of MODEL.md's checkpoint table: its name, shape, and how the optimizer
 * treats it. {@code trainable} is false only for the MoE {@code router_bias} (updated by the
 * load-balancing rule, not by gradient); {@code decay} marks the 2-D+ weight matrices (not
 * norms, {@code alpha}, {@code bias}, {@code scale}, the HC static parts or its 1-D weights).
 */
public record ParamSpec(String name, int[] shape, boolean trainable, boolean decay) {

    public long size() {
        long s = 1;
        for (int d : shape) {
            s *= d;
        }
        return s;
    }

    /** Every parameter of a config, in checkpoint order. */
    public static List<ParamSpec> all(Config cfg) {
        int C = cfg.width(), n = cfg.n(), V = cfg.vocab();
        List<ParamSpec> out = new ArrayList<>();
        out.add(new ParamSpec("embed", new int[]{V, C}, true, true));
        for (int b = 0; b < cfg.blocks(); b++) {
            for (String kind : new String[]{"attn", "ffn"}) {
                String p = "blocks." + b + "." + kind + ".";
                out.add(new ParamSpec(p + "norm", new int[]{C}, true, false));
                switch (cfg.connection()) {
                    case "mhc" -> {
                        int M = n * n + 2 * n;
                        out.add(new ParamSpec(p + "mhc.phi", new int[]{n * C, M}, true, true));
                        out.add(new ParamSpec(p + "mhc.alpha", new int[]{3}, true, false));
                        out.add(new ParamSpec(p + "mhc.bias", new int[]{M}, true, false));
                    }
                    case "hc" -> {
                        out.add(new ParamSpec(p + "hc.w_pre", new int[]{C}, true, false));
                        out.add(new ParamSpec(p + "hc.w_post", new int[]{C}, true, false));
                        out.add(new ParamSpec(p + "hc.w_res", new int[]{C, n}, true, true));
                        out.add(new ParamSpec(p + "hc.pre", new int[]{n}, true, false));
                        out.add(new ParamSpec(p + "hc.post", new int[]{n}, true, false));
                        out.add(new ParamSpec(p + "hc.res", new int[]{n, n}, true, false));
                        out.add(new ParamSpec(p + "hc.scale", new int[]{2}, true, false));
                    }
                    default -> {
                    }
                }
                if (kind.equals("attn")) {
                    for (String w : new String[]{"wq", "wk", "wv", "wo"}) {
                        out.add(new ParamSpec(p + w, new int[]{C, C}, true, true));
                    }
                } else if (!cfg.isMoe()) {
                    int F = cfg.ffnHidden();
                    out.add(new ParamSpec(p + "w1", new int[]{C, F}, true, true));
                    out.add(new ParamSpec(p + "w3", new int[]{C, F}, true, true));
                    out.add(new ParamSpec(p + "w2", new int[]{F, C}, true, true));
                } else {
                    int E = cfg.experts(), S = cfg.sharedExperts(), F = cfg.expertHidden();
                    out.add(new ParamSpec(p + "router", new int[]{C, E}, true, true));
                    out.add(new ParamSpec(p + "router_bias", new int[]{E}, false, false));
                    out.add(new ParamSpec(p + "w1", new int[]{E, C, F}, true, true));
                    out.add(new ParamSpec(p + "w3", new int[]{E, C, F}, true, true));
                    out.add(new ParamSpec(p + "w2", new int[]{E, F, C}, true, true));
                    // Present even when S = 0 (as empty tensors): the table of MODEL.md lists them.
                    out.add(new ParamSpec(p + "shared_w1", new int[]{S, C, F}, true, true));
                    out.add(new ParamSpec(p + "shared_w3", new int[]{S, C, F}, true, true));
                    out.add(new ParamSpec(p + "shared_w2", new int[]{S, F, C}, true, true));
                }
            }
        }
        out.add(new ParamSpec("final_norm", new int[]{C}, true, false));
        out.add(new ParamSpec("head", new int[]{C, V}, true, true));
        return out;
    }

    public static long count(Config cfg) {
        long s = 0;
        for (ParamSpec p : all(cfg)) {
            s += p.size();
        }
        return s;
    }

    /** The name prefix of sublayer l: {@code blocks.{l/2}.attn.} or {@code blocks.{l/2}.ffn.}. */
    public static String sublayerPrefix(int l) {
        return "blocks." + (l / 2) + (l % 2 == 0 ? ".attn." : ".ffn.");
    }
}
