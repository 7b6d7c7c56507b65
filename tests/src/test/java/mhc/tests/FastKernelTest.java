package mhc.tests;

import mhc.engine.Backend;
import mhc.engine.InputException;
import mhc.engine.jvm.FastGemm;
import mhc.engine.jvm.FastOps;
import mhc.engine.model.HelperThreads;
import mhc.engine.model.Ops;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static mhc.tests.KernelHarness.gaussF;
import static mhc.tests.KernelHarness.uniformF;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every kernel of the JVM fast path ({@link FastOps}) against the plain kernel it replaces
 * ({@link Ops}), forward and backward, on odd shapes (1, 7, 33, 65, 130: not multiples of the
 * vector length, the GEMM's 12 x 32 micro-tile or its 256-deep K blocks; attention also past its
 * 32-query and 256-key blocks), with stacked-weight offsets and with the backward's += on
 * non-zero gradients.
 *
 * <p>Tolerance: {@code |fast - plain| <= 1e-5 * max|plain| + 1e-5 |plain|} per output (the
 * style of KernelPrecisionTest). Both compute the same float sums, in other orders or with
 * fused multiply-adds and a float exp polynomial (about 1 ulp) where the plain kernels round a
 * double exp, so the two differ by a few float roundings of the output's scale (measured: below
 * 1e-6 of it); 1e-5 is a wide margin that still catches a missing term, a wrong index, an edge
 * left unwritten (outputs start as NaN) or an overwrite where the kernel must add.
 */
class FastKernelTest {
    static final double ATOL_OF_SCALE = 1e-5;
    static final double RTOL = 1e-5;
    static final int[] ODD = {1, 7, 33, 65, 130};

    static void close(String what, float[] ref, float[] got) {
        double scale = 0;
        for (float v : ref) {
            scale = Math.max(scale, Math.abs(v));
        }
        Check.close(what, ref, got, ATOL_OF_SCALE * Math.max(scale, 1e-30), RTOL);
    }

    static float[] nan(int size) {
        float[] a = new float[size];
        Arrays.fill(a, Float.NaN);
        return a;
    }

    /**
     * The fast kernels run at the width asked for with {@code -Dmhc.vector.bits} (the build runs
     * these tests at the machine's width and at 512, 256 and 128 bits), never wider than the
     * machine's unless {@code -Dmhc.vector.emulate=true} says so.
     */
    @Test
    void vectorWidthIsTheOneAskedFor() {
        int preferred = FastOps.machineVectorBits();
        String asked = System.getProperty("mhc.vector.bits");
        int expected = asked == null ? preferred
                : Backend.emulateWiderVectors() ? Integer.parseInt(asked) : Math.min(Integer.parseInt(asked), preferred);
        assertEquals(expected, FastOps.vectorBits(), "-Dmhc.vector.bits=" + asked + " on a " + preferred + "-bit machine");
    }

    /** Any other width is a bad-input error when the fast backend is chosen, naming the values it takes. */
    @Test
    void unknownVectorWidthIsABadInputError() {
        String old = System.getProperty(Backend.VECTOR_BITS_PROPERTY);
        System.setProperty(Backend.VECTOR_BITS_PROPERTY, "300");
        try {
            InputException e = assertThrows(InputException.class, () -> Backend.select("fast"));
            assertTrue(e.getMessage().contains("-Dmhc.vector.bits=300") && e.getMessage().contains("128, 256 or 512"),
                    e.getMessage());
        } finally {
            if (old == null) {
                System.clearProperty(Backend.VECTOR_BITS_PROPERTY);
            } else {
                System.setProperty(Backend.VECTOR_BITS_PROPERTY, old);
            }
        }
    }

    // ------------------------------------------------------------------ linear maps

    record Mm(int N, int IN, int OUT) {
        @Override
        public String toString() {
            return "N=" + N + ",IN=" + IN + ",OUT=" + OUT;
        }
    }

    static Stream<Mm> matmulShapes() {
        List<Mm> s = new ArrayList<>();
        for (int n : ODD) {
            for (int in : ODD) {
                for (int out : ODD) {
                    if ((n + in + out) % 3 == 0 || n == in && in == out) { // a spread of the 125 combinations
                        s.add(new Mm(n, in, out));
                    }
                }
            }
        }
        s.add(new Mm(256, 256, 688));   // the model's FFN
        s.add(new Mm(256, 1024, 24));   // mHC's phi (n*C -> n*n+2n)
        s.add(new Mm(300, 520, 97));    // two K blocks of 256 and a partial one
        s.add(new Mm(31, 520, 32));     // one whole column panel: A read in place, a partial row panel packed
        s.add(new Mm(300, 37, 32));     // also the weight gradient's A (stored transposed) read in place
        return s.stream();
    }

    @ParameterizedTest
    @MethodSource("matmulShapes")
    void matmulMatchesPlain(Mm s) {
        Random rnd = new Random(s.N * 1000003L + s.IN * 1009L + s.OUT);
        int wOff = 5 + s.IN * s.OUT; // a matrix inside a stacked tensor, others around it
        float[] w = gaussF(rnd, wOff + s.IN * s.OUT + 11, 1);
        float[] inp = gaussF(rnd, s.N * s.IN, 1);
        float[] dout = gaussF(rnd, s.N * s.OUT, 1);
        Ops plain = new Ops();
        FastOps fast = new FastOps();

        float[] ref = nan(s.N * s.OUT), got = nan(s.N * s.OUT);
        plain.matmulForward(ref, inp, w, wOff, s.N, s.IN, s.OUT);
        fast.matmulForward(got, inp, w, wOff, s.N, s.IN, s.OUT);
        close("matmulForward " + s, ref, got);

        float[] dinp0 = gaussF(rnd, s.N * s.IN, 1);
        float[] dinpRef = dinp0.clone(), dinpGot = dinp0.clone();
        plain.matmulBackwardInput(dinpRef, dout, w, wOff, s.N, s.IN, s.OUT);
        fast.matmulBackwardInput(dinpGot, dout, w, wOff, s.N, s.IN, s.OUT);
        close("matmulBackwardInput " + s, dinpRef, dinpGot);

        float[] dw0 = gaussF(rnd, w.length, 1);
        float[] dwRef = dw0.clone(), dwGot = dw0.clone();
        plain.matmulBackwardWeight(dwRef, inp, dout, wOff, s.N, s.IN, s.OUT);
        fast.matmulBackwardWeight(dwGot, inp, dout, wOff, s.N, s.IN, s.OUT);
        close("matmulBackwardWeight " + s, dwRef, dwGot);
        // the other matrices of the stacked tensor are untouched
        for (int i = 0; i < w.length; i++) {
            if (i < wOff || i >= wOff + s.IN * s.OUT) {
                assertEquals(dw0[i], dwGot[i], "matmulBackwardWeight wrote outside its matrix at " + i);
            }
        }
    }

    /** Any thread count computes the same bits (each output element one FMA chain in a fixed order). */
    @Test
    void matmulIsIndependentOfThreadCount() {
        Random rnd = new Random(7);
        int N = 301, IN = 530, OUT = 389;
        float[] w = gaussF(rnd, IN * OUT, 1), inp = gaussF(rnd, N * IN, 1), dout = gaussF(rnd, N * OUT, 1);
        float[][] results = new float[3][];
        for (int threads = 1; threads <= 3; threads++) {
            FastOps fast = new FastOps(threads);
            float[] out = new float[N * OUT], dinp = new float[N * IN], dw = new float[IN * OUT];
            fast.matmulForward(out, inp, w, 0, N, IN, OUT);
            fast.matmulBackwardInput(dinp, dout, w, 0, N, IN, OUT);
            fast.matmulBackwardWeight(dw, inp, dout, 0, N, IN, OUT);
            float[] all = new float[out.length + dinp.length + dw.length];
            System.arraycopy(out, 0, all, 0, out.length);
            System.arraycopy(dinp, 0, all, out.length, dinp.length);
            System.arraycopy(dw, 0, all, out.length + dinp.length, dw.length);
            results[threads - 1] = all;
        }
        assertArrayEquals(results[0], results[1], "1 vs 2 threads");
        assertArrayEquals(results[0], results[2], "1 vs 3 threads");
    }

    /**
     * While the parameters are held ({@code Ops.holdParameters}, as a training step does), the
     * fast path packs each weight once and reuses the pack: the same bits as packing per call,
     * on the second call with other inputs too, with 1 and 2 threads, for two matrices of one
     * stacked tensor (each its own pack). After {@code releaseParameters} and a change of the
     * weights, a new hold sees the new weights, not the old pack. The shape spans two K blocks
     * and two column tiles.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void heldWeightsArePackedOnceWithTheSameBits(int threads) {
        Random rnd = new Random(41 + threads);
        int N = 37, IN = 700, OUT = 1030, off2 = IN * OUT + 3;
        float[] w = gaussF(rnd, 2 * IN * OUT + 3, 1);
        FastOps perCall = new FastOps(threads), held = new FastOps(threads);
        held.holdParameters();
        for (int round = 0; round < 3; round++) {
            if (round == 2) { // new weights between steps
                held.releaseParameters();
                for (int i = 0; i < w.length; i++) {
                    w[i] = -0.5f * w[i] + 0.25f;
                }
                held.holdParameters();
            }
            for (int wOff : new int[]{0, off2}) {
                float[] inp = gaussF(rnd, N * IN, 1), dout = gaussF(rnd, N * OUT, 1), dinp0 = gaussF(rnd, N * IN, 1);
                float[] ref = new float[N * OUT], got = new float[N * OUT];
                perCall.matmulForward(ref, inp, w, wOff, N, IN, OUT);
                held.matmulForward(got, inp, w, wOff, N, IN, OUT);
                assertArrayEquals(ref, got, "forward, round " + round + ", offset " + wOff);
                float[] dRef = dinp0.clone(), dGot = dinp0.clone();
                perCall.matmulBackwardInput(dRef, dout, w, wOff, N, IN, OUT);
                held.matmulBackwardInput(dGot, dout, w, wOff, N, IN, OUT);
                assertArrayEquals(dRef, dGot, "input gradient, round " + round + ", offset " + wOff);
            }
        }
        held.releaseParameters();
    }

    /**
     * A single-threaded instance lent the idle threads of a step ({@code Ops.lendHelpers}) splits
     * its calls while a helper waits (the GEMM by row ranges, attention by heads), and whoever
     * takes the tasks, the results are the bits of one thread: the three GEMM products (the
     * backward ones adding to nonzero starts) and attention forward and backward.
     */
    @Test
    void lentHelpersGiveTheBitsOfOneThread() throws Exception {
        HelperThreads helpers = new HelperThreads();
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newSingleThreadExecutor();
        java.util.concurrent.Future<?> helper = pool.submit(() -> helpers.help(done::get));
        try {
            FastOps one = new FastOps(), lent = new FastOps();
            lent.lendHelpers(helpers);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (helpers.idle() < 1) {
                assertTrue(System.nanoTime() < deadline, "the helper did not start");
                Thread.sleep(1);
            }
            assertEquals(2, lent.threads(), "the caller and the idle helper");
            Random rnd = new Random(47);
            int N = 256, IN = 300, OUT = 700;
            float[] w = gaussF(rnd, IN * OUT, 1), inp = gaussF(rnd, N * IN, 1), dout = gaussF(rnd, N * OUT, 1);
            float[] ref = new float[N * OUT], got = new float[N * OUT];
            one.matmulForward(ref, inp, w, 0, N, IN, OUT);
            lent.matmulForward(got, inp, w, 0, N, IN, OUT);
            assertArrayEquals(ref, got, "forward");
            float[] dRef = gaussF(rnd, N * IN, 1), dGot = dRef.clone();
            one.matmulBackwardInput(dRef, dout, w, 0, N, IN, OUT);
            lent.matmulBackwardInput(dGot, dout, w, 0, N, IN, OUT);
            assertArrayEquals(dRef, dGot, "input gradient");
            float[] dwRef = gaussF(rnd, IN * OUT, 1), dwGot = dwRef.clone();
            one.matmulBackwardWeight(dwRef, inp, dout, 0, N, IN, OUT);
            lent.matmulBackwardWeight(dwGot, inp, dout, 0, N, IN, OUT);
            assertArrayEquals(dwRef, dwGot, "weight gradient");
            int B = 2, T = 70, C = 40, H = 2;
            float[] q = gaussF(rnd, B * T * C, 1), k = gaussF(rnd, B * T * C, 1), v = gaussF(rnd, B * T * C, 1);
            float[] go = gaussF(rnd, B * T * C, 1);
            float[] oRef = new float[B * T * C], oGot = new float[B * T * C];
            float[] sRef = new float[one.attentionStateSize(B, T, H)], sGot = new float[lent.attentionStateSize(B, T, H)];
            one.attentionForward(oRef, sRef, q, k, v, B, T, C, H);
            lent.attentionForward(oGot, sGot, q, k, v, B, T, C, H);
            assertArrayEquals(oRef, oGot, "attention forward");
            float[][] gRef = {gaussF(rnd, B * T * C, 1), gaussF(rnd, B * T * C, 1), gaussF(rnd, B * T * C, 1)};
            float[][] gGot = {gRef[0].clone(), gRef[1].clone(), gRef[2].clone()};
            one.attentionBackward(gRef[0], gRef[1], gRef[2], go, sRef, q, k, v, oRef, B, T, C, H);
            lent.attentionBackward(gGot[0], gGot[1], gGot[2], go, sGot, q, k, v, oGot, B, T, C, H);
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(gRef[i], gGot[i], "attention backward, gradient " + "qkv".charAt(i));
            }
        } finally {
            done.set(true);
            helpers.wake();
            helper.get(10, java.util.concurrent.TimeUnit.SECONDS);
            pool.shutdownNow();
        }
    }

    /**
     * Two replicas sharing their packed weights ({@code Ops.shareHeldParameters}, as a training
     * step's replicas do) run at the same time on two threads: each call gives the bits of packing
     * per call, while the other replica packs or reads the same packs. After both release and the
     * weights change, the next hold packs the new weights.
     */
    @Test
    void replicasSharingPackedWeightsGetTheSameBits() throws Exception {
        Random rnd = new Random(43);
        int N = 37, IN = 700, OUT = 1030, off2 = IN * OUT + 3;
        float[] w = gaussF(rnd, 2 * IN * OUT + 3, 1);
        FastOps perCall = new FastOps(1), first = new FastOps(1), second = new FastOps(1);
        second.shareHeldParameters(first);
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        try {
            for (int round = 0; round < 3; round++) {
                if (round == 2) { // new weights between steps
                    for (int i = 0; i < w.length; i++) {
                        w[i] = -0.5f * w[i] + 0.25f;
                    }
                }
                float[] inp = gaussF(rnd, N * IN, 1), dout = gaussF(rnd, N * OUT, 1);
                float[][] ref = products(perCall, w, new int[]{0, off2}, inp, dout, N, IN, OUT);
                List<java.util.concurrent.Future<float[][]>> runs = new ArrayList<>();
                for (FastOps replica : new FastOps[]{first, second}) {
                    runs.add(pool.submit(() -> {
                        replica.holdParameters();
                        try {
                            return products(replica, w, new int[]{0, off2}, inp, dout, N, IN, OUT);
                        } finally {
                            replica.releaseParameters();
                        }
                    }));
                }
                for (int r = 0; r < 2; r++) {
                    float[][] got = runs.get(r).get(60, java.util.concurrent.TimeUnit.SECONDS);
                    for (int k = 0; k < 4; k++) {
                        assertArrayEquals(ref[k], got[k], "replica " + r + ", round " + round + ", product " + k);
                    }
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    /** The forward and the input gradient (overwritten) at each weight offset, in that order. */
    private static float[][] products(FastOps ops, float[] w, int[] offsets, float[] inp, float[] dout, int N, int IN, int OUT) {
        float[][] out = new float[2 * offsets.length][];
        for (int k = 0; k < offsets.length; k++) {
            out[2 * k] = new float[N * OUT];
            ops.matmulForward(out[2 * k], inp, w, offsets[k], N, IN, OUT);
            out[2 * k + 1] = new float[N * IN];
            ops.matmulBackwardInput(out[2 * k + 1], dout, w, offsets[k], N, IN, OUT);
        }
        return out;
    }

    /**
     * {@code FastGemm.addTransposedProduct} (mHC's {@code dphi^T += dh^T x}, on packed copies of
     * both operands) is, for every element, one FMA chain over each K block of
     * {@code FastGemm.KC} rows in order, starting from 0 and then added to C: the same bits as
     * that computation in scalar code. 600 rows span two or three K blocks, 300 = 25 x 12 rows
     * of the result more than one block of packed A (96 or 288 rows), 530 columns more than one
     * block of packed B (512 or 1024: 530 at AVX2's 16-column panels leaves a partial one), and
     * the strides and offsets are not multiples of anything.
     */
    @Test
    void transposedProductIsTheFmaChainOfEachBlock() {
        Random rnd = new Random(11);
        int rows = 600, m = 300, cols = 530, lda = m + 5, ldb = cols + 3, ldc = cols + 7;
        float[] a = gaussF(rnd, 3 + rows * lda, 1), b = gaussF(rnd, 2 + rows * ldb, 1), c = gaussF(rnd, 1 + m * ldc, 1);
        float[] want = c.clone();
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < cols; j++) {
                for (int k0 = 0; k0 < rows; k0 += FastGemm.KC) {
                    float s = 0f;
                    for (int k = k0; k < Math.min(rows, k0 + FastGemm.KC); k++) {
                        s = Math.fma(a[3 + k * lda + i], b[2 + k * ldb + j], s);
                    }
                    want[1 + i * ldc + j] += s;
                }
            }
        }
        FastGemm.addTransposedProduct(rows, m, cols, a, 3, lda, b, 2, ldb, c, 1, ldc);
        assertArrayEquals(want, c);
    }

    // ------------------------------------------------------------------ attention

    record Att(int B, int T, int C, int H) {
        @Override
        public String toString() {
            return "B=" + B + ",T=" + T + ",C=" + C + ",H=" + H + " (D=" + C / H + ")";
        }
    }

    static Stream<Att> attentionShapes() {
        return Stream.of(
                new Att(1, 1, 4, 1), new Att(2, 7, 12, 3), new Att(1, 33, 20, 5), new Att(2, 65, 24, 2),
                new Att(1, 130, 64, 2), new Att(1, 129, 36, 1), new Att(2, 64, 256, 4), new Att(1, 200, 96, 3),
                // past one key block of 256: the online softmax rescales
                new Att(1, 300, 32, 2), new Att(2, 520, 16, 1));
    }

    @ParameterizedTest
    @MethodSource("attentionShapes")
    void attentionMatchesPlain(Att s) {
        int B = s.B, T = s.T, C = s.C, H = s.H, N = B * T;
        Random rnd = new Random(31L * T + C);
        float[] q = gaussF(rnd, N * C, 1), k = gaussF(rnd, N * C, 1), v = gaussF(rnd, N * C, 1);
        for (int i = 0; i < q.length; i += 17) {
            q[i] *= 6; // some peaked rows
        }
        float[] dout = gaussF(rnd, N * C, 1);
        Ops plain = new Ops();
        FastOps fast = new FastOps();
        assertEquals(B * H * T, fast.attentionStateSize(B, T, H));

        float[] ref = nan(N * C), got = nan(N * C);
        float[] att = nan(plain.attentionStateSize(B, T, H)), lse = nan(fast.attentionStateSize(B, T, H));
        plain.attentionForward(ref, att, q, k, v, B, T, C, H);
        fast.attentionForward(got, lse, q, k, v, B, T, C, H);
        close("attentionForward " + s, ref, got);

        float[] dq0 = gaussF(rnd, N * C, 1), dk0 = gaussF(rnd, N * C, 1), dv0 = gaussF(rnd, N * C, 1);
        float[] dqR = dq0.clone(), dkR = dk0.clone(), dvR = dv0.clone();
        float[] dqG = dq0.clone(), dkG = dk0.clone(), dvG = dv0.clone();
        plain.attentionBackward(dqR, dkR, dvR, dout, att, q, k, v, ref, B, T, C, H);
        fast.attentionBackward(dqG, dkG, dvG, dout, lse, q, k, v, got, B, T, C, H);
        close("attentionBackward dq " + s, dqR, dqG);
        close("attentionBackward dk " + s, dkR, dkG);
        close("attentionBackward dv " + s, dvR, dvG);
    }

    @Test
    void attentionIsIndependentOfThreadCount() {
        int B = 3, T = 77, C = 48, H = 3, N = B * T;
        Random rnd = new Random(3);
        float[] q = gaussF(rnd, N * C, 1), k = gaussF(rnd, N * C, 1), v = gaussF(rnd, N * C, 1), dout = gaussF(rnd, N * C, 1);
        float[][] r = new float[2][];
        for (int threads = 1; threads <= 2; threads++) {
            FastOps fast = new FastOps(threads);
            float[] out = new float[N * C], lse = new float[B * H * T];
            float[] dq = new float[N * C], dk = new float[N * C], dv = new float[N * C];
            fast.attentionForward(out, lse, q, k, v, B, T, C, H);
            fast.attentionBackward(dq, dk, dv, dout, lse, q, k, v, out, B, T, C, H);
            r[threads - 1] = concat(out, lse, dq, dk, dv);
        }
        assertArrayEquals(r[0], r[1]);
    }

    // ------------------------------------------------------------------ element- and row-wise

    static Stream<int[]> rowShapes() {
        List<int[]> s = new ArrayList<>();
        for (int n : new int[]{1, 7, 33}) {
            for (int c : ODD) {
                s.add(new int[]{n, c});
            }
        }
        s.add(new int[]{256, 256});
        return s.stream();
    }

    @ParameterizedTest
    @MethodSource("rowShapes")
    void swigluMatchesPlain(int[] shape) {
        int N = shape[0], F = shape[1];
        Random rnd = new Random(N * 131L + F);
        float[] h1 = gaussF(rnd, N * F, 3), h3 = gaussF(rnd, N * F, 1), dout = gaussF(rnd, N * F, 1);
        if (h1.length > 2) {
            h1[0] = 95f;   // exp(-z) underflows: sigmoid 1
            h1[1] = -95f;  // exp(-z) past float range: sigmoid 0
        }
        Ops plain = new Ops();
        FastOps fast = new FastOps();
        float[] ref = nan(N * F), got = nan(N * F);
        plain.swigluForward(ref, h1, h3, N, F);
        fast.swigluForward(got, h1, h3, N, F);
        close("swigluForward " + N + "x" + F, ref, got);
        float[] d1 = gaussF(rnd, N * F, 1), d3 = gaussF(rnd, N * F, 1);
        float[] d1R = d1.clone(), d3R = d3.clone(), d1G = d1.clone(), d3G = d3.clone();
        plain.swigluBackward(d1R, d3R, dout, h1, h3, N, F);
        fast.swigluBackward(d1G, d3G, dout, h1, h3, N, F);
        close("swigluBackward dh1 " + N + "x" + F, d1R, d1G);
        close("swigluBackward dh3 " + N + "x" + F, d3R, d3G);
    }

    /** RoPE on the fast path uses the plain kernel's very operations: bit-identical, forward and backward. */
    @ParameterizedTest
    @MethodSource("ropeShapes")
    void ropeIsBitIdenticalToPlain(int[] shape) {
        int N = shape[0], T = shape[1], C = shape[2], H = shape[3];
        Random rnd = new Random(N * 31L + T * 7L + C + H);
        int half = C / H / 2;
        float[] cos = new float[T * half], sin = new float[T * half];
        mhc.kernels.Rope.ropeTables(cos, sin, T, C / H);
        float[] x = gaussF(rnd, N * C, 1), dout = gaussF(rnd, N * C, 1), d0 = gaussF(rnd, N * C, 1);
        float[] ref = nan(N * C), got = nan(N * C);
        new Ops().ropeForward(ref, x, cos, sin, N, T, C, H);
        new FastOps().ropeForward(got, x, cos, sin, N, T, C, H);
        assertArrayEquals(ref, got, "ropeForward " + Arrays.toString(shape));
        float[] dR = d0.clone(), dG = d0.clone();
        new Ops().ropeBackward(dR, dout, cos, sin, N, T, C, H);
        new FastOps().ropeBackward(dG, dout, cos, sin, N, T, C, H);
        assertArrayEquals(dR, dG, "ropeBackward " + Arrays.toString(shape));
    }

    /**
     * The embedding into the streams, the collapse out of them and the aggregate (as the residual
     * connection calls it) use the plain kernels' operations in their order: bit-identical, forward and backward (N, n, C with C shorter
     * than, a multiple of and longer than a vector; tokens repeat, so embedding rows gather
     * several positions' gradients).
     */
    @ParameterizedTest
    @MethodSource("streamEndShapes")
    void streamsInAndOutAreBitIdenticalToPlain(int[] shape) {
        int N = shape[0], n = shape[1], C = shape[2], V = 7;
        Random rnd = new Random(N * 131L + n * 17L + C);
        int[] tokens = new int[N];
        for (int r = 0; r < N; r++) {
            tokens[r] = rnd.nextInt(V);
        }
        float[] embed = gaussF(rnd, V * C, 1), dx = gaussF(rnd, N * n * C, 1), du = gaussF(rnd, N * C, 1),
                dembed0 = gaussF(rnd, V * C, 1), dx0 = gaussF(rnd, N * n * C, 1);
        String t = " " + Arrays.toString(shape);
        float[] xR = nan(N * n * C), xG = nan(N * n * C);
        new Ops().embeddingForward(xR, tokens, embed, N, n, C);
        new FastOps().embeddingForward(xG, tokens, embed, N, n, C);
        assertArrayEquals(xR, xG, "embeddingForward" + t);
        float[] deR = dembed0.clone(), deG = dembed0.clone();
        new Ops().embeddingBackward(deR, dx, tokens, N, n, C);
        new FastOps().embeddingBackward(deG, dx, tokens, N, n, C);
        assertArrayEquals(deR, deG, "embeddingBackward" + t);
        float[] uR = nan(N * C), uG = nan(N * C);
        new Ops().collapseForward(uR, dx, N, n, C);
        new FastOps().collapseForward(uG, dx, N, n, C);
        assertArrayEquals(uR, uG, "collapseForward" + t);
        float[] dR = dx0.clone(), dG = dx0.clone();
        new Ops().collapseBackward(dR, du, N, n, C);
        new FastOps().collapseBackward(dG, du, N, n, C);
        assertArrayEquals(dR, dG, "collapseBackward" + t);
        float[] hpre = gaussF(rnd, N * n, 1);
        float[] aR = nan(N * C), aG = nan(N * C);
        new Ops().aggregateForward(aR, dx, hpre, N, n, C);
        new FastOps().aggregateForward(aG, dx, hpre, N, n, C);
        assertArrayEquals(aR, aG, "aggregateForward" + t);
        float[] gR = dx0.clone(), gG = dx0.clone();
        new Ops().aggregateBackwardStreams(gR, du, hpre, N, n, C);
        new FastOps().aggregateBackwardStreams(gG, du, hpre, N, n, C);
        assertArrayEquals(gR, gG, "aggregateBackwardStreams" + t);
    }

    /** The mHC coefficient parameters' gradient sums in the plain kernel's order: bit-identical. */
    @ParameterizedTest
    @MethodSource("streamEndShapes")
    void mhcCoeffParamBackwardIsBitIdenticalToPlain(int[] shape) {
        int N = shape[0], n = shape[1], M = n * n + 2 * n;
        Random rnd = new Random(N * 7L + n);
        float[] workDz = gaussF(rnd, N * M, 1), h = gaussF(rnd, N * M, 1), rms = gaussF(rnd, N, 1);
        for (int r = 0; r < N; r++) {
            rms[r] = 0.5f + Math.abs(rms[r]);
        }
        float[] a0 = gaussF(rnd, 3, 1), b0 = gaussF(rnd, M, 1);
        float[] aR = a0.clone(), bR = b0.clone(), aG = a0.clone(), bG = b0.clone();
        new Ops().mhcCoeffParamBackward(aR, bR, workDz, h, rms, N, n);
        new FastOps().mhcCoeffParamBackward(aG, bG, workDz, h, rms, N, n);
        assertArrayEquals(aR, aG, "dalpha " + Arrays.toString(shape));
        assertArrayEquals(bR, bG, "dbias " + Arrays.toString(shape));
    }

    static Stream<int[]> streamEndShapes() {
        return Stream.of(new int[]{1, 1, 5}, new int[]{9, 4, 32}, new int[]{20, 3, 37}, new int[]{13, 4, 130});
    }

    /** (N, T, C, H): head halves shorter than, equal to and longer than a vector, with a tail. */
    static Stream<int[]> ropeShapes() {
        return Stream.of(new int[]{7, 7, 12, 2}, new int[]{33, 11, 128, 2}, new int[]{40, 20, 136, 2},
                new int[]{64, 32, 256, 4});
    }

    @ParameterizedTest
    @MethodSource("rowShapes")
    void rmsnormMatchesPlain(int[] shape) {
        int N = shape[0], C = shape[1];
        Random rnd = new Random(N * 7919L + C);
        float[] x = gaussF(rnd, N * C, 2), w = uniformF(rnd, C, 0.5, 1.5), dout = gaussF(rnd, N * C, 1);
        Ops plain = new Ops();
        FastOps fast = new FastOps();
        for (boolean ones : new boolean[]{false, true}) { // HC's unweighted norm passes all-ones weights
            float[] wt = ones ? filled(C, 1f) : w;
            String tag = (ones ? " (ones) " : " ") + N + "x" + C;
            float[] ref = nan(N * C), got = nan(N * C), rsR = nan(N), rsG = nan(N);
            plain.rmsnormForward(ref, rsR, x, wt, N, C);
            fast.rmsnormForward(got, rsG, x, wt, N, C);
            close("rmsnormForward out" + tag, ref, got);
            close("rmsnormForward rstd" + tag, rsR, rsG);
            float[] dx0 = gaussF(rnd, N * C, 1);
            float[] dxR = dx0.clone(), dxG = dx0.clone();
            plain.rmsnormBackward(dxR, dout, x, wt, rsR, N, C);
            fast.rmsnormBackward(dxG, dout, x, wt, rsR, N, C);
            close("rmsnormBackward" + tag, dxR, dxG);
            float[] dw0 = gaussF(rnd, C, 1);
            float[] dwR = dw0.clone(), dwG = dw0.clone();
            plain.rmsnormWeightBackward(dwR, dout, x, rsR, N, C);
            fast.rmsnormWeightBackward(dwG, dout, x, rsR, N, C);
            close("rmsnormWeightBackward" + tag, dwR, dwG);
        }
    }

    @ParameterizedTest
    @MethodSource("rowShapes")
    void crossEntropyMatchesPlain(int[] shape) {
        int N = shape[0], V = shape[1];
        Random rnd = new Random(N * 104729L + V);
        float[] logits = gaussF(rnd, N * V, 3);
        for (int r = 0; r < N; r += 2) {
            for (int v = 0; v < V; v++) {
                logits[r * V + v] += 80f; // large offsets: only right with the max subtracted
            }
        }
        int[] targets = new int[N];
        for (int r = 0; r < N; r++) {
            targets[r] = rnd.nextInt(V);
        }
        Ops plain = new Ops();
        FastOps fast = new FastOps();
        float[] lossR = nan(N), lossG = nan(N), pR = nan(N * V), pG = nan(N * V);
        plain.crossEntropyForward(lossR, pR, logits, targets, N, V);
        fast.crossEntropyForward(lossG, pG, logits, targets, N, V);
        close("crossEntropyForward losses " + N + "x" + V, lossR, lossG);
        close("crossEntropyForward probs " + N + "x" + V, pR, pG);
        float[] d0 = gaussF(rnd, N * V, 1e-3);
        float[] dR = d0.clone(), dG = d0.clone();
        plain.crossEntropyBackward(dR, pR, targets, 1f / (N * 3), N, V);
        fast.crossEntropyBackward(dG, pR, targets, 1f / (N * 3), N, V);
        close("crossEntropyBackward " + N + "x" + V, dR, dG);
    }

    /**
     * The fast AdamW uses the plain kernel's operations in its order: the same bits, also where
     * a tensor is large enough to be split over threads (three ranges, the last with a tail).
     */
    @Test
    void adamwIsBitIdenticalToPlain() {
        FastOps three = new FastOps(3);
        try {
            for (int size : new int[]{1, 7, 33, 65, 130, 1000, 3 * (1 << 16) + 5}) {
                for (FastOps fast : List.of(new FastOps(), three)) {
                    Random rnd = new Random(size);
                    float[] p = gaussF(rnd, size, 1), g = gaussF(rnd, size, 1), m = gaussF(rnd, size, 0.1);
                    float[] v = uniformF(rnd, size, 0, 0.01);
                    float[] pR = p.clone(), mR = m.clone(), vR = v.clone(), pG = p.clone(), mG = m.clone(), vG = v.clone();
                    for (int step = 1; step <= 3; step++) {
                        float bc1 = (float) (1 - Math.pow(0.9, step)), bc2 = (float) (1 - Math.pow(0.95, step));
                        new Ops().adamwUpdate(pR, g, mR, vR, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.7f, bc1, bc2, size);
                        fast.adamwUpdate(pG, g, mG, vG, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.7f, bc1, bc2, size);
                    }
                    String where = "size " + size + ", " + fast.threads() + " threads";
                    assertArrayEquals(pR, pG, "param, " + where);
                    assertArrayEquals(mR, mG, "m, " + where);
                    assertArrayEquals(vR, vG, "v, " + where);
                }
            }
        } finally {
            three.close();
        }
    }

    /**
     * The scheduled AdamW (learning rate, bias corrections and clip scale read from an array, as
     * on a device) gives the same bits as the plain kernel with the same values as scalars, and
     * changes nothing where the array says not to apply the step.
     */
    @Test
    void scheduledAdamwIsBitIdenticalToPlain() {
        for (int size : new int[]{1, 33, 1000}) {
            Random rnd = new Random(size);
            float[] p = gaussF(rnd, size, 1), g = gaussF(rnd, size, 1), m = gaussF(rnd, size, 0.1);
            float[] v = uniformF(rnd, size, 0, 0.01);
            float[] pR = p.clone(), mR = m.clone(), vR = v.clone(), pS = p.clone(), mS = m.clone(), vS = v.clone();
            float[] hp = new float[mhc.kernels.AdamW.HP_SIZE];
            for (int step = 1; step <= 3; step++) {
                float lr = 3e-4f * step, bc1 = (float) (1 - Math.pow(0.9, step)), bc2 = (float) (1 - Math.pow(0.95, step));
                mhc.kernels.AdamW.adamwUpdate(pR, g, mR, vR, lr, 0.9f, 0.95f, 1e-8f, 0.1f, 0.7f, bc1, bc2, size);
                hp[mhc.kernels.AdamW.HP_LR] = lr;
                hp[mhc.kernels.AdamW.HP_BC1] = bc1;
                hp[mhc.kernels.AdamW.HP_BC2] = bc2;
                hp[mhc.kernels.AdamW.HP_SCALE] = 0.7f;
                hp[mhc.kernels.AdamW.HP_APPLY] = 1f;
                mhc.kernels.AdamW.adamwUpdateScheduled(pS, g, mS, vS, hp, 0.9f, 0.95f, 1e-8f, 0.1f, size);
            }
            assertArrayEquals(pR, pS, "param, size " + size);
            assertArrayEquals(mR, mS, "m, size " + size);
            assertArrayEquals(vR, vS, "v, size " + size);
            hp[mhc.kernels.AdamW.HP_APPLY] = 0f;
            mhc.kernels.AdamW.adamwUpdateScheduled(pS, g, mS, vS, hp, 0.9f, 0.95f, 1e-8f, 0.1f, size);
            assertArrayEquals(pR, pS, "not applied: param unchanged, size " + size);
            assertArrayEquals(mR, mS, "not applied: m unchanged, size " + size);
        }
    }

    /** Vector lanes and scalar tails run the same formula: equal inputs give equal bits anywhere. */
    @Test
    void valueDoesNotDependOnPosition() {
        int F = 37; // two vectors of 16 and a tail of 5 (AVX-512), or four of 8 and 5 (AVX2)
        float[] h1 = new float[F], h3 = filled(F, 1.25f), out = new float[F];
        for (float z : new float[]{-20.3f, -3.1f, -0.7f, 0f, 0.4f, 2.9f, 17.7f}) {
            Arrays.fill(h1, z);
            new FastOps().swigluForward(out, h1, h3, 1, F);
            for (int i = 1; i < F; i++) {
                assertEquals(Float.floatToIntBits(out[0]), Float.floatToIntBits(out[i]), "z=" + z + " at " + i);
            }
        }
        float[] logits = new float[F];
        Arrays.fill(logits, 0.3f);
        float[] probs = new float[F], loss = new float[1];
        new FastOps().crossEntropyForward(loss, probs, logits, new int[]{0}, 1, F);
        for (int i = 1; i < F; i++) {
            assertEquals(probs[0], probs[i], 0f, "probs at " + i);
        }
        assertTrue(Math.abs(loss[0] - Math.log(F)) < 1e-6, "uniform loss " + loss[0]);
    }

    static float[] filled(int n, float v) {
        float[] a = new float[n];
        Arrays.fill(a, v);
        return a;
    }

    static float[] concat(float[]... parts) {
        int n = 0;
        for (float[] p : parts) {
            n += p.length;
        }
        float[] all = new float[n];
        int o = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, all, o, p.length);
            o += p.length;
        }
        return all;
    }
}
