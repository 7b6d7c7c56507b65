package mhc.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.AbstractList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import mhc.engine.InputException;
import mhc.engine.io.Safetensors;
import mhc.engine.io.Safetensors.Contents;
import mhc.engine.io.Safetensors.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The checkpoint format is the contract with Python tooling, so these tests pin it with
 * hand-built bytes in both directions, not only our writer against our reader.
 */
class SafetensorsTest {

    @TempDir
    Path dir;

    // ---- round trip -------------------------------------------------------------------------

    @Test
    void roundTripKeepsValuesShapesOrderAndMetadata() throws IOException {
        float[] w = {1f, -2.5f, 0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.MIN_VALUE, 3.4e38f, 7f, 8f, 9f, 10f};
        int[] ids = {0, -1, Integer.MAX_VALUE, Integer.MIN_VALUE, 42};
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("note", "unicode \u00e9\u4e2d and <html> & \"quotes\"\nnewline");
        List<Tensor> tensors = List.of(
                Tensor.f32("z.weight", new int[] {3, 4}, w),
                Tensor.i32("a.ids", new int[] {5}, ids),
                Tensor.f32("scalar", new int[] {}, new float[] {0.125f}),
                Tensor.f32("empty", new int[] {0, 7}, new float[0]));
        Path file = dir.resolve("model.safetensors");
        Safetensors.write(file, meta, tensors);

        Contents c = Safetensors.read(file);
        assertEquals(file, c.path());
        assertEquals(meta, c.metadata());
        assertEquals(List.of("z.weight", "a.ids", "scalar", "empty"), List.copyOf(c.tensors().keySet()));
        assertArrayEquals(w, c.f32("z.weight", 3, 4));
        assertArrayEquals(ids, c.i32("a.ids", 5));
        assertArrayEquals(new float[] {0.125f}, c.f32("scalar"));
        assertArrayEquals(new float[0], c.f32("empty", 0, 7));
        Tensor t = c.get("a.ids");
        assertEquals("I32", t.dtype());
        assertNull(t.f32());
        assertEquals(5, t.size());
        assertEquals(0, c.get("empty").size());
        assertEquals(1, c.get("scalar").size());
        // -0f and NaN must survive bit for bit, which assertArrayEquals on floats does not show.
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(c.get("z.weight").f32()[3]));

        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertEquals(0, n % 8, "header padded to a multiple of 8");
        assertEquals(8 + n + 4L * (12 + 5 + 1), bytes.length);
        assertFalse(listing().stream().anyMatch(p -> p.endsWith(".tmp")), "no temporary file left");
    }

    @Test
    void emptyMetadataAndNoTensors() throws IOException {
        Path file = dir.resolve("empty.safetensors");
        Safetensors.write(file, Map.of(), List.of());
        Contents c = Safetensors.read(file);
        assertTrue(c.metadata().isEmpty());
        assertTrue(c.tensors().isEmpty());
        Safetensors.write(file, null, List.of());
        assertTrue(Safetensors.read(file).metadata().isEmpty());
    }

    @Test
    void writeReplacesAnExistingFile() throws IOException {
        Path file = dir.resolve("ckpt.safetensors");
        Safetensors.write(file, Map.of("step", "1"), List.of(Tensor.f32("w", new int[] {1}, new float[] {1f})));
        Safetensors.write(file, Map.of("step", "2"), List.of(Tensor.f32("w", new int[] {2}, new float[] {2f, 3f})));
        Contents c = Safetensors.read(file);
        assertEquals("2", c.metadata().get("step"));
        assertArrayEquals(new float[] {2f, 3f}, c.f32("w", 2));
        assertEquals(List.of(file), listing());
    }

    @Test
    void largeTensorCrossesChunkBoundaries() throws IOException {
        int n = 3_000_001; // over the 4 MiB chunk, and not a multiple of it
        float[] w = new float[n];
        int[] k = new int[n];
        for (int i = 0; i < n; i++) {
            w[i] = i * 0.5f - 7f;
            k[i] = i * 31 - 5;
        }
        Path file = dir.resolve("big.safetensors");
        Safetensors.write(file, Map.of(),
                List.of(Tensor.f32("w", new int[] {n}, w), Tensor.i32("k", new int[] {n}, k)));
        Contents c = Safetensors.read(file);
        assertArrayEquals(w, c.f32("w", n));
        assertArrayEquals(k, c.i32("k", n));
    }

    // ---- compatibility with the real format, byte for byte ---------------------------------

    @Test
    void readsAHandBuiltFile() throws IOException {
        Path file = dir.resolve("hand.safetensors");
        Files.write(file, file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                le(Float.floatToRawIntBits(1.0f), Float.floatToRawIntBits(-2.5f))));
        Contents c = Safetensors.read(file);
        assertArrayEquals(new float[] {1.0f, -2.5f}, c.f32("a", 2));
        assertTrue(c.metadata().isEmpty());
    }

    /** As the Python writer lays it out: keys sorted, metadata first, padded header, data not in key order. */
    @Test
    void readsReferenceStyleLayoutWithoutDependingOnOrder() throws IOException {
        String json = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"a\":{\"dtype\":\"I32\",\"shape\":[1,2],\"data_offsets\":[8,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        json += " ".repeat((8 - json.length() % 8) % 8);
        Path file = dir.resolve("ref.safetensors");
        Files.write(file, file(json, le(Float.floatToRawIntBits(0.5f), Float.floatToRawIntBits(-4f), 7, -9)));
        Contents c = Safetensors.read(file);
        assertEquals(Map.of("format", "pt"), c.metadata());
        assertArrayEquals(new int[] {7, -9}, c.i32("a", 1, 2));
        assertArrayEquals(new float[] {0.5f, -4f}, c.f32("b", 2));
    }

    @Test
    void writesTheExactReferenceBytes() throws IOException {
        Path file = dir.resolve("out.safetensors");
        Safetensors.write(file, Map.of(), List.of(Tensor.f32("a", new int[] {2}, new float[] {1.0f, -2.5f})));
        String json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        json += " ".repeat((8 - json.length() % 8) % 8);
        assertArrayEquals(file(json, le(Float.floatToRawIntBits(1.0f), Float.floatToRawIntBits(-2.5f))),
                Files.readAllBytes(file));
    }

    // ---- accessors and constructors ---------------------------------------------------------

    @Test
    void accessorsNameTheFileAndTheProblem() throws IOException {
        Path file = dir.resolve("acc.safetensors");
        Safetensors.write(file, Map.of(), List.of(
                Tensor.f32("w", new int[] {2, 3}, new float[6]),
                Tensor.i32("ids", new int[] {4}, new int[4])));
        Contents c = Safetensors.read(file);

        InputException missing = assertThrows(InputException.class, () -> c.get("nope"));
        assertTrue(missing.getMessage().startsWith(file + ": missing tensor 'nope'"), missing.getMessage());

        InputException shape = assertThrows(InputException.class, () -> c.f32("w", 3, 2));
        assertTrue(shape.getMessage().startsWith(file + ": tensor 'w' has shape [2, 3], expected [3, 2]"),
                shape.getMessage());

        InputException dtype = assertThrows(InputException.class, () -> c.f32("ids", 4));
        assertTrue(dtype.getMessage().startsWith(file + ": tensor 'ids' has dtype I32, expected F32"),
                dtype.getMessage());
        assertThrows(InputException.class, () -> c.i32("w", 2, 3));
        assertThrows(InputException.class, () -> c.i32("ids", 2, 2));
    }

    @Test
    void tensorFactoriesCheckLengthAgainstShape() {
        assertThrows(IllegalArgumentException.class, () -> Tensor.f32("x", new int[] {2, 2}, new float[3]));
        assertThrows(IllegalArgumentException.class, () -> Tensor.i32("x", new int[] {5}, new int[4]));
        assertThrows(IllegalArgumentException.class, () -> Tensor.f32("x", new int[] {-1}, new float[0]));
        assertThrows(IllegalArgumentException.class, () -> new Tensor("x", "BF16", new int[] {1}, new float[1], null));
        assertEquals(24, Tensor.f32("x", new int[] {2, 3, 4}, new float[24]).size());
    }

    // ---- atomic write -----------------------------------------------------------------------

    @Test
    void writeIntoAMissingDirectoryFailsAndCreatesNothing() {
        Path file = dir.resolve("no-such-dir").resolve("x.safetensors");
        assertThrows(IOException.class, () -> Safetensors.write(file, Map.of(),
                List.of(Tensor.f32("w", new int[] {1}, new float[] {1f}))));
        assertFalse(Files.exists(file.getParent()));
    }

    @Test
    void badArgumentsLeaveTheOldFileUntouched() throws IOException {
        Path file = dir.resolve("keep.safetensors");
        Safetensors.write(file, Map.of("v", "old"), List.of(Tensor.f32("w", new int[] {1}, new float[] {1f})));
        byte[] before = Files.readAllBytes(file);

        List<Tensor> withNull = new java.util.ArrayList<>();
        withNull.add(Tensor.f32("a", new int[] {2}, new float[] {1f, 2f}));
        withNull.add(null);
        assertThrows(RuntimeException.class, () -> Safetensors.write(file, Map.of(), withNull));
        assertThrows(IllegalArgumentException.class, () -> Safetensors.write(file, Map.of(), List.of(
                Tensor.f32("a", new int[] {1}, new float[1]), Tensor.f32("a", new int[] {1}, new float[1]))));

        assertArrayEquals(before, Files.readAllBytes(file));
        assertEquals(List.of(file), listing(), "no temporary file left");
    }

    /** A list that breaks once the data is being streamed, i.e. with a half-written temp file on disk. */
    @Test
    void failureMidwayThroughTheDataLeavesTheOldFileAndNoTempFile() throws IOException {
        Path file = dir.resolve("keep.safetensors");
        Safetensors.write(file, Map.of("v", "old"), List.of(Tensor.f32("w", new int[] {1}, new float[] {1f})));
        byte[] before = Files.readAllBytes(file);

        List<Tensor> good = List.of(
                Tensor.f32("a", new int[] {1000}, new float[1000]),
                Tensor.f32("b", new int[] {1000}, new float[1000]));
        // Fails after the header is built and some data is written, wherever write reads the list.
        int[] reads = {0};
        List<Tensor> breaking = new AbstractList<>() {
            @Override
            public Tensor get(int i) {
                if (++reads[0] > good.size() + 1) throw new IllegalStateException("simulated failure");
                return good.get(i);
            }

            @Override
            public int size() {
                return good.size();
            }
        };
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Safetensors.write(file, Map.of(), breaking));
        assertEquals("simulated failure", e.getMessage());
        assertTrue(reads[0] > good.size(), "the failure came after the header was built");

        assertArrayEquals(before, Files.readAllBytes(file));
        assertEquals(List.of(file), listing(), "no temporary file left");
    }

    /** The rename itself fails (the target is a non-empty directory): the temp file must go. */
    @Test
    void failedRenameLeavesNoTempFile() throws IOException {
        Path target = dir.resolve("target.safetensors");
        Files.createDirectory(target);
        Files.writeString(target.resolve("inside"), "precious");
        assertThrows(IOException.class, () -> Safetensors.write(target, Map.of(),
                List.of(Tensor.f32("w", new int[] {1}, new float[] {1f}))));
        assertEquals("precious", Files.readString(target.resolve("inside")));
        assertEquals(List.of(target), listing(), "no temporary file left");
    }

    // ---- malformed input --------------------------------------------------------------------

    @Test
    void missingFile() {
        Path file = dir.resolve("absent.safetensors");
        expect(file, "no such file");
    }

    @Test
    void directoryIsNotAFile() throws IOException {
        Path sub = Files.createDirectory(dir.resolve("adir.safetensors"));
        expect(sub, "not a regular file");
    }

    @Test
    void unreadableFile() throws IOException {
        Path file = dir.resolve("locked.safetensors");
        Files.write(file, file("{}", new byte[0]));
        try {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("---------"));
        } catch (UnsupportedOperationException e) {
            assumeFalse(true, "no POSIX permissions here");
        }
        assumeFalse(Files.isReadable(file), "running as a user who reads anything (root)");
        expect(file, "not readable");
    }

    @Test
    void shorterThanTheLengthField() throws IOException {
        Path file = dir.resolve("short.safetensors");
        Files.write(file, new byte[] {1, 0, 0});
        expect(file, "truncated");
    }

    @Test
    void headerLengthBeyondTheFile() throws IOException {
        Path file = dir.resolve("long.safetensors");
        Files.write(file, concat(le64(1000), "{}".getBytes(StandardCharsets.UTF_8)));
        expect(file, "bad header length 1000 (file has 10 bytes)");
    }

    @Test
    void headerLengthWithTheTopBitSet() throws IOException {
        Path file = dir.resolve("huge.safetensors");
        Files.write(file, concat(le64(-1L), "{}".getBytes(StandardCharsets.UTF_8)));
        expect(file, "bad header length 18446744073709551615");
    }

    @Test
    void absurdHeaderLengthInsideALargeFile() throws IOException {
        Path file = dir.resolve("sparse.safetensors");
        long len = 150L * 1024 * 1024;
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.write(le64(len));
            f.setLength(len + 64); // sparse: no real disk use
        }
        expect(file, "bad header length " + len);
    }

    /** Headers written with ' for " so the table stays readable; every one has 8 data bytes. */
    static Stream<Arguments> malformed() {
        String ok = "'dtype':'F32','shape':[2],'data_offsets':[0,8]";
        return Stream.of(
                bad("empty header", "", "invalid JSON header"),
                bad("syntax error", "{'a':", "invalid JSON header"),
                bad("lenient-only syntax", "{a:{" + ok + "}}", "invalid JSON header: malformed JSON"),
                bad("trailing text", "{} x", "invalid JSON header: malformed JSON"),
                bad("array root", "[1,2]", "invalid JSON header: expected a JSON object"),
                bad("string root", "'hi'", "invalid JSON header: expected a JSON object"),
                bad("entry not an object", "{'a':5}", "tensor 'a' is a number, expected a JSON object"),
                bad("no dtype", "{'a':{'shape':[2],'data_offsets':[0,8]}}", "tensor 'a' has no dtype"),
                bad("no shape", "{'a':{'dtype':'F32','data_offsets':[0,8]}}", "tensor 'a' has no shape"),
                bad("no offsets", "{'a':{'dtype':'F32','shape':[2]}}", "tensor 'a' has no data_offsets"),
                bad("dtype not string", "{'a':{'dtype':3,'shape':[2],'data_offsets':[0,8]}}", "dtype is a number"),
                bad("shape not array", "{'a':{'dtype':'F32','shape':'2','data_offsets':[0,8]}}", "shape is a string"),
                bad("shape of strings", "{'a':{'dtype':'F32','shape':['2'],'data_offsets':[0,8]}}",
                        "shape has a string"),
                bad("fractional dim", "{'a':{'dtype':'F32','shape':[2.5],'data_offsets':[0,8]}}", "shape has 2.5"),
                bad("negative dim", "{'a':{'dtype':'F32','shape':[-2],'data_offsets':[0,8]}}",
                        "shape has -2, expected a non-negative integer"),
                bad("bf16", "{'a':{'dtype':'BF16','shape':[4],'data_offsets':[0,8]}}",
                        "tensor 'a' has unsupported dtype BF16 (only F32 and I32 are read)"),
                bad("unknown dtype", "{'a':{'dtype':'Q7','shape':[2],'data_offsets':[0,8]}}", "unsupported dtype Q7"),
                bad("offsets too short", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,4]}}",
                        "span 4 bytes, but F32 [2] needs 8"),
                bad("offsets wrong arity", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,4,8]}}",
                        "data_offsets has 3 entries"),
                bad("offsets backwards", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[8,0]}}",
                        "end before they begin"),
                bad("negative offset", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[-8,0]}}",
                        "data_offsets has -8"),
                bad("offsets past the data", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[4,12]}}",
                        "outside the data section (8 bytes)"),
                bad("metadata not object", "{'__metadata__':[1],'a':{" + ok + "}}", "__metadata__ is an array"),
                bad("metadata value number", "{'__metadata__':{'step':3},'a':{" + ok + "}}",
                        "__metadata__ value for 'step' is a number, expected a string"));
    }

    private static Arguments bad(String label, String header, String phrase) {
        return Arguments.of(label, header.replace('\'', '"'), phrase);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformed")
    void malformedHeader(String label, String json, String phrase) throws IOException {
        Path file = dir.resolve(label.replace(' ', '-') + ".safetensors");
        Files.write(file, file(json, new byte[8]));
        expect(file, phrase);
    }

    @Test
    void headerNotUtf8() throws IOException {
        Path file = dir.resolve("latin1.safetensors");
        byte[] header = {'{', '"', (byte) 0xff, '"', ':', '1', '}'};
        Files.write(file, concat(le64(header.length), header));
        expect(file, "invalid JSON header: not valid UTF-8");
    }

    @Test
    void truncatedData() throws IOException {
        Path file = dir.resolve("cut.safetensors");
        Safetensors.write(file, Map.of(), List.of(Tensor.f32("w", new int[] {4}, new float[] {1, 2, 3, 4})));
        byte[] full = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(full, full.length - 3));
        expect(file, "tensor 'w'");
        expect(file, "truncated");
    }

    // ---- helpers ----------------------------------------------------------------------------

    private static void expect(Path file, String phrase) {
        InputException e = assertThrows(InputException.class, () -> Safetensors.read(file));
        String m = e.getMessage();
        assertTrue(m.startsWith(file.toString()), "starts with the path: " + m);
        assertTrue(m.contains(phrase), "says '" + phrase + "': " + m);
        assertFalse(m.contains("\n") || m.contains("\r"), "one line: " + m);
    }

    private List<Path> listing() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    /** A safetensors file: length prefix, header exactly as given (no padding added), data. */
    private static byte[] file(String json, byte[] data) {
        byte[] h = json.getBytes(StandardCharsets.UTF_8);
        return concat(concat(le64(h.length), h), data);
    }

    private static byte[] le64(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
    }

    private static byte[] le(int... words) {
        ByteBuffer b = ByteBuffer.allocate(4 * words.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int w : words) b.putInt(w);
        return b.array();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
