package mhc.engine.io;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonPrimitive;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import mhc.engine.InputException;

/**
 * The safetensors format, so that weights move to and from the Python ecosystem without a
 * converter. Only F32 and I32 are read, because nothing else in the engine consumes other
 * types; a file with other dtypes fails loudly rather than being silently coerced.
 *
 * <p>Every problem with a file on disk is an {@link InputException} whose one-line message
 * starts with the path, because the command line shows that message and nothing else.
 */
public final class Safetensors {

    /** Refuses absurd header lengths before allocating for them; real headers are kilobytes. */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    private static final String METADATA_KEY = "__metadata__";
    /** Bounded so that reading or writing a multi-GB tensor never doubles its memory. */
    private static final int CHUNK_BYTES = 1 << 22;
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    private Safetensors() {}

    /** One tensor: dtype "F32" (data in f32, i32 null) or "I32" (data in i32, f32 null). */
    public record Tensor(String name, String dtype, int[] shape, float[] f32, int[] i32) {

        /** Validated here so that {@link #write} never meets an inconsistent tensor halfway. */
        public Tensor {
            if (name == null) throw new IllegalArgumentException("tensor name is null");
            if (shape == null) throw new IllegalArgumentException("tensor '" + name + "': shape is null");
            long n = elements(shape);
            if (n < 0) {
                throw new IllegalArgumentException(
                        "tensor '" + name + "': bad shape " + Arrays.toString(shape));
            }
            int length;
            if ("F32".equals(dtype)) {
                if (f32 == null || i32 != null) {
                    throw new IllegalArgumentException("tensor '" + name + "': F32 needs f32 data only");
                }
                length = f32.length;
            } else if ("I32".equals(dtype)) {
                if (i32 == null || f32 != null) {
                    throw new IllegalArgumentException("tensor '" + name + "': I32 needs i32 data only");
                }
                length = i32.length;
            } else {
                throw new IllegalArgumentException(
                        "tensor '" + name + "': dtype " + dtype + " (only F32 and I32)");
            }
            if (length != n) {
                throw new IllegalArgumentException("tensor '" + name + "': " + length
                        + " values for shape " + Arrays.toString(shape) + " (needs " + n + ")");
            }
        }

        public static Tensor f32(String name, int[] shape, float[] data) {
            return new Tensor(name, "F32", shape, data, null);
        }

        public static Tensor i32(String name, int[] shape, int[] data) {
            return new Tensor(name, "I32", shape, null, data);
        }

        public long size() {
            return elements(shape);
        }
    }

    /** A file's contents: metadata (never null, maybe empty) and tensors in file order. */
    public record Contents(Path path, Map<String, String> metadata, LinkedHashMap<String, Tensor> tensors) {

        public Contents {
            metadata = metadata == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
            if (tensors == null) tensors = new LinkedHashMap<>();
        }

        /** The tensor or an InputException "FILE: missing tensor 'NAME'". */
        public Tensor get(String name) {
            Tensor t = tensors.get(name);
            if (t == null) {
                throw new InputException(path + ": missing tensor '" + name + "' (the file has "
                        + describeNames(tensors.keySet()) + "); is this the right file for this model?");
            }
            return t;
        }

        /**
         * Checks dtype F32 and the exact shape, else InputException "FILE: tensor 'NAME' has
         * shape [a, b], expected [c, d]" (or wrong dtype); returns its float data, not a copy.
         */
        public float[] f32(String name, int... expectedShape) {
            return check(name, "F32", expectedShape).f32();
        }

        /** Same for I32. */
        public int[] i32(String name, int... expectedShape) {
            return check(name, "I32", expectedShape).i32();
        }

        private Tensor check(String name, String dtype, int[] expectedShape) {
            Tensor t = get(name);
            if (!dtype.equals(t.dtype())) {
                throw new InputException(path + ": tensor '" + name + "' has dtype " + t.dtype()
                        + ", expected " + dtype);
            }
            if (!Arrays.equals(t.shape(), expectedShape)) {
                throw new InputException(path + ": tensor '" + name + "' has shape "
                        + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(expectedShape)
                        + "; was the file written for a different model config?");
            }
            return t;
        }

        private static String describeNames(Set<String> names) {
            if (names.isEmpty()) return "no tensors";
            List<String> shown = names.stream().limit(8).map(s -> "'" + s + "'").toList();
            String more = names.size() > shown.size() ? ", ..." : "";
            String noun = names.size() == 1 ? " tensor: " : " tensors: ";
            return names.size() + noun + String.join(", ", shown) + more;
        }
    }

    public static Contents read(Path path) {
        if (!Files.exists(path)) {
            throw new InputException(path + ": no such file");
        }
        if (!Files.isRegularFile(path)) {
            throw new InputException(path + ": not a regular file (expected a .safetensors file)");
        }
        if (!Files.isReadable(path)) {
            throw new InputException(path + ": not readable (check its permissions)");
        }
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return read(path, ch);
        } catch (NoSuchFileException e) {
            throw new InputException(path + ": no such file", e);
        } catch (AccessDeniedException e) {
            throw new InputException(path + ": not readable (check its permissions)", e);
        } catch (IOException e) {
            throw new InputException(path + ": cannot read: " + oneLine(e.toString()), e);
        }
    }

    private static Contents read(Path path, FileChannel ch) throws IOException {
        long fileSize = ch.size();
        if (fileSize < 8) {
            throw new InputException(path + ": truncated: " + fileSize
                    + " bytes, but a safetensors file starts with an 8-byte header length");
        }
        ByteBuffer lenBuf = readFully(path, ch, 0, 8);
        long headerLen = lenBuf.order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        // Unsigned in the format: a negative long is a length beyond 2^63, as absurd as any.
        if (headerLen < 0 || headerLen > fileSize - 8 || headerLen > MAX_HEADER_BYTES) {
            throw new InputException(path + ": bad header length " + Long.toUnsignedString(headerLen)
                    + " (file has " + fileSize + " bytes); truncated or not a safetensors file");
        }
        ByteBuffer headerBytes = readFully(path, ch, 8, (int) headerLen);
        JsonObject header = parseHeader(path, headerBytes);

        long dataStart = 8 + headerLen;
        long dataLen = fileSize - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        LinkedHashMap<String, Tensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : header.entrySet()) {
            String name = e.getKey();
            if (METADATA_KEY.equals(name)) {
                readMetadata(path, e.getValue(), metadata);
                continue;
            }
            Entry entry = parseEntry(path, name, e.getValue(), dataLen);
            tensors.put(name, readTensor(path, ch, dataStart, entry));
        }
        return new Contents(path, metadata, tensors);
    }

    private record Entry(String name, String dtype, int[] shape, int count, long begin) {}

    private static JsonObject parseHeader(Path path, ByteBuffer bytes) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes)
                    .toString();
        } catch (CharacterCodingException e) {
            throw new InputException(path + ": invalid JSON header: not valid UTF-8", e);
        }
        JsonElement root;
        try {
            // Strict, like the Rust reader: a lenient parse would accept headers other tools reject.
            JsonReader reader = new JsonReader(new StringReader(text));
            reader.setStrictness(Strictness.STRICT);
            root = GSON.getAdapter(JsonElement.class).read(reader);
            if (reader.peek() != JsonToken.END_DOCUMENT) {
                throw new InputException(path + ": invalid JSON header: text after the JSON object");
            }
        } catch (IOException | JsonParseException | IllegalStateException e) {
            // Gson's strict-mode text advises a setting the user cannot reach; keep only the position.
            String why = oneLine(e.getMessage()).replace(
                    "Use JsonReader.setStrictness(Strictness.LENIENT) to accept malformed JSON", "malformed JSON");
            throw new InputException(path + ": invalid JSON header: " + why, e);
        }
        if (root == null || !root.isJsonObject()) {
            throw new InputException(path + ": invalid JSON header: expected a JSON object, found "
                    + kind(root));
        }
        return root.getAsJsonObject();
    }

    private static void readMetadata(Path path, JsonElement value, Map<String, String> out) {
        if (!value.isJsonObject()) {
            throw new InputException(path + ": " + METADATA_KEY + " is " + kind(value)
                    + ", expected a JSON object of strings");
        }
        for (Map.Entry<String, JsonElement> m : value.getAsJsonObject().entrySet()) {
            JsonElement v = m.getValue();
            if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
                throw new InputException(path + ": " + METADATA_KEY + " value for '" + m.getKey()
                        + "' is " + kind(v) + ", expected a string");
            }
            out.put(m.getKey(), v.getAsString());
        }
    }

    private static Entry parseEntry(Path path, String name, JsonElement value, long dataLen) {
        String where = path + ": tensor '" + name + "'";
        if (!value.isJsonObject()) {
            throw new InputException(where + " is " + kind(value) + ", expected a JSON object");
        }
        JsonObject o = value.getAsJsonObject();
        JsonElement dtypeEl = require(where, o, "dtype");
        if (!dtypeEl.isJsonPrimitive() || !dtypeEl.getAsJsonPrimitive().isString()) {
            throw new InputException(where + ": dtype is " + kind(dtypeEl) + ", expected a string");
        }
        String dtype = dtypeEl.getAsString();
        if (!dtype.equals("F32") && !dtype.equals("I32")) {
            throw new InputException(where + " has unsupported dtype " + dtype
                    + " (only F32 and I32 are read); convert it to float32 or int32 first");
        }

        JsonArray shapeArr = requireArray(where, o, "shape");
        int[] shape = new int[shapeArr.size()];
        for (int i = 0; i < shape.length; i++) {
            long d = nonNegativeInteger(where, "shape", shapeArr.get(i));
            if (d > Integer.MAX_VALUE) {
                throw new InputException(where + ": shape dimension " + d + " is too large");
            }
            shape[i] = (int) d;
        }
        long count = elements(shape);
        if (count < 0 || count > Integer.MAX_VALUE - 8) {
            throw new InputException(where + " has shape " + Arrays.toString(shape)
                    + ", too many elements for one array");
        }

        JsonArray offs = requireArray(where, o, "data_offsets");
        if (offs.size() != 2) {
            throw new InputException(where + ": data_offsets has " + offs.size()
                    + " entries, expected [begin, end]");
        }
        long begin = nonNegativeInteger(where, "data_offsets", offs.get(0));
        long end = nonNegativeInteger(where, "data_offsets", offs.get(1));
        if (end < begin) {
            throw new InputException(where + ": data_offsets [" + begin + ", " + end + "] end before they begin");
        }
        long needed = 4 * count;
        if (end - begin != needed) {
            throw new InputException(where + ": data_offsets [" + begin + ", " + end + "] span "
                    + (end - begin) + " bytes, but " + dtype + " " + Arrays.toString(shape)
                    + " needs " + needed);
        }
        if (end > dataLen) {
            throw new InputException(where + ": data_offsets [" + begin + ", " + end
                    + "] lie outside the data section (" + dataLen + " bytes); the file is truncated");
        }
        return new Entry(name, dtype, shape, (int) count, begin);
    }

    private static Tensor readTensor(Path path, FileChannel ch, long dataStart, Entry e) throws IOException {
        long pos = dataStart + e.begin();
        if (e.dtype().equals("F32")) {
            float[] data = new float[e.count()];
            for (int done = 0; done < data.length; ) {
                int n = Math.min(data.length - done, CHUNK_BYTES / 4);
                readFully(path, ch, pos + 4L * done, 4 * n).order(ByteOrder.LITTLE_ENDIAN)
                        .asFloatBuffer().get(data, done, n);
                done += n;
            }
            return Tensor.f32(e.name(), e.shape(), data);
        }
        int[] data = new int[e.count()];
        for (int done = 0; done < data.length; ) {
            int n = Math.min(data.length - done, CHUNK_BYTES / 4);
            readFully(path, ch, pos + 4L * done, 4 * n).order(ByteOrder.LITTLE_ENDIAN)
                    .asIntBuffer().get(data, done, n);
            done += n;
        }
        return Tensor.i32(e.name(), e.shape(), data);
    }

    /**
     * Writes atomically: a temporary file in the same directory, fsync, then an atomic rename
     * over the target, so that a crash or a full disk never leaves a half-written checkpoint
     * where a good one was. On any failure the temporary file is deleted and the previous file
     * at {@code path} is untouched. Tensors are laid out in the given order; the header is
     * padded with spaces to a multiple of 8 bytes, as the reference writer does, so the data
     * section stays aligned for readers that map it.
     */
    public static void write(Path path, Map<String, String> metadata, List<Tensor> tensors) throws IOException {
        // Everything that can be wrong with the arguments fails here, before the disk is touched.
        byte[] header = headerBytes(metadata, tensors);

        Path abs = path.toAbsolutePath();
        Path dir = abs.getParent();
        Path tmp = null;
        boolean done = false;
        try {
            FileChannel ch = null;
            for (int attempt = 0; ch == null; attempt++) {
                tmp = dir.resolve("." + abs.getFileName() + "."
                        + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
                try {
                    // CREATE_NEW rather than createTempFile: the result keeps the usual permissions.
                    ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                } catch (FileAlreadyExistsException e) {
                    tmp = null;
                    if (attempt >= 10) throw e;
                }
            }
            try (FileChannel out = ch) {
                ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                lenBuf.putLong(0, header.length);
                writeFully(out, lenBuf);
                writeFully(out, ByteBuffer.wrap(header));
                ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
                for (Tensor t : tensors) {
                    int total = (int) t.size();
                    for (int off = 0; off < total; ) {
                        int n = Math.min(total - off, CHUNK_BYTES / 4);
                        buf.clear();
                        if (t.f32() != null) {
                            buf.asFloatBuffer().put(t.f32(), off, n);
                        } else {
                            buf.asIntBuffer().put(t.i32(), off, n);
                        }
                        buf.limit(4 * n);
                        writeFully(out, buf);
                        off += n;
                    }
                }
                out.force(true);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } finally {
            if (!done && tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException | RuntimeException suppressed) {
                    // The original failure is the one worth reporting.
                }
            }
        }
        syncDirectory(dir);
    }

    private static byte[] headerBytes(Map<String, String> metadata, List<Tensor> tensors) {
        if (tensors == null) throw new IllegalArgumentException("tensors is null");
        JsonObject root = new JsonObject();
        if (metadata != null && !metadata.isEmpty()) {
            JsonObject meta = new JsonObject();
            for (Map.Entry<String, String> m : metadata.entrySet()) {
                if (m.getKey() == null || m.getValue() == null) {
                    throw new IllegalArgumentException("metadata has a null key or value: " + m);
                }
                meta.addProperty(m.getKey(), m.getValue());
            }
            root.add(METADATA_KEY, meta);
        }
        Set<String> seen = new HashSet<>();
        long offset = 0;
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            if (t == null) throw new IllegalArgumentException("tensor " + i + " is null");
            if (METADATA_KEY.equals(t.name()) || !seen.add(t.name())) {
                throw new IllegalArgumentException("tensor name '" + t.name() + "' is reserved or repeated");
            }
            JsonObject o = new JsonObject();
            o.addProperty("dtype", t.dtype());
            JsonArray shape = new JsonArray();
            for (int d : t.shape()) shape.add(d);
            o.add("shape", shape);
            long end = offset + 4 * t.size();
            JsonArray offs = new JsonArray();
            offs.add(offset);
            offs.add(end);
            o.add("data_offsets", offs);
            root.add(t.name(), o);
            offset = end;
        }
        byte[] json = GSON.toJson(root).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) & ~7;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    /** Makes the rename itself durable; not every platform can open a directory, hence best effort. */
    private static void syncDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException | RuntimeException ignored) {
            // The data is already fsynced; only the rename's durability is at stake.
        }
    }

    private static ByteBuffer readFully(Path path, FileChannel ch, long pos, int len) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(len);
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos + buf.position());
            if (n < 0) {
                throw new InputException(path + ": truncated: ended at byte " + (pos + buf.position())
                        + " while reading " + len + " bytes at " + pos);
            }
        }
        return buf.flip();
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) ch.write(buf);
    }

    private static JsonElement require(String where, JsonObject o, String key) {
        JsonElement e = o.get(key);
        if (e == null) throw new InputException(where + " has no " + key);
        return e;
    }

    private static JsonArray requireArray(String where, JsonObject o, String key) {
        JsonElement e = require(where, o, key);
        if (!e.isJsonArray()) {
            throw new InputException(where + ": " + key + " is " + kind(e) + ", expected an array of integers");
        }
        return e.getAsJsonArray();
    }

    private static long nonNegativeInteger(String where, String key, JsonElement e) {
        if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
            String text = e.getAsString();
            try {
                long v = Long.parseLong(text);
                if (v >= 0) return v;
            } catch (NumberFormatException ignored) {
                // Falls through to the message below: a fraction, an exponent or out of range.
            }
            throw new InputException(where + ": " + key + " has " + text + ", expected a non-negative integer");
        }
        throw new InputException(where + ": " + key + " has " + kind(e) + ", expected a non-negative integer");
    }

    /** Product of the dims, or -1 for a negative dim or an overflow. */
    private static long elements(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) return -1;
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                return -1;
            }
        }
        return n;
    }

    private static String kind(JsonElement e) {
        if (e == null || e.isJsonNull()) return "null";
        if (e.isJsonObject()) return "an object";
        if (e.isJsonArray()) return "an array";
        JsonPrimitive p = e.getAsJsonPrimitive();
        if (p.isString()) return "a string";
        if (p.isBoolean()) return "a boolean";
        return "a number";
    }

    private static String oneLine(String s) {
        if (s == null) return "unknown error";
        int nl = s.indexOf('\n');
        return (nl < 0 ? s : s.substring(0, nl)).replace('\r', ' ').strip();
    }
}
