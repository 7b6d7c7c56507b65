package mhc.engine;

import mhc.engine.model.Params;

import java.util.Arrays;
import java.util.Random;

/**
 * Initial parameters. The connection parameters follow MODEL.md exactly (the mhc projection
 * starts at zero with Hres ~ identity; hc starts as the plain residual network). Where the
 * spec is silent, GPT-2's choices: weights ~ N(0, 0.02), the projections that write into the
 * residual streams ({@code wo}, {@code w2}) ~ N(0, 0.02 / sqrt(2L)), norms 1, router bias 0.
 * Each tensor draws from its own generator seeded by (seed, tensor index), so a tensor's values
 * do not depend on which other tensors the config has before it.
 */
public final class Init {
    public static final double STD = 0.02;
    /** Initial value of the pre and res logits of mhc on (+) and off (-) their stream. */
    public static final float MHC_BIAS = 3f;
    public static final float MHC_ALPHA = 0.01f;
    public static final float HC_SCALE = 0.01f;

    private Init() {
    }

    public static Params initialize(Config cfg, long seed) {
        Params p = new Params(cfg);
        int n = cfg.n();
        double residualStd = STD / Math.sqrt(2.0 * cfg.blocks());
        int index = 0;
        for (String name : p.names()) {
            float[] a = p.get(name);
            Random rnd = new Random(seed * 1_000_003L + index++);
            int l = sublayerOf(name);
            if (name.endsWith("norm")) {
                Arrays.fill(a, 1f);
            } else if (name.endsWith("router_bias") || name.endsWith("mhc.phi") || name.contains(".hc.w_")) {
                Arrays.fill(a, 0f);
            } else if (name.endsWith("mhc.alpha")) {
                Arrays.fill(a, MHC_ALPHA);
            } else if (name.endsWith("mhc.bias")) {
                // [pre (n) | post (n) | res (n x n)]
                for (int j = 0; j < n; j++) {
                    a[j] = j == l % n ? MHC_BIAS : -MHC_BIAS;
                    a[n + j] = 0f;
                }
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < n; j++) {
                        a[2 * n + i * n + j] = i == j ? MHC_BIAS : -MHC_BIAS;
                    }
                }
            } else if (name.endsWith("hc.pre")) {
                Arrays.fill(a, 0f);
                a[l % n] = 1f;
            } else if (name.endsWith("hc.post")) {
                Arrays.fill(a, 1f);
            } else if (name.endsWith("hc.res")) {
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < n; j++) {
                        a[i * n + j] = i == j ? 1f : 0f;
                    }
                }
            } else if (name.endsWith("hc.scale")) {
                Arrays.fill(a, HC_SCALE);
            } else {
                double std = name.endsWith(".wo") || name.endsWith("w2") ? residualStd : STD;
                for (int i = 0; i < a.length; i++) {
                    a[i] = (float) (rnd.nextGaussian() * std);
                }
            }
        }
        return p;
    }

    /** The sublayer index l of a per-sublayer tensor name ("blocks.3.ffn.x" -> 7), or -1. */
    static int sublayerOf(String name) {
        if (!name.startsWith("blocks.")) {
            return -1;
        }
        int dot = name.indexOf('.', 7);
        int b = Integer.parseInt(name.substring(7, dot));
        return 2 * b + (name.startsWith("attn.", dot + 1) ? 0 : 1);
    }
}
