package mhc.tests;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import mhc.engine.Backend;
import mhc.engine.Config;
import mhc.engine.Init;
import mhc.engine.LanguageModel;
import mhc.engine.ParamSpec;
import mhc.engine.data.Corpus;
import mhc.engine.io.Safetensors;
import mhc.engine.model.Model;
import mhc.engine.model.Ops;
import mhc.engine.model.Params;
import mhc.engine.train.Optimizer;
import mhc.engine.train.StepRunner;
import mhc.engine.train.TrainSettings;
import mhc.engine.train.TrainState;
import mhc.engine.train.Trainer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.AbstractList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The training loop: learning, bit-exact resume, atomic checkpoints, the NaN guard, threads. */
class TrainingTest {
    @TempDir
    static Path dir;
    static Path text;

    /** A small multilingual text: ~40 KB of varied sentences, enough for windows of 64+1 bytes. */
    @BeforeAll
    static void text() throws IOException {
        StringBuilder sb = new StringBuilder();
        String[] words = {"the", "parliament", "commission", "council", "vote", "report", "member", "states", "europe",
                "budget", "proposal", "amendment", "debate", "président", "über", "ελληνικά", "questão", "policy"};
        java.util.Random r = new java.util.Random(5);
        for (int line = 0; line < 600; line++) {
            int n = 5 + r.nextInt(10);
            for (int w = 0; w < n; w++) {
                sb.append(words[r.nextInt(words.length)]).append(w == n - 1 ? ".\n" : " ");
            }
        }
        text = dir.resolve("text.txt");
        Files.writeString(text, sb);
    }

    static Config small() {
        return Config.preset("tiny").withAll(Map.of("width", 32, "blocks", 1, "heads", 2, "seq_len", 32,
                "batch_size", 4, "ffn_hidden", 64));
    }

    static List<JsonObject> log(Path file) throws IOException {
        List<JsonObject> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            out.add(JsonParser.parseString(line).getAsJsonObject());
        }
        return out;
    }

    /**
     * The gradient norm's sum of squares: element i in chain i mod 4, the chains added in order
     * (every length up to 9, so each tail case), and on a large tensor within the error bound of
     * such a sum of positive terms, (n/4 + 3) roundoffs of the total, of the exact sum (squares of
     * floats are exact in double; the reference is summed in BigDecimal).
     */
    @Test
    void sumOfSquaresTakesFourChainsInOrder() {
        java.util.Random rnd = new java.util.Random(5);
        for (int n = 0; n <= 9; n++) {
            for (int trial = 0; trial < 200; trial++) { // sums of a few terms: many draws, so that orders differ in rounding
                float[] g = new float[n];
                for (int i = 0; i < n; i++) {
                    g[i] = (float) (1 + rnd.nextDouble()) * (rnd.nextBoolean() ? 1 : 1 << rnd.nextInt(12));
                }
                double[] chain = new double[4];
                for (int i = 0; i < n; i++) {
                    chain[i % 4] += (double) g[i] * g[i];
                }
                assertEquals(((chain[0] + chain[1]) + chain[2]) + chain[3], Optimizer.sumOfSquares(g), 0.0, "length " + n);
            }
        }
        float[] g = new float[100_003];
        java.math.BigDecimal exact = java.math.BigDecimal.ZERO;
        for (int i = 0; i < g.length; i++) {
            g[i] = (float) rnd.nextGaussian();
            exact = exact.add(new java.math.BigDecimal((double) g[i] * g[i]));
        }
        assertEquals(exact.doubleValue(), Optimizer.sumOfSquares(g), (g.length / 4.0 + 3) * 0x1p-53 * exact.doubleValue());
    }

    @Test
    void lossDropsOnSmallText() {
        Corpus corpus = Corpus.load(text);
        TrainSettings s = TrainSettings.defaults().withSteps(40).withLr(1e-2).withWarmup(5);
        Trainer t = new Trainer(Init.initialize(small(), 3), s, corpus, null, null, new Trainer.Options(0, 2, 0, 0, 2));
        List<Double> losses = new ArrayList<>();
        t.onRecord(r -> losses.add(r.get("loss").getAsDouble()));
        t.run();
        double first = losses.get(0);
        double lastFive = losses.subList(35, 40).stream().mapToDouble(d -> d).average().orElseThrow();
        assertEquals(Math.log(256), first, 0.1, "initial loss near uniform");
        assertTrue(lastFive < first - 2.0, "loss fell from " + first + " to " + lastFive);
        assertTrue(t.lastValLoss() < first - 2.0, "validation loss " + t.lastValLoss());
    }

    /** Train 20 steps of tiny; resume from step 10 on another thread count; steps 11..20 agree bit for bit. */
    @Test
    void resumeIsBitExact() throws IOException {
        Path a = dir.resolve("run-a"), b = dir.resolve("run-b");
        Cli.Result r = Cli.run("train", "--preset", "tiny", "--data", text.toString(), "--steps", "20", "--checkpoint-every", "10",
                "--eval-every", "10", "--gain-every", "5", "--threads", "2", "--out", a.toString());
        assertEquals(0, r.code(), r.err());
        Path at10 = Trainer.checkpointPath(a, 10);
        assertTrue(Files.exists(at10));
        r = Cli.run("train", "--resume", at10.toString(), "--data", text.toString(), "--eval-every", "10", "--gain-every", "5",
                "--checkpoint-every", "10", "--threads", "1", "--out", b.toString());
        assertEquals(0, r.code(), r.err());
        List<JsonObject> full = log(a.resolve("log.jsonl")), resumed = log(b.resolve("log.jsonl"));
        assertEquals(20, full.size());
        assertEquals(10, resumed.size());
        for (int i = 0; i < 10; i++) {
            JsonObject x = full.get(10 + i), y = resumed.get(i);
            assertEquals(x.get("step").getAsInt(), y.get("step").getAsInt());
            for (String k : List.of("loss", "lr", "grad_norm")) {
                assertEquals(x.get(k).getAsDouble(), y.get(k).getAsDouble(), 0.0, "step " + x.get("step") + " " + k);
            }
            for (String k : List.of("val_loss", "gain_fwd", "gain_bwd")) {
                assertEquals(x.has(k), y.has(k));
                if (x.has(k)) {
                    assertEquals(x.get(k).getAsDouble(), y.get(k).getAsDouble(), 0.0, "step " + x.get("step") + " " + k);
                }
            }
        }
        Params pa = TrainState.load(Trainer.checkpointPath(a, 20)).params();
        Params pb = TrainState.load(Trainer.checkpointPath(b, 20)).params();
        for (String name : pa.names()) {
            assertArrayEquals(pa.get(name), pb.get(name), name);
        }
    }

    @Test
    void lossAndGradientsDoNotDependOnTheThreadCount() {
        Config cfg = Models.small("mhc", "moe").with("batch_size", 5);
        Params p = Models.perturbed(cfg, 2);
        int[] batch = Models.tokens(5, 6, 8);
        Params g1 = new Params(cfg), g2 = new Params(cfg), g3 = new Params(cfg), g7 = new Params(cfg);
        StepRunner.Result r1, r2, r3, r7;
        // 2 and 3 threads for 5 sequences: the threads that run out of sequences help the others'
        // calls; 7 threads: 5 replicas, the first two with 2 threads inside their calls
        try (StepRunner one = new StepRunner(p, 1); StepRunner two = new StepRunner(p, 2);
             StepRunner three = new StepRunner(p, 3); StepRunner seven = new StepRunner(p, 7)) {
            r1 = one.step(batch, 5, 6, g1, true);
            r2 = two.step(batch, 5, 6, g2, true);
            r3 = three.step(batch, 5, 6, g3, true);
            r7 = seven.step(batch, 5, 6, g7, true);
        }
        assertEquals(r1.loss(), r2.loss(), 0.0);
        assertEquals(r1.loss(), r3.loss(), 0.0);
        assertEquals(r1.loss(), r7.loss(), 0.0);
        assertEquals(r1.gains().maxCompositeBackward(), r2.gains().maxCompositeBackward(), 0.0);
        assertEquals(r1.gains().maxCompositeBackward(), r7.gains().maxCompositeBackward(), 0.0);
        for (String name : g1.names()) {
            assertArrayEquals(g1.get(name), g2.get(name), name);
            assertArrayEquals(g1.get(name), g3.get(name), name + " (3 threads)");
            assertArrayEquals(g1.get(name), g7.get(name), name + " (7 threads)");
        }
        for (int l = 1; l < cfg.sublayers(); l += 2) {
            assertArrayEquals(r1.loads()[l], r2.loads()[l]);
            assertEquals(5 * 6 * cfg.expertsActive(), java.util.Arrays.stream(r1.loads()[l]).sum());
        }
    }

    /** The batch split into rows gives the gradient of the whole batch's mean loss (up to rounding). */
    @Test
    void dataParallelGradientEqualsTheWholeBatchGradient() {
        Config cfg = Models.small("hc", "dense").with("batch_size", 3);
        Params p = Models.perturbed(cfg, 4);
        int[] batch = Models.tokens(3, 6, 2);
        Params g = new Params(cfg);
        double loss;
        try (StepRunner r = new StepRunner(p, 2, Backend.plain())) { // the same kernels as the whole-batch model
            loss = r.step(batch, 3, 6, g, false).loss();
        }
        mhc.engine.model.Model whole = new mhc.engine.model.Model(p);
        assertEquals(whole.forward(batch, 3, 6), loss, 1e-6);
        whole.backward();
        for (String name : g.names()) {
            Check.close(name, whole.grads().get(name), g.get(name), 1e-6, 1e-4);
        }
    }

    /**
     * The data-parallel step on the fast path, where each chunk's backward adds into the shared
     * gradients stage by stage: the gradient of the whole batch through one model (the same
     * kernels) up to rounding, on every connection and FFN. A parameter gradient that a backward
     * overwrote instead of adding to would hold one row's share and fail.
     */
    @ParameterizedTest
    @CsvSource({"residual,dense", "residual,moe", "hc,dense", "hc,moe", "mhc,dense", "mhc,moe"})
    void fastDataParallelStepAddsEveryRow(String connection, String ffn) {
        Config cfg = Models.small(connection, ffn).with("batch_size", 3);
        Params p = Models.perturbed(cfg, 6);
        int[] batch = Models.tokens(3, 6, 7);
        Params g = new Params(cfg);
        double loss;
        try (StepRunner r = new StepRunner(p, 2, Backend.select("fast"))) {
            loss = r.step(batch, 3, 6, g, false).loss();
        }
        Model whole = new Model(p, Backend.select("fast").newOps());
        assertEquals(whole.forward(batch, 3, 6), loss, 1e-6);
        whole.backward();
        for (String name : g.names()) {
            Check.close(connection + "-" + ffn + " " + name, whole.grads().get(name), g.get(name), 1e-6, 1e-4);
        }
    }

    /**
     * {@code Model.backwardAdding} adds every parameter's gradient to what the set holds (the
     * step relies on it to skip zeroing its sets): a set starting at 1 + i/8 ends at that plus
     * the gradient {@code backward} gives, within float rounding of values near 1; a kernel
     * that overwrote its gradient would lose the start (off by about 1), one that added twice
     * would be off by the gradient.
     */
    @ParameterizedTest
    @CsvSource({"residual,dense,jvm,small", "hc,moe,jvm,small", "mhc,moe,jvm,small", "mhc,dense,fast,small",
            "residual,dense,fast,mid", "hc,moe,fast,mid", "mhc,dense,fast,mid", "mhc,moe,fast,mid"})
    void backwardAddingAddsToWhatTheSetHolds(String connection, String ffn, String backend, String size) {
        // mid: n = 4 (the fast path's own mHC kernels), C = 40 and T = 70 (whole and partial vectors)
        Config cfg = size.equals("mid") ? FastModelTest.mid(connection, ffn) : Models.small(connection, ffn);
        Params p = Models.perturbed(cfg, 8);
        int T = cfg.seqLen();
        int[] batch = Models.tokens(2, T, 9);
        Model m = new Model(p, Backend.select(backend).newOps());
        m.forward(batch, 2, T);
        Params ref = new Params(cfg);
        m.backward(2 * T, ref);
        Params start = new Params(cfg);
        Params got = new Params(cfg);
        for (String name : start.names()) {
            float[] a = start.get(name);
            for (int i = 0; i < a.length; i++) {
                a[i] = 1f + (i % 8) / 8f;
            }
            System.arraycopy(a, 0, got.get(name), 0, a.length);
        }
        m.backwardAdding(2 * T, got);
        double worstGrad = 0;
        for (String name : ref.names()) {
            float[] g = ref.get(name);
            double[] want = new double[g.length], have = new double[g.length];
            for (int i = 0; i < g.length; i++) {
                want[i] = (double) start.get(name)[i] + g[i];
                have[i] = got.get(name)[i];
                worstGrad = Math.max(worstGrad, Math.abs(g[i]));
            }
            Check.close(size + " " + connection + "-" + ffn + "/" + backend + " " + name, want, have, 1e-6, 1e-5);
        }
        assertTrue(worstGrad > 1e-3, "the gradients are large enough for the check to see them: " + worstGrad);
    }

    /** A chunk that fails ends the step with its own error, leaves no thread waiting for it, and the runner still works. */
    @Test
    void aFailingChunkEndsTheStepWithItsError() {
        Config cfg = Models.small("mhc", "dense").with("batch_size", 4);
        Params p = Models.perturbed(cfg, 2);
        int[] good = Models.tokens(4, 6, 3);
        int[] bad = good.clone();
        bad[2 * 7] = 1_000_000; // chunk 2's first token: outside the embedding
        try (StepRunner r = new StepRunner(p, 2)) {
            Params g = new Params(cfg);
            assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
                RuntimeException e = assertThrows(RuntimeException.class, () -> r.step(bad, 4, 6, g, false));
                assertTrue(e instanceof ArrayIndexOutOfBoundsException, "the failing chunk's own error, got " + e);
                // no worker may stay inside the step (it would hold a pool thread for good)
                long deadline = System.nanoTime() + 5_000_000_000L;
                while (workersInsideAStep() > 0 && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                }
                assertEquals(0, workersInsideAStep(), "workers still inside the failed step");
                double loss = r.step(good, 4, 6, g, false).loss();
                assertTrue(Double.isFinite(loss), "loss " + loss);
            });
        }
    }

    /**
     * A chunk whose backward fails leaves gradients in its set (here the head's, written before
     * the final norm's weight gradient fails), and that set is never added. The runner keeps its
     * sets at zero between steps so that backwards add into them without a zeroing pass: the next
     * step must clear such a set, and give the gradients of a runner that never failed.
     */
    @Test
    void aStepAfterAFailedBackwardAddsNoStaleGradients() {
        Config cfg = Models.small("mhc", "dense").with("batch_size", 4);
        Params p = Models.perturbed(cfg, 3);
        int[] batch = Models.tokens(4, 6, 5);
        AtomicBoolean fail = new AtomicBoolean(true);
        Backend failing = Backend.of("failing", "plain kernels, one backward fails", () -> new Ops() {
            @Override
            public void rmsnormWeightBackward(float[] dw, float[] dout, float[] x, float[] rstd, int N, int C) {
                if (fail.getAndSet(false)) {
                    throw new IllegalStateException("planted failure");
                }
                super.rmsnormWeightBackward(dw, dout, x, rstd, N, C);
            }
        });
        Params g = new Params(cfg), ref = new Params(cfg);
        double loss, refLoss;
        try (StepRunner r = new StepRunner(p, 2, failing)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> r.step(batch, 4, 6, g, false));
            assertEquals("planted failure", e.getMessage());
            loss = r.step(batch, 4, 6, g, false).loss();
        }
        try (StepRunner r = new StepRunner(p, 2, Backend.plain())) {
            refLoss = r.step(batch, 4, 6, ref, false).loss();
        }
        assertEquals(refLoss, loss, 0.0);
        for (String name : ref.names()) {
            assertArrayEquals(ref.get(name), g.get(name), name + " in the step after the failed one");
        }
    }

    private static int workersInsideAStep() {
        int inside = 0;
        for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
            if (e.getKey().getName().equals("mhc-worker")
                    && java.util.Arrays.stream(e.getValue()).anyMatch(f -> f.getClassName().startsWith(StepRunner.class.getName()))) {
                inside++;
            }
        }
        return inside;
    }

    @Test
    void nanGuardNamesTheStepAndTheSublayer() throws IOException {
        Params p = Init.initialize(small(), 1);
        p.get("blocks.0.ffn.w1")[7] = Float.NaN;
        Path out = dir.resolve("nan-run");
        Files.createDirectories(out);
        Trainer t = new Trainer(p, TrainSettings.defaults().withSteps(5), Corpus.load(text), out, null,
                new Trainer.Options(0, 1, 1, 0, 2));
        LanguageModel.DivergedException e = assertThrows(LanguageModel.DivergedException.class, t::run);
        assertTrue(e.getMessage().contains("step 1"), e.getMessage());
        assertTrue(e.getMessage().contains("sublayer 1 (blocks.0.ffn)"), e.getMessage());
        try (Stream<Path> files = Files.list(out)) {
            assertEquals(0, files.count(), "no checkpoint may be written");
        }
    }

    @Test
    void nanGuardOnTheCommandLine() throws IOException {
        Path ck = dir.resolve("nan.safetensors");
        Params p = Init.initialize(small(), 1);
        p.get("blocks.0.attn.wv")[3] = Float.POSITIVE_INFINITY;
        TrainState st = new TrainState(p, new Params(p.config()), new Params(p.config()), 0, 1, TrainSettings.defaults().withSteps(3), "x");
        st.save(ck);
        Cli.Result r = Cli.run("train", "--resume", ck.toString(), "--data", text.toString(), "--out", dir.resolve("nan-cli").toString());
        assertEquals(3, r.code(), r.err());
        assertTrue(r.err().contains("sublayer 0 (blocks.0.attn)"), r.err());
    }

    /** A write that fails midway (here: a tensor list that breaks while streaming) leaves the old checkpoint intact. */
    @Test
    void failedCheckpointWriteKeepsThePreviousOne() throws IOException {
        Params p = Init.initialize(small(), 1);
        Path ck = dir.resolve("atomic.safetensors");
        new TrainState(p, new Params(p.config()), new Params(p.config()), 7, 42, TrainSettings.defaults(), "x").save(ck);
        byte[] before = Files.readAllBytes(ck);
        List<Safetensors.Tensor> tensors = mhc.engine.Checkpoint.tensors("", p);
        // Reads past the first pass over the list (the header) fail: the crash comes while data is written.
        int[] reads = {0};
        List<Safetensors.Tensor> failing = new AbstractList<>() {
            @Override
            public Safetensors.Tensor get(int i) {
                if (++reads[0] > tensors.size() + tensors.size() / 2) {
                    throw new IllegalStateException("simulated crash while writing");
                }
                return tensors.get(i);
            }

            @Override
            public int size() {
                return tensors.size();
            }
        };
        assertThrows(RuntimeException.class, () -> Safetensors.write(ck, Map.of("config", p.config().toJson()), failing));
        assertArrayEquals(before, Files.readAllBytes(ck), "previous checkpoint intact");
        TrainState back = TrainState.load(ck);
        assertEquals(7, back.step());
        assertEquals(42, back.samplerState());
        try (Stream<Path> files = Files.list(dir)) {
            assertFalse(files.anyMatch(f -> f.getFileName().toString().endsWith(".tmp")), "no temporary file left");
        }
    }

    @Test
    void routerBiasFollowsTheLoads() {
        Config cfg = Models.small("mhc", "moe");
        Params p = Init.initialize(cfg, 2);
        int[][] loads = new int[cfg.sublayers()][];
        loads[1] = new int[]{10, 2, 4, 4, 0};   // mean 4
        loads[3] = new int[]{4, 4, 4, 4, 4};
        Optimizer.updateRouterBias(p, loads);
        float g = (float) cfg.routerGamma();
        assertArrayEquals(new float[]{-g, g, 0, 0, g}, p.get("blocks.0.ffn.router_bias"));
        assertArrayEquals(new float[5], p.get("blocks.1.ffn.router_bias"));
    }

    @Test
    void weightDecaySkipsNormsAndConnectionStatics() {
        Config cfg = Models.small("hc", "moe");
        for (ParamSpec s : new Params(cfg).specs()) {
            boolean expect = s.shape().length >= 2 && !s.name().endsWith("hc.res");
            assertEquals(expect, s.decay(), s.name());
        }
    }

    /**
     * The optimizer step as device kernels ({@code Optimizer.DeviceUpdate}: partial sums of
     * squares, the clip scale, the scheduled AdamW), run here on the plain kernels, equals the
     * host update over three steps with clipping active: the norm within 1e-6 relative (float
     * partial sums against double), the parameters within 1e-6 + 1e-5 relative. A non-finite
     * gradient leaves parameters, moments and the step count exactly as they were.
     */
    @Test
    void deviceFormOfTheUpdateEqualsTheHostUpdate() {
        Config cfg = Models.small("mhc", "dense");
        Params host = Models.perturbed(cfg, 31), dev = Models.perturbed(cfg, 31);
        int[] batch = Models.tokens(2, 5, 3);
        mhc.engine.model.Model m = new mhc.engine.model.Model(Models.perturbed(cfg, 31));
        m.forward(batch, 2, 5);
        m.backward();
        Params grads = m.grads();
        float[] losses = {1.5f, 2.25f, 0.5f, 3f, 1f, 2f, 2.5f, 1.25f, 0.75f, 4f};
        TrainSettings settings = TrainSettings.defaults().withLr(1e-2).withWarmup(1);
        Optimizer a = new Optimizer(cfg, settings), b = new Optimizer(cfg, settings);
        Optimizer.DeviceUpdate d = b.deviceUpdate(dev);
        mhc.engine.model.Ops plain = new mhc.engine.model.Ops();
        for (int step = 0; step < 3; step++) {
            double lr = settings.lrAt(step), norm = Optimizer.gradNorm(grads);
            assertTrue(norm > settings.clip(), "clipping is active: norm " + norm);
            a.update(host, grads, lr, norm);
            d.prepare(lr);
            d.record(plain, grads, losses, losses.length);
            assertTrue(d.finish(), "finite step applied");
            assertEquals(norm, d.gradNorm(), 1e-6 * norm, "gradient norm");
            assertEquals(18.75, d.lossSum(), 1e-5, "loss sum");
            assertEquals(a.stepsTaken(), b.stepsTaken());
        }
        for (String name : host.names()) {
            Check.close(name, host.get(name), dev.get(name), 1e-6, 1e-5);
            Check.close("m." + name, a.firstMoments().get(name), b.firstMoments().get(name), 1e-9, 1e-5);
            Check.close("v." + name, a.secondMoments().get(name), b.secondMoments().get(name), 1e-12, 1e-5);
        }
        float[] before = dev.get("head").clone(), mBefore = b.firstMoments().get("head").clone();
        grads.get("blocks.0.attn.wq")[7] = Float.NaN;
        d.prepare(settings.lrAt(3));
        d.record(plain, grads, losses, losses.length);
        assertFalse(d.finish(), "a NaN gradient is not applied");
        assertTrue(Double.isNaN(d.gradNorm()));
        assertEquals(3, b.stepsTaken());
        assertArrayEquals(before, dev.get("head"));
        assertArrayEquals(mBefore, b.firstMoments().get("head"));
    }
}
