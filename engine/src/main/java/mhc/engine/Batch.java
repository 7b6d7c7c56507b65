package mhc.engine;

import mhc.engine.io.Safetensors;
import mhc.engine.io.Safetensors.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A batch of B rows of T+1 byte tokens: inputs are positions 0..T-1 of a row, targets 1..T.
 * On disk: a safetensors file with one I32 tensor {@code tokens} of shape [B, T+1].
 */
public record Batch(int[] tokens, int rows, int length) {

    public Batch {
        if (tokens.length != rows * (length + 1)) {
            throw new IllegalArgumentException("batch of " + tokens.length + " tokens is not " + rows + " x " + (length + 1));
        }
    }

    public static Batch load(Path path) {
        Safetensors.Contents file = Safetensors.read(path);
        Tensor t = file.get("tokens");
        if (!t.dtype().equals("I32") || t.shape().length != 2) {
            throw new InputException(path + ": tensor 'tokens' must be I32 of shape [B, T+1], got "
                    + t.dtype() + " " + java.util.Arrays.toString(t.shape()));
        }
        int B = t.shape()[0], T1 = t.shape()[1];
        if (B < 1 || T1 < 2) {
            throw new InputException(path + ": tensor 'tokens' has shape [" + B + ", " + T1 + "]; need B >= 1 rows of T+1 >= 2 tokens");
        }
        int[] tok = t.i32();
        for (int i = 0; i < tok.length; i++) {
            if (tok[i] < 0 || tok[i] >= Config.VOCAB) {
                throw new InputException(path + ": token " + tok[i] + " at row " + i / T1 + ", position " + i % T1
                        + " is outside 0..255 (tokens are bytes)");
            }
        }
        return new Batch(tok, B, T1 - 1);
    }

    public void save(Path path) {
        try {
            Safetensors.write(path, Map.of(), List.of(Tensor.i32("tokens", new int[]{rows, length + 1}, tokens)));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
        }
    }
}
