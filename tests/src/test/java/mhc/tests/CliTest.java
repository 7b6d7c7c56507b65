package mhc.tests;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import mhc.engine.Batch;
import mhc.engine.Checkpoint;
import mhc.engine.Config;
import mhc.engine.Init;
import mhc.engine.io.Safetensors;
import mhc.engine.io.Safetensors.Tensor;
import mhc.engine.model.Params;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The {@code init}, {@code grads} and {@code gain} commands, and their answers to bad input. */
class CliTest {
    @TempDir
    static Path dir;
    static Path ck;
    static Path tokens;
    static byte[] ckBytes;

    @BeforeAll
    static void files() throws IOException {
        ck = dir.resolve("ck.safetensors");
        Cli.Result r = Cli.run("init", "--preset", "tiny", "--width", "16", "--heads", "2", "--seq-len", "8",
                "--ffn", "moe", "--experts", "3", "--expert-hidden", "8", "--out", ck.toString());
        assertEquals(0, r.code(), r.err());
        ckBytes = Files.readAllBytes(ck);
        tokens = dir.resolve("tk.safetensors");
        new Batch(Models.tokens(2, 8, 3), 2, 8).save(tokens);
    }

    @Test
    void gradsWritesLossAndEveryTrainableGradient() {
        Path out = dir.resolve("grads.safetensors");
        Cli.Result r = Cli.run("grads", "--checkpoint", ck.toString(), "--tokens", tokens.toString(), "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        Safetensors.Contents g = Safetensors.read(out);
        float loss = g.f32("loss", 1)[0];
        assertTrue(r.out().contains("loss " + loss), r.out());
        // at init the prediction is near uniform over 256 bytes
        assertEquals(Math.log(256), loss, 0.05);
        Params p = Checkpoint.load(ck);
        for (var spec : p.specs()) {
            assertEquals(spec.trainable(), g.tensors().containsKey("grad." + spec.name()), spec.name());
        }
    }

    @Test
    void gradsMatchesTheReferenceFixture() {
        Path out = dir.resolve("fixture-grads.safetensors");
        Cli.Result r = Cli.run("grads", "--checkpoint", Fixtures.file("mhc-moe", "model.safetensors").toString(),
                "--tokens", Fixtures.file("mhc-moe", "tokens.safetensors").toString(), "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        Safetensors.Contents ref = Safetensors.read(Fixtures.file("mhc-moe", "grads.safetensors"));
        Safetensors.Contents got = Safetensors.read(out);
        assertEquals(ref.f32("loss", 1)[0], got.f32("loss", 1)[0], 1e-5);
        assertEquals(ref.tensors().keySet(), got.tensors().keySet());
    }

    @Test
    void gainPrintsTheReportFormat() {
        Cli.Result r = Cli.run("gain", "--checkpoint", ck.toString(), "--tokens", tokens.toString());
        assertEquals(0, r.code(), r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(4, o.getAsJsonArray("layers").size());
        JsonObject l0 = o.getAsJsonArray("layers").get(0).getAsJsonObject();
        for (String k : List.of("layer", "forward", "backward", "composite_forward", "composite_backward")) {
            assertTrue(l0.has(k), k);
        }
        // mhc at init: doubly stochastic, so every forward gain is 1
        assertEquals(1.0, o.get("max_composite_forward").getAsDouble(), 1e-5);
        assertTrue(o.has("max_composite_backward"));
    }

    @Test
    void helpOnEveryCommand() {
        for (String cmd : List.of("init", "grads", "gain")) {
            Cli.Result r = Cli.run(cmd, "--help");
            assertEquals(0, r.code());
            assertTrue(r.out().contains("Usage: mhc " + cmd), r.out());
        }
        assertEquals(0, Cli.run("--help").code());
    }

    // ---- bad input: one line naming the file and the problem, exit code 2, no stack trace

    static void assertBadInput(Cli.Result r, String file, String problem) {
        assertEquals(2, r.code(), "exit code; stderr: " + r.err());
        String all = r.err().strip();
        assertFalse(all.contains("Exception") || all.contains("\tat "), "no stack trace: " + all);
        // Informational log lines may come first; the error is the one last line.
        String err = all.substring(all.lastIndexOf('\n') + 1);
        assertTrue(err.startsWith("mhc "), "the error is one line starting with 'mhc': " + all);
        assertTrue(err.contains(file), "names the file " + file + ": " + err);
        assertTrue(err.toLowerCase().contains(problem.toLowerCase()), "says '" + problem + "': " + err);
    }

    Cli.Result gradsOn(Path checkpoint, Path tk) {
        return Cli.run("grads", "--checkpoint", checkpoint.toString(), "--tokens", tk.toString(),
                "--out", dir.resolve("out.safetensors").toString());
    }

    Path corrupt(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    long headerLength() {
        return ByteBuffer.wrap(ckBytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    @Test
    void missingFile() {
        assertBadInput(gradsOn(dir.resolve("nothere.safetensors"), tokens), "nothere.safetensors", "no such file");
    }

    @Test
    void truncatedFile() throws IOException {
        Path p = corrupt("truncated.safetensors", Arrays.copyOf(ckBytes, ckBytes.length / 2));
        assertBadInput(gradsOn(p, tokens), "truncated.safetensors", "truncated");
    }

    @Test
    void badHeaderLength() throws IOException {
        byte[] b = ckBytes.clone();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, b.length + 1000L);
        assertBadInput(gradsOn(corrupt("badlen.safetensors", b), tokens), "badlen.safetensors", "header length");
    }

    @Test
    void invalidJson() throws IOException {
        byte[] b = ckBytes.clone();
        b[8] = 'x';
        assertBadInput(gradsOn(corrupt("badjson.safetensors", b), tokens), "badjson.safetensors", "JSON");
    }

    @Test
    void unknownDtype() throws IOException {
        String header = new String(ckBytes, 8, (int) headerLength(), StandardCharsets.UTF_8);
        String bad = header.replaceFirst("\"F32\"", "\"Q32\"");
        byte[] b = ckBytes.clone();
        System.arraycopy(bad.getBytes(StandardCharsets.UTF_8), 0, b, 8, bad.length());
        assertBadInput(gradsOn(corrupt("dtype.safetensors", b), tokens), "dtype.safetensors", "dtype");
    }

    @Test
    void offsetsOutsideTheFile() throws IOException {
        Path p = corrupt("short.safetensors", Arrays.copyOf(ckBytes, ckBytes.length - 4));
        assertBadInput(gradsOn(p, tokens), "short.safetensors", "outside");
    }

    @Test
    void shapeContradictsTheConfig() throws IOException {
        Params p = Checkpoint.load(ck);
        List<Tensor> tensors = new ArrayList<>(Checkpoint.tensors("", p));
        tensors.replaceAll(t -> t.name().equals("head") ? Tensor.f32("head", new int[]{256, 16}, t.f32()) : t);
        Path file = dir.resolve("shape.safetensors");
        Safetensors.write(file, Map.of("config", p.config().toJson()), tensors);
        assertBadInput(gradsOn(file, tokens), "shape.safetensors", "shape");
    }

    @Test
    void missingTensor() throws IOException {
        Params p = Checkpoint.load(ck);
        List<Tensor> tensors = new ArrayList<>(Checkpoint.tensors("", p));
        tensors.removeIf(t -> t.name().equals("blocks.1.attn.wk"));
        Path file = dir.resolve("missing.safetensors");
        Safetensors.write(file, Map.of("config", p.config().toJson()), tensors);
        assertBadInput(gradsOn(file, tokens), "missing.safetensors", "missing tensor 'blocks.1.attn.wk'");
    }

    @Test
    void missingConfig() throws IOException {
        Params p = Checkpoint.load(ck);
        Path file = dir.resolve("noconfig.safetensors");
        Safetensors.write(file, Map.of(), Checkpoint.tensors("", p));
        assertBadInput(gradsOn(file, tokens), "noconfig.safetensors", "config");
    }

    @Test
    void impossibleConfigInTheCheckpoint() throws IOException {
        Params p = Checkpoint.load(ck);
        String cfg = p.config().toJson().replace("\"experts_active\":2", "\"experts_active\":9");
        Path file = dir.resolve("badcfg.safetensors");
        Safetensors.write(file, Map.of("config", cfg), Checkpoint.tensors("", p));
        assertBadInput(gradsOn(file, tokens), "badcfg.safetensors", "experts_active");
    }

    @Test
    void tokenOutsideTheVocabulary() throws IOException {
        int[] t = Models.tokens(2, 8, 3);
        t[5] = 300;
        Path file = dir.resolve("badtokens.safetensors");
        new Batch(t, 2, 8).save(file);
        assertBadInput(gradsOn(ck, file), "badtokens.safetensors", "outside 0..255");
    }

    @Test
    void tokensOfTheWrongRank() throws IOException {
        Path file = dir.resolve("rank.safetensors");
        Safetensors.write(file, Map.of(), List.of(Tensor.i32("tokens", new int[]{18}, new int[18])));
        assertBadInput(gradsOn(ck, file), "rank.safetensors", "[B, T+1]");
    }

    @Test
    void verboseAddsTheStackTrace() {
        Cli.Result r = Cli.run("grads", "--verbose", "--checkpoint", dir.resolve("nothere.safetensors").toString(),
                "--tokens", tokens.toString(), "--out", dir.resolve("o.safetensors").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("\tat "), r.err());
    }

    @Test
    void impossibleConfigOnTheCommandLine() {
        Cli.Result r = Cli.run("init", "--preset", "tiny", "--experts-active", "9", "--ffn", "moe",
                "--out", dir.resolve("x.safetensors").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("experts_active 9 exceeds experts 8"), r.err());
        assertFalse(Files.exists(dir.resolve("x.safetensors")));
    }

    @Test
    void usageErrors() {
        assertEquals(2, Cli.run("grads", "--checkpoint", ck.toString()).code());
        assertEquals(2, Cli.run("nosuchcommand").code());
        assertEquals(2, Cli.run("init", "--preset", "huge", "--out", dir.resolve("y.safetensors").toString()).code());
    }

    @Test
    void configFileIsCheckedStrictly() throws IOException {
        Path cfg = dir.resolve("cfg.json");
        Files.writeString(cfg, Config.preset("tiny").toJson().replace("\"width\"", "\"widht\""));
        Cli.Result r = Cli.run("init", "--config", cfg.toString(), "--out", dir.resolve("z.safetensors").toString());
        assertBadInput(r, "cfg.json", "widht");
        Files.writeString(cfg, Config.preset("tiny").with("width", 48).with("heads", 3).toJson());
        r = Cli.run("init", "--config", cfg.toString(), "--seed", "3", "--out", dir.resolve("z.safetensors").toString());
        assertEquals(0, r.code(), r.err());
        assertEquals(48, Checkpoint.load(dir.resolve("z.safetensors")).config().width());
    }
}
