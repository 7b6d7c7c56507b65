package mhc.engine;

import mhc.engine.model.Model;
import mhc.engine.model.Params;

import java.nio.ByteBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Samples bytes from a model, one at a time: the context is the last {@code seq_len} bytes
 * of prompt and output, the next byte is drawn from the softmax of the last position's
 * logits at a temperature, optionally restricted to the top k. Temperature 0 is greedy.
 * Each byte reruns the model over the context (no key/value cache).
 */
public final class Generator {
    private final Model model;
    private final Config cfg;

    public Generator(Params params) {
        this(params, Backend.defaultBackend());
    }

    public Generator(Params params, Backend backend) {
        this.model = new Model(params, backend.newOps());
        this.cfg = params.config();
    }

    public byte[] generate(byte[] prompt, int tokens, double temperature, int topK, long seed) {
        if (tokens < 0) {
            throw new InputException("--tokens must be >= 0, got " + tokens);
        }
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new InputException("--temperature must be a finite number >= 0, got " + temperature);
        }
        if (topK < 0) {
            throw new InputException("--top-k must be >= 0 (0: no limit), got " + topK);
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        byte[] text = Arrays.copyOf(prompt.length > 0 ? prompt : new byte[]{'\n'}, (prompt.length > 0 ? prompt.length : 1) + tokens);
        int len = prompt.length > 0 ? prompt.length : 1;
        int start = len;
        int V = cfg.vocab();
        double[] p = new double[V];
        for (int k = 0; k < tokens; k++) {
            int T = Math.min(len, cfg.seqLen());
            int[] batch = new int[T + 1];
            for (int t = 0; t < T; t++) {
                batch[t] = text[len - T + t] & 0xFF;
            }
            model.forward(batch, 1, T);
            float[] logits = model.logits();
            int o = (T - 1) * V;
            int next;
            if (temperature == 0) {
                next = 0;
                for (int v = 1; v < V; v++) {
                    if (logits[o + v] > logits[o + next]) {
                        next = v;
                    }
                }
            } else {
                float cut = Float.NEGATIVE_INFINITY;
                if (topK > 0 && topK < V) {
                    float[] sorted = Arrays.copyOfRange(logits, o, o + V);
                    Arrays.sort(sorted);
                    cut = sorted[V - topK];
                }
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < V; v++) {
                    max = Math.max(max, logits[o + v]);
                }
                double sum = 0;
                for (int v = 0; v < V; v++) {
                    p[v] = logits[o + v] >= cut ? Math.exp((logits[o + v] - max) / temperature) : 0;
                    sum += p[v];
                }
                double u = rnd.nextDouble() * sum;
                next = V - 1;
                for (int v = 0; v < V; v++) {
                    u -= p[v];
                    if (u < 0) {
                        next = v;
                        break;
                    }
                }
            }
            text[len++] = (byte) next;
        }
        return Arrays.copyOfRange(text, start, len);
    }

    /** Bytes as text, with U+FFFD in place of each malformed UTF-8 sequence. */
    public static String decodeUtf8(byte[] bytes) {
        CharsetDecoder d = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPLACE)
                .onUnmappableCharacter(CodingErrorAction.REPLACE);
        try {
            return d.decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new IllegalStateException(e); // unreachable with REPLACE
        }
    }
}
