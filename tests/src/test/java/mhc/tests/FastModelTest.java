package mhc.tests;

import mhc.engine.Batch;
import mhc.engine.Checkpoint;
import mhc.engine.Config;
import mhc.engine.ParamSpec;
import mhc.engine.io.Safetensors;
import mhc.engine.jvm.FastOps;
import mhc.engine.model.Model;
import mhc.engine.model.Params;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole model on the fast path ({@code new Model(params, new FastOps())}) against the plain
 * kernels ({@code new Model(params)}) on every connection x FFN combination: the loss within
 * 1e-5 relative and every gradient tensor within {@code 1e-3 * max|plain|} of that tensor. The
 * kernels differ by float rounding only (FastKernelTest), and the backward chains them through
 * 2L sublayers; 1e-3 of a tensor's scale leaves room for that and still fails on any wrong
 * term.
 *
 * <p>One exception, and its stand-in: a tensor whose exact gradient is itself at float rounding
 * level (HC's first-sublayer {@code hc.pre}/{@code hc.w_pre}: all streams are equal there, see
 * FixtureTest) is not determined to 1e-3 by any float32 computation; the plain path is off from
 * the double-precision twin of the model by about 2e-3 of the tensor there. Such a tensor must
 * instead be about as accurate as the plain path: {@code max|fast - f64| <= 1e-3 max|f64| +
 * 2 max|plain - f64| + 2^-22 G}, where G is the largest gradient entry of the model and
 * 2^-22 G four units of float32 roundoff of it: the value of such a tensor is a sum whose terms
 * cancel, so two float32 computations that round differently (FMA against multiply-add,
 * another summation order) land a few roundoffs of the gradients' scale apart, whatever each
 * kernel's own accuracy. Measured on hc-dense (G = 0.58): the fast path lands 2 to 5 roundoffs
 * of G from the f64 model on these two tensors (at 128 and 256 bits, and with both summation
 * orders the GEMM has had), the plain path 0.15 to 1.3. A missing or wrong term moves such a
 * tensor by the size of that term: one token's term left out of {@code hc.pre}'s sum over
 * the tokens fails it at twice the bound (checked). (FixtureTest compares the plain path with
 * an independent implementation and keeps its own floor.) The test prints which tensors
 * needed the stand-in.
 *
 * <p>Then the reference fixtures through the fast path, with FixtureTest's bound, and
 * bit-identical results for any thread count and on a second run.
 */
class FastModelTest {
    static final double LOSS_RTOL = 1e-5;
    static final double GRAD_OF_SCALE = 1e-3;
    /** Four units of float32 roundoff (2^-24 each): the floor for rounding-level tensors, times G. */
    static final double ROUNDING_FLOOR = 0x1p-22;

    @ParameterizedTest
    @CsvSource({"residual,dense", "residual,moe", "hc,dense", "hc,moe", "mhc,dense", "mhc,moe"})
    void smallModelMatchesPlain(String connection, String ffn) {
        compare(Models.small(connection, ffn), connection + "-" + ffn);
    }

    /**
     * Larger than Models.small so that attention spans two key blocks and a partial one (T = 70,
     * D = 20, not a whole vector) and every GEMM has edge tiles.
     */
    @ParameterizedTest
    @CsvSource({"residual,dense", "hc,moe", "mhc,dense"})
    void midModelMatchesPlain(String connection, String ffn) {
        compare(mid(connection, ffn), "mid " + connection + "-" + ffn);
    }

    static Config mid(String connection, String ffn) {
        return Config.preset("tiny").withAll(Map.ofEntries(
                Map.entry("width", 40), Map.entry("blocks", 1), Map.entry("heads", 2), Map.entry("streams", 4),
                Map.entry("connection", connection), Map.entry("ffn", ffn), Map.entry("ffn_hidden", 45),
                Map.entry("experts", 4), Map.entry("experts_active", 2), Map.entry("shared_experts", 1),
                Map.entry("expert_hidden", 19), Map.entry("seq_len", 70), Map.entry("batch_size", 2)));
    }

    private static void compare(Config cfg, String what) {
        Params params = Models.perturbed(cfg, 11);
        int B = cfg.batchSize(), T = cfg.seqLen();
        int[] tokens = Models.tokens(B, T, 5);
        Model ref = new Model(params);
        Model fast = new Model(params, new FastOps());
        double lossRef = ref.forward(tokens, B, T);
        ref.backward();
        double lossFast = fast.forward(tokens, B, T);
        fast.backward();
        assertEquals(lossRef, lossFast, LOSS_RTOL * Math.abs(lossRef), what + ": loss");
        mhc.engine.model.f64.Model exact = null;
        double globalMax = 0;
        int checked = 0;
        double worst = 0;
        StringBuilder roundingLevel = new StringBuilder();
        for (ParamSpec spec : params.specs()) {
            if (!spec.trainable()) {
                continue;
            }
            float[] r = ref.grads().get(spec.name());
            float[] g = fast.grads().get(spec.name());
            double maxRef = 0, maxDiff = 0;
            for (int i = 0; i < r.length; i++) {
                maxRef = Math.max(maxRef, Math.abs(r[i]));
                maxDiff = Math.max(maxDiff, Math.abs(g[i] - r[i]));
            }
            checked++;
            if (maxDiff <= GRAD_OF_SCALE * maxRef) {
                if (maxRef > 0) {
                    worst = Math.max(worst, maxDiff / maxRef);
                }
                continue;
            }
            if (exact == null) {
                exact = new mhc.engine.model.f64.Model(Models.toDouble(params));
                exact.forward(tokens, B, T);
                exact.backward();
                for (ParamSpec sp : params.specs()) {
                    if (sp.trainable()) {
                        for (double v : exact.grads().get(sp.name())) {
                            globalMax = Math.max(globalMax, Math.abs(v));
                        }
                    }
                }
            }
            double[] d = exact.grads().get(spec.name());
            double maxExact = 0, plainErr = 0, fastErr = 0;
            for (int i = 0; i < r.length; i++) {
                maxExact = Math.max(maxExact, Math.abs(d[i]));
                plainErr = Math.max(plainErr, Math.abs(r[i] - d[i]));
                fastErr = Math.max(fastErr, Math.abs(g[i] - d[i]));
            }
            double bound = GRAD_OF_SCALE * maxExact + 2 * plainErr + ROUNDING_FLOOR * globalMax;
            assertTrue(fastErr <= bound, String.format(Locale.ROOT,
                    "%s: grad.%s max|fast - plain| = %.3e > %.0e * max|plain| = %.3e, and max|fast - f64| = %.3e "
                            + "> 1e-3 max|f64| + 2 max|plain - f64| + 2^-22 max|all f64 gradients| = %.3e"
                            + " (max|f64| = %.3e, max|plain - f64| = %.3e, max|all f64 gradients| = %.3e)", what, spec.name(),
                    maxDiff, GRAD_OF_SCALE, GRAD_OF_SCALE * maxRef, fastErr, bound, maxExact, plainErr, globalMax));
            roundingLevel.append(String.format(Locale.ROOT, " %s (|fast-f64| %.1e, |plain-f64| %.1e, max|f64| %.1e)",
                    spec.name(), fastErr, plainErr, maxExact));
        }
        assertTrue(checked > 10, "checked only " + checked + " tensors");
        System.out.printf(Locale.ROOT, "FastModelTest %s: loss %.9f vs %.9f, worst gradient diff %.2e of its tensor's scale%s%n",
                what, lossFast, lossRef, worst, roundingLevel.length() == 0 ? "" : "; at rounding level:" + roundingLevel);
    }

    /**
     * With the parameters held (as a training step holds them, so the fast path keeps its
     * packed weights and mHC's packed phi), the model gives the same bits as with packing per
     * call; after a release and a change of every parameter, a new hold gives the new model's
     * bits, not the stale packs'.
     */
    @ParameterizedTest
    @CsvSource({"residual,dense", "residual,moe", "hc,dense", "hc,moe", "mhc,dense", "mhc,moe"})
    void heldParametersGiveTheSameBits(String connection, String ffn) {
        Config cfg = mid(connection, ffn);
        Params params = Models.perturbed(cfg, 21);
        int B = cfg.batchSize(), T = cfg.seqLen();
        int[] tokens = Models.tokens(B, T, 8);
        FastOps heldOps = new FastOps();
        Model held = new Model(params, heldOps);
        heldOps.holdParameters();
        for (int round = 0; round < 3; round++) {
            if (round == 2) {
                heldOps.releaseParameters();
                for (ParamSpec spec : params.specs()) {
                    float[] p = params.get(spec.name());
                    for (int i = 0; i < p.length; i++) {
                        p[i] = 0.9f * p[i] + 0.01f * (i % 7);
                    }
                }
                heldOps.holdParameters();
            }
            Model perCall = new Model(params, new FastOps());
            assertEquals(perCall.forward(tokens, B, T), held.forward(tokens, B, T), 0.0, "loss, round " + round);
            perCall.backward();
            held.backward();
            for (ParamSpec spec : params.specs()) {
                assertArrayEquals(perCall.grads().get(spec.name()), held.grads().get(spec.name()),
                        connection + "-" + ffn + " round " + round + ": grad." + spec.name());
            }
        }
        heldOps.releaseParameters();
    }

    /** FixtureTest's gradient check, with the model on the fast path. */
    @ParameterizedTest
    @ValueSource(strings = {"residual-dense", "hc-dense", "mhc-moe"})
    void fixturesThroughFastPath(String name) {
        FixtureTest.assertGradientsMatchReference(name, new FastOps());
    }

    /** Same bits with 1 and 2 threads per call, and on a second run of the same model. */
    @Test
    void deterministicAcrossThreadsAndRuns() {
        Config cfg = mid("mhc", "moe");
        Params params = Models.perturbed(cfg, 3);
        int B = cfg.batchSize(), T = cfg.seqLen();
        int[] tokens = Models.tokens(B, T, 9);
        float[][] first = null;
        double firstLoss = 0;
        for (int run = 0; run < 3; run++) {
            Model m = new Model(params, new FastOps(run == 2 ? 2 : 1));
            double loss = m.forward(tokens, B, T);
            m.backward();
            float[][] grads = new float[params.specs().size()][];
            int i = 0;
            for (ParamSpec spec : params.specs()) {
                grads[i++] = m.grads().get(spec.name()).clone();
            }
            if (first == null) {
                first = grads;
                firstLoss = loss;
            } else {
                assertEquals(firstLoss, loss, 0.0, "loss, run " + run);
                for (int j = 0; j < grads.length; j++) {
                    assertArrayEquals(first[j], grads[j], params.specs().get(j).name() + ", run " + run);
                }
            }
        }
    }
}
