package mhc.engine.model;

import mhc.engine.Config;
import mhc.engine.ParamSpec;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Set;

/**
 * The parameter tensors of one model (or their gradients, or optimizer moments), one flat
 * float array per name of MODEL.md's table, in checkpoint order.
 */
public final class Params {
    private final Config config;
    private final LinkedHashMap<String, ParamSpec> specs = new LinkedHashMap<>();
    private final LinkedHashMap<String, float[]> data = new LinkedHashMap<>();

    /** All tensors of the config, zero-filled. */
    public Params(Config config) {
        this.config = config;
        for (ParamSpec s : ParamSpec.all(config)) {
            specs.put(s.name(), s);
            data.put(s.name(), new float[(int) s.size()]);
        }
    }

    public Config config() {
        return config;
    }

    public float[] get(String name) {
        float[] a = data.get(name);
        if (a == null) {
            throw new IllegalArgumentException("no parameter '" + name + "' in a " + config.connection() + "/" + config.ffn() + " model");
        }
        return a;
    }

    public boolean has(String name) {
        return data.containsKey(name);
    }

    public ParamSpec spec(String name) {
        get(name);
        return specs.get(name);
    }

    public Set<String> names() {
        return data.keySet();
    }

    public List<ParamSpec> specs() {
        return List.copyOf(specs.values());
    }

    public void zero() {
        for (float[] a : data.values()) {
            Arrays.fill(a, 0f);
        }
    }

    public long count() {
        long s = 0;
        for (float[] a : data.values()) {
            s += a.length;
        }
        return s;
    }
}
