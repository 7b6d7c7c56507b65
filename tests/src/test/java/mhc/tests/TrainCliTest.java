package mhc.tests;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mhc train}, {@code eval} and {@code generate} on the command line, and their answers to bad input. */
class TrainCliTest {
    @TempDir
    static Path dir;
    static Path text;
    static Path run;
    static Path ck;

    @BeforeAll
    static void shortRun() throws IOException {
        text = dir.resolve("text.txt");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 300; i++) {
            sb.append("Line ").append(i).append(": the council adopted the report on item ").append(i * 7 % 13).append(".\n");
        }
        Files.writeString(text, sb);
        run = dir.resolve("run");
        Cli.Result r = Cli.run("train", "--preset", "tiny", "--width", "32", "--seq-len", "32", "--batch-size", "4",
                "--steps", "3", "--data", text.toString(), "--out", run.toString());
        assertEquals(0, r.code(), r.err());
        ck = run.resolve("step-000003.safetensors");
        assertTrue(Files.exists(ck));
        assertTrue(r.out().contains("val_loss"), r.out());
    }

    @Test
    void evalAndGenerate() {
        Cli.Result r = Cli.run("eval", "--checkpoint", ck.toString(), "--data", text.toString(), "--batches", "2");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().matches("(?s)val_loss \\d+\\.\\d+ nats/byte, \\d+\\.\\d+ bits/byte.*"), r.out());
        r = Cli.run("generate", "--checkpoint", ck.toString(), "--prompt", "The council", "--tokens", "20", "--seed", "3");
        assertEquals(0, r.code(), r.err());
        Cli.Result again = Cli.run("generate", "--checkpoint", ck.toString(), "--prompt", "The council", "--tokens", "20", "--seed", "3");
        assertEquals(r.out(), again.out(), "same seed, same output");
        Cli.Result greedy = Cli.run("generate", "--checkpoint", ck.toString(), "--prompt", "x", "--tokens", "5", "--temperature", "0");
        assertEquals(0, greedy.code(), greedy.err());
    }

    @Test
    void nonexistentData() {
        Cli.Result r = Cli.run("train", "--preset", "tiny", "--data", dir.resolve("nope.txt").toString(), "--out", dir.resolve("x1").toString());
        CliTest.assertBadInput(r, "nope.txt", "");
    }

    @Test
    void corpusShorterThanOneWindow() throws IOException {
        Path small = dir.resolve("small.txt");
        Files.writeString(small, "a few bytes\nand a second line\n");
        Cli.Result r = Cli.run("train", "--preset", "tiny", "--data", small.toString(), "--out", dir.resolve("x2").toString());
        CliTest.assertBadInput(r, "small.txt", "seq-len");
    }

    @Test
    void nonUtf8Data() throws IOException {
        Path bad = dir.resolve("latin1.txt");
        Files.write(bad, new byte[]{'c', 'a', 'f', (byte) 0xE9, '\n'});
        CliTest.assertBadInput(Cli.run("train", "--preset", "tiny", "--data", bad.toString(), "--out", dir.resolve("x3").toString()),
                "latin1.txt", "UTF-8");
    }

    @Test
    void resumeWithContradictingOverrides() {
        Cli.Result r = Cli.run("train", "--resume", ck.toString(), "--width", "64", "--data", text.toString());
        CliTest.assertBadInput(r, ck.getFileName().toString(), "width: 64 vs 32");
    }

    @Test
    void resumeFromAModelCheckpointWithoutTrainingState() {
        Path model = dir.resolve("model.safetensors");
        assertEquals(0, Cli.run("init", "--preset", "tiny", "--out", model.toString()).code());
        CliTest.assertBadInput(Cli.run("train", "--resume", model.toString(), "--data", text.toString()), "model.safetensors", "training state");
    }

    @Test
    void nonWritableOutput() throws IOException {
        Path file = dir.resolve("a-file");
        Files.writeString(file, "x");
        Cli.Result r = Cli.run("train", "--preset", "tiny", "--data", text.toString(), "--out", file.resolve("sub").toString());
        CliTest.assertBadInput(r, "a-file", "--out");
    }

    @Test
    void existingRunIsNotOverwritten() throws IOException {
        byte[] before = Files.readAllBytes(ck);
        Cli.Result r = Cli.run("train", "--preset", "tiny", "--width", "32", "--seq-len", "32", "--steps", "3",
                "--data", text.toString(), "--out", run.toString());
        CliTest.assertBadInput(r, "run", "--resume");
        assertArrayEquals(before, Files.readAllBytes(ck));
    }

    @Test
    void impossibleConfigs() {
        Path out = dir.resolve("never");
        CliTest.assertBadInput(Cli.run("train", "--preset", "tiny", "--heads", "5", "--out", out.toString()), "", "not divisible by heads");
        CliTest.assertBadInput(Cli.run("train", "--preset", "tiny", "--ffn", "moe", "--experts", "4", "--experts-active", "5",
                "--out", out.toString()), "", "exceeds experts");
        CliTest.assertBadInput(Cli.run("train", "--preset", "tiny", "--streams", "0", "--out", out.toString()), "", "streams must be >= 1");
        CliTest.assertBadInput(Cli.run("train", "--preset", "tiny", "--steps", "0", "--out", out.toString()), "", "--steps");
        assertTrue(!Files.exists(out), "nothing created for a refused run");
    }
}
