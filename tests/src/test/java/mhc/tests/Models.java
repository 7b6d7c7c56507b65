package mhc.tests;

import mhc.engine.Config;
import mhc.engine.ParamSpec;
import mhc.engine.model.Params;

import java.util.Map;
import java.util.Random;

/** Small configs, perturbed parameters and conversions shared by the model tests. */
final class Models {
    private Models() {
    }

    /** An odd-sized config of the given connection and FFN: C=12, L=2, H=3 (D=4), n=3, E=5, K=2, S=1. */
    static Config small(String connection, String ffn) {
        return Config.preset("tiny").withAll(Map.ofEntries(
                Map.entry("width", 12), Map.entry("blocks", 2), Map.entry("heads", 3), Map.entry("streams", 3),
                Map.entry("connection", connection), Map.entry("ffn", ffn), Map.entry("ffn_hidden", 10),
                Map.entry("experts", 5), Map.entry("experts_active", 2), Map.entry("shared_experts", 1),
                Map.entry("expert_hidden", 6), Map.entry("seq_len", 6), Map.entry("batch_size", 2)));
    }

    /**
     * Parameters of the config: every tensor random around its spec init so that every path
     * of the model carries gradient (the spec's zero init would hide the dynamic parts).
     */
    static Params perturbed(Config cfg, long seed) {
        Params p = new Params(cfg);
        Random rnd = new Random(seed);
        for (ParamSpec s : p.specs()) {
            float[] a = p.get(s.name());
            String name = s.name();
            for (int i = 0; i < a.length; i++) {
                double g = rnd.nextGaussian();
                double v;
                if (name.endsWith("norm")) {
                    v = 1 + 0.1 * g;
                } else if (name.endsWith("mhc.alpha") || name.endsWith("hc.scale")) {
                    v = 0.5 + 0.1 * g;
                } else if (name.endsWith("mhc.bias") || name.endsWith("hc.pre") || name.endsWith("hc.post")) {
                    v = 0.5 * g + 0.3;
                } else if (name.endsWith("hc.res")) {
                    v = (i % (cfg.n() + 1) == 0 ? 1 : 0) + 0.2 * g;
                } else if (name.endsWith("router_bias")) {
                    v = 0.3 * g;
                } else if (name.endsWith("mhc.phi") || name.contains("hc.w_")) {
                    v = 0.3 * g;
                } else {
                    v = 0.3 * g;
                }
                a[i] = (float) v;
            }
        }
        return p;
    }

    /** The same numbers in the double-precision twin of the model. */
    static mhc.engine.model.f64.Params toDouble(Params p) {
        mhc.engine.model.f64.Params d = new mhc.engine.model.f64.Params(p.config());
        for (String name : p.names()) {
            float[] src = p.get(name);
            double[] dst = d.get(name);
            for (int i = 0; i < src.length; i++) {
                dst[i] = src[i];
            }
        }
        return d;
    }

    /** Random byte tokens for B rows of T+1, from a small alphabet so tokens repeat. */
    static int[] tokens(int B, int T, long seed) {
        Random rnd = new Random(seed);
        int[] t = new int[B * (T + 1)];
        for (int i = 0; i < t.length; i++) {
            t[i] = 'a' + rnd.nextInt(7);
        }
        return t;
    }
}
