package mhc.engine;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The model configuration of MODEL.md: the JSON object stored under the checkpoint metadata key
 * {@code config}. Keys are the spec's ({@code vocab, width, blocks, heads, streams, connection,
 * ffn, ffn_hidden, experts, experts_active, shared_experts, expert_hidden, sinkhorn_iters,
 * seq_len}) plus the engine's {@code batch_size} (sequences per training batch) and
 * {@code router_gamma} (step of the MoE router-bias update). Immutable; {@link #with} returns
 * a changed copy.
 */
public final class Config {
    public static final int VOCAB = 256;

    /** Key order of the JSON form, the spec's keys first. */
    public static final List<String> KEYS = List.of("vocab", "width", "blocks", "heads", "streams",
            "connection", "ffn", "ffn_hidden", "experts", "experts_active", "shared_experts",
            "expert_hidden", "sinkhorn_iters", "seq_len", "batch_size", "router_gamma");
    private static final Set<String> STRING_KEYS = Set.of("connection", "ffn");

    private final LinkedHashMap<String, Object> values;

    private Config(LinkedHashMap<String, Object> values) {
        this.values = values;
    }

    // ---- named presets ----

    /** {@code tiny}: a model that trains in minutes on 2 cores; {@code gpt-small}: the README's main job. */
    public static Config preset(String name) {
        LinkedHashMap<String, Object> v = new LinkedHashMap<>();
        switch (name) {
            case "tiny" -> put(v, 64, 2, 2, 4, "mhc", "dense", 172, 8, 2, 1, 56, 64, 16);
            case "gpt-small" -> put(v, 256, 6, 4, 4, "mhc", "dense", 688, 8, 2, 1, 224, 256, 8);
            default -> throw new InputException("unknown preset '" + name + "': use one of " + presetNames());
        }
        return new Config(v).validated("preset " + name);
    }

    public static List<String> presetNames() {
        return List.of("tiny", "gpt-small");
    }

    private static void put(Map<String, Object> v, int width, int blocks, int heads, int streams,
                            String connection, String ffn, int ffnHidden, int experts, int active,
                            int shared, int expertHidden, int seqLen, int batch) {
        v.put("vocab", VOCAB);
        v.put("width", width);
        v.put("blocks", blocks);
        v.put("heads", heads);
        v.put("streams", streams);
        v.put("connection", connection);
        v.put("ffn", ffn);
        v.put("ffn_hidden", ffnHidden);
        v.put("experts", experts);
        v.put("experts_active", active);
        v.put("shared_experts", shared);
        v.put("expert_hidden", expertHidden);
        v.put("sinkhorn_iters", 20);
        v.put("seq_len", seqLen);
        v.put("batch_size", batch);
        v.put("router_gamma", 0.001);
    }

    // ---- JSON ----

    /**
     * Reads a config from JSON. {@code strict} rejects unknown keys (a user's file, where a typo
     * must not pass silently); checkpoints from other implementations may carry extra keys.
     * Missing engine keys take the {@code tiny} preset's values; missing spec keys are errors.
     */
    public static Config fromJson(String json, String source, boolean strict) {
        JsonObject obj;
        try {
            JsonElement e = JsonParser.parseString(json);
            if (!e.isJsonObject()) {
                throw new InputException(source + ": config is not a JSON object");
            }
            obj = e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new InputException(source + ": config is not valid JSON (" + oneLine(e.getMessage()) + ")");
        }
        LinkedHashMap<String, Object> v = new LinkedHashMap<>(preset("tiny").values);
        for (Map.Entry<String, JsonElement> e : obj.entrySet()) {
            String key = e.getKey();
            if (!KEYS.contains(key)) {
                if (strict) {
                    throw new InputException(source + ": unknown config key '" + key + "' (known: " + String.join(", ", KEYS) + ")");
                }
                continue;
            }
            v.put(key, parseValue(key, e.getValue(), source));
        }
        for (String key : KEYS.subList(0, 14)) {
            if (!obj.has(key)) {
                throw new InputException(source + ": config lacks key '" + key + "'");
            }
        }
        return new Config(v).validated(source);
    }

    public static Config fromFile(Path file) {
        try {
            return fromJson(Files.readString(file), file.toString(), true);
        } catch (NoSuchFileException e) {
            throw new InputException(file + ": no such config file");
        } catch (IOException e) {
            throw new InputException(file + ": cannot read config (" + e.getMessage() + ")");
        }
    }

    private static Object parseValue(String key, JsonElement e, String source) {
        if (!e.isJsonPrimitive()) {
            throw new InputException(source + ": config key '" + key + "' must be a " + (STRING_KEYS.contains(key) ? "string" : "number"));
        }
        JsonPrimitive p = e.getAsJsonPrimitive();
        if (STRING_KEYS.contains(key)) {
            if (!p.isString()) {
                throw new InputException(source + ": config key '" + key + "' must be a string");
            }
            return p.getAsString();
        }
        if (!p.isNumber()) {
            throw new InputException(source + ": config key '" + key + "' must be a number");
        }
        if (key.equals("router_gamma")) {
            return p.getAsDouble();
        }
        double d = p.getAsDouble();
        if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
            throw new InputException(source + ": config key '" + key + "' must be an integer, got " + p);
        }
        return (int) d;
    }

    public String toJson() {
        JsonObject o = new JsonObject();
        for (String key : KEYS) {
            Object x = values.get(key);
            if (x instanceof String s) {
                o.addProperty(key, s);
            } else {
                o.addProperty(key, (Number) x);
            }
        }
        Gson gson = new GsonBuilder().disableHtmlEscaping().create();
        return gson.toJson(o);
    }

    // ---- overrides ----

    /** A copy with one key changed (e.g. from a command-line flag); validated. */
    public Config with(String key, Object value) {
        return withAll(Map.of(key, value));
    }

    /** A copy with several keys changed at once, validated once (so intermediate states may be invalid). */
    public Config withAll(Map<String, Object> changes) {
        LinkedHashMap<String, Object> v = new LinkedHashMap<>(values);
        for (Map.Entry<String, Object> e : changes.entrySet()) {
            if (!KEYS.contains(e.getKey())) {
                throw new IllegalArgumentException("unknown config key " + e.getKey());
            }
            Object x = e.getValue();
            if (e.getKey().equals("router_gamma")) {
                x = ((Number) x).doubleValue();
            }
            v.put(e.getKey(), x);
        }
        return new Config(v).validated("the configuration");
    }

    /** Keys whose values differ from {@code other}'s, as "key: this vs other". */
    public List<String> differences(Config other) {
        List<String> out = new ArrayList<>();
        for (String key : KEYS) {
            if (!values.get(key).equals(other.values.get(key))) {
                out.add(key + ": " + values.get(key) + " vs " + other.values.get(key));
            }
        }
        return out;
    }

    private Config validated(String source) {
        String c = connection();
        if (!c.equals("residual") && !c.equals("hc") && !c.equals("mhc")) {
            throw new InputException(source + ": connection '" + c + "' is not one of residual, hc, mhc");
        }
        String f = ffn();
        if (!f.equals("dense") && !f.equals("moe")) {
            throw new InputException(source + ": ffn '" + f + "' is not one of dense, moe");
        }
        if (vocab() != VOCAB) {
            throw new InputException(source + ": vocab must be 256 (one token per byte), got " + vocab());
        }
        positive(source, "width", width());
        positive(source, "blocks", blocks());
        positive(source, "heads", heads());
        positive(source, "streams", streams());
        positive(source, "seq_len", seqLen());
        positive(source, "batch_size", batchSize());
        if (width() % heads() != 0) {
            throw new InputException(source + ": width " + width() + " is not divisible by heads " + heads() + "; change --width or --heads");
        }
        if ((width() / heads()) % 2 != 0) {
            throw new InputException(source + ": head size width/heads = " + width() / heads() + " must be even for the rotary embedding; change --width or --heads");
        }
        if (sinkhornIters() < 0) {
            throw new InputException(source + ": sinkhorn_iters must be >= 0, got " + sinkhornIters());
        }
        if (f.equals("dense")) {
            positive(source, "ffn_hidden", ffnHidden());
        } else {
            positive(source, "experts", experts());
            positive(source, "experts_active", expertsActive());
            positive(source, "expert_hidden", expertHidden());
            if (expertsActive() > experts()) {
                throw new InputException(source + ": experts_active " + expertsActive() + " exceeds experts " + experts() + "; lower --experts-active or raise --experts");
            }
            if (sharedExperts() < 0) {
                throw new InputException(source + ": shared_experts must be >= 0, got " + sharedExperts());
            }
        }
        if (!(routerGamma() >= 0) || Double.isInfinite(routerGamma())) {
            throw new InputException(source + ": router_gamma must be a finite number >= 0");
        }
        long params = ParamSpec.count(this);
        if (params > Integer.MAX_VALUE / 2) {
            throw new InputException(source + ": model too large (" + params + " parameters)");
        }
        return this;
    }

    private static void positive(String source, String key, int v) {
        if (v < 1) {
            throw new InputException(source + ": " + key + " must be >= 1, got " + v);
        }
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s+", " ");
    }

    // ---- accessors ----

    private int i(String key) {
        return (Integer) values.get(key);
    }

    public int vocab() { return i("vocab"); }
    public int width() { return i("width"); }
    public int blocks() { return i("blocks"); }
    public int heads() { return i("heads"); }
    /** The {@code streams} key as written; see {@link #n()} for the streams the model uses. */
    public int streams() { return i("streams"); }
    public String connection() { return (String) values.get("connection"); }
    public String ffn() { return (String) values.get("ffn"); }
    public int ffnHidden() { return i("ffn_hidden"); }
    public int experts() { return i("experts"); }
    public int expertsActive() { return i("experts_active"); }
    public int sharedExperts() { return i("shared_experts"); }
    public int expertHidden() { return i("expert_hidden"); }
    public int sinkhornIters() { return i("sinkhorn_iters"); }
    public int seqLen() { return i("seq_len"); }
    public int batchSize() { return i("batch_size"); }
    public double routerGamma() { return (Double) values.get("router_gamma"); }

    /** Residual streams the model carries: 1 for {@code residual} whatever {@code streams} says. */
    public int n() {
        return connection().equals("residual") ? 1 : streams();
    }

    public int sublayers() {
        return 2 * blocks();
    }

    public boolean isMoe() {
        return ffn().equals("moe");
    }

    /** One line for logs: "mhc/dense C=64 L=2 H=2 n=4 T=64 B=16 F=172 (0.2M params)". */
    public String summary() {
        String ffnPart = isMoe()
                ? String.format(Locale.ROOT, "E=%d K=%d S=%d F=%d", experts(), expertsActive(), sharedExperts(), expertHidden())
                : "F=" + ffnHidden();
        return String.format(Locale.ROOT, "%s/%s C=%d L=%d H=%d n=%d T=%d B=%d %s (%.2fM params)",
                connection(), ffn(), width(), blocks(), heads(), n(), seqLen(), batchSize(), ffnPart,
                ParamSpec.count(this) / 1e6);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Config c && c.values.equals(values);
    }

    @Override
    public int hashCode() {
        return values.hashCode();
    }

    @Override
    public String toString() {
        return toJson();
    }
}
