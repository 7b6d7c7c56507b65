package mhc.tests;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;

import static mhc.tests.KernelHarness.gaussF;
import static mhc.tests.KernelHarness.maxAbs;
import static mhc.tests.KernelHarness.uniformF;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Every float kernel of {@code mhc.kernels} against its double twin {@code mhc.kernels.f64} (the
 * same source, float replaced by double) on the same float-representable inputs, forward and
 * backward, on several odd shapes.
 *
 * <p>Tolerance: {@code |float - double| <= 1e-5 * max|double output| + 1e-4 |double|} per
 * output tensor. Float has a unit roundoff of 6e-8; the kernels sum at most a few tens of terms
 * of order one (dot products over C or F, softmax and Sinkhorn sums, 40 Sinkhorn steps), so the
 * rounding error of a right kernel is a few 1e-7 of the output's scale, and 1e-5 of the scale
 * leaves a wide margin (measured: the largest error of all checks here is under 1% of its
 * tolerance; the class prints it). The relative term covers entries far above the typical one. What this
 * catches is a float formulation that loses precision (for example a softmax or Sinkhorn without
 * the max subtraction overflows on the offset logits below, which double survives), or an output
 * a forward leaves unwritten: outputs start as NaN, gradients as random values that a backward
 * must add to. Scratch buffers start as NaN too.
 */
class KernelPrecisionTest {
    static final double ATOL_OF_SCALE = 1e-5;
    static final double RTOL = 1e-4;

    /** B*T = N tokens; D = C/H even for rope; n streams; F hidden; E experts, K active; V vocabulary. */
    record Shape(int B, int T, int C, int H, int n, int F, int E, int K, int V) {
        int N() {
            return B * T;
        }

        @Override
        public String toString() {
            return "B=" + B + ",T=" + T + " (N=" + N() + "),C=" + C + ",H=" + H + ",n=" + n + ",F=" + F + ",E=" + E
                    + ",K=" + K + ",V=" + V;
        }

        long seed() {
            return 31L * B + 17L * T + 7L * C + n;
        }
    }

    static Stream<Shape> shapes() {
        return Stream.of(
                new Shape(1, 7, 12, 3, 3, 5, 5, 2, 11),
                new Shape(2, 5, 20, 5, 3, 7, 5, 2, 13),
                new Shape(3, 3, 12, 2, 4, 9, 7, 3, 9));
    }

    // ---- helpers -------------------------------------------------------------------------

    static double[] d(float[] a) {
        return Check.toDouble(a);
    }

    static float[] nanF(int size) {
        float[] a = new float[size];
        Arrays.fill(a, Float.NaN);
        return a;
    }

    static double[] nanD(int size) {
        double[] a = new double[size];
        Arrays.fill(a, Double.NaN);
        return a;
    }

    /** The float result against the double one: atol 1e-5 of the double output's scale, rtol 1e-4. */
    static void same(String kernel, Shape s, double[] ref, float[] got) {
        double atol = ATOL_OF_SCALE * maxAbs(ref);
        Check.close(kernel + " [" + s + "]: float vs double twin", ref, d(got), atol, RTOL);
        double err = 0;
        for (int i = 0; i < ref.length; i++) {
            err = Math.max(err, Math.abs(got[i] - ref[i]) / (atol + RTOL * Math.abs(ref[i])));
        }
        synchronized (KernelPrecisionTest.class) {
            if (err > worstFraction) {
                worstFraction = err;
                worstWhere = kernel + " [" + s + "]";
            }
        }
    }

    /** The largest error seen, as a fraction of its tolerance (printed after the class: the margin). */
    private static double worstFraction;
    private static String worstWhere = "none";

    @AfterAll
    static void printMargin() {
        System.out.printf(Locale.ROOT, "KernelPrecisionTest: largest float-vs-double error = %.3f of its tolerance, at %s%n",
                worstFraction, worstWhere);
    }

    // ---- kernels -------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void matmul(Shape s) {
        Random rnd = new Random(s.seed());
        int N = s.N(), IN = s.C(), OUT = s.F(), wOff = IN * OUT;
        float[] inp = gaussF(rnd, N * IN, 1);
        float[] w = gaussF(rnd, 3 * IN * OUT, 1);
        float[] dout = gaussF(rnd, N * OUT, 1);
        float[] out = nanF(N * OUT);
        double[] outD = nanD(N * OUT);
        mhc.kernels.Matmul.matmulForward(out, inp, w, wOff, N, IN, OUT);
        mhc.kernels.f64.Matmul.matmulForward(outD, d(inp), d(w), wOff, N, IN, OUT);
        same("matmulForward", s, outD, out);
        float[] dinp = gaussF(rnd, N * IN, 1);
        double[] dinpD = d(dinp);
        mhc.kernels.Matmul.matmulBackwardInput(dinp, dout, w, wOff, N, IN, OUT);
        mhc.kernels.f64.Matmul.matmulBackwardInput(dinpD, d(dout), d(w), wOff, N, IN, OUT);
        same("matmulBackwardInput", s, dinpD, dinp);
        float[] dw = gaussF(rnd, w.length, 1);
        double[] dwD = d(dw);
        mhc.kernels.Matmul.matmulBackwardWeight(dw, inp, dout, wOff, N, IN, OUT);
        mhc.kernels.f64.Matmul.matmulBackwardWeight(dwD, d(inp), d(dout), wOff, N, IN, OUT);
        same("matmulBackwardWeight", s, dwD, dw);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void rmsnorm(Shape s) {
        Random rnd = new Random(s.seed());
        int N = s.N(), C = s.C();
        float[] x = gaussF(rnd, N * C, 1);
        float[] w = uniformF(rnd, C, 0.5, 1.5);
        float[] dout = gaussF(rnd, N * C, 1);
        float[] out = nanF(N * C);
        float[] rstd = nanF(N);
        double[] outD = nanD(N * C);
        double[] rstdD = nanD(N);
        mhc.kernels.RmsNorm.rmsnormForward(out, rstd, x, w, N, C);
        mhc.kernels.f64.RmsNorm.rmsnormForward(outD, rstdD, d(x), d(w), N, C);
        same("rmsnormForward out", s, outD, out);
        same("rmsnormForward rstd", s, rstdD, rstd);
        float[] dx = gaussF(rnd, N * C, 1);
        double[] dxD = d(dx);
        mhc.kernels.RmsNorm.rmsnormBackward(dx, dout, x, w, rstd, N, C);
        mhc.kernels.f64.RmsNorm.rmsnormBackward(dxD, d(dout), d(x), d(w), rstdD, N, C);
        same("rmsnormBackward", s, dxD, dx);
        float[] dw = gaussF(rnd, C, 1);
        double[] dwD = d(dw);
        mhc.kernels.RmsNorm.rmsnormWeightBackward(dw, dout, x, rstd, N, C);
        mhc.kernels.f64.RmsNorm.rmsnormWeightBackward(dwD, d(dout), d(x), rstdD, N, C);
        same("rmsnormWeightBackward", s, dwD, dw);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void rope(Shape s) {
        Random rnd = new Random(s.seed());
        int N = s.N(), T = s.T(), C = s.C(), H = s.H();
        float[] inp = gaussF(rnd, N * C, 1);
        float[] dout = gaussF(rnd, N * C, 1);
        float[] out = nanF(N * C);
        double[] outD = nanD(N * C);
        float[] cos = new float[T * (C / H / 2)], sin = new float[T * (C / H / 2)];
        mhc.kernels.Rope.ropeTables(cos, sin, T, C / H);
        mhc.kernels.Rope.ropeForward(out, inp, cos, sin, N, T, C, H);
        mhc.kernels.f64.Rope.ropeForward(outD, d(inp), d(cos), d(sin), N, T, C, H);
        same("ropeForward", s, outD, out);
        float[] dinp = gaussF(rnd, N * C, 1);
        double[] dinpD = d(dinp);
        mhc.kernels.Rope.ropeBackward(dinp, dout, cos, sin, N, T, C, H);
        mhc.kernels.f64.Rope.ropeBackward(dinpD, d(dout), d(cos), d(sin), N, T, C, H);
        same("ropeBackward", s, dinpD, dinp);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void attention(Shape s) {
        Random rnd = new Random(s.seed());
        int B = s.B(), T = s.T(), C = s.C(), H = s.H(), N = s.N();
        float[] q = gaussF(rnd, N * C, 1);
        float[] k = gaussF(rnd, N * C, 1);
        float[] v = gaussF(rnd, N * C, 1);
        float[] dout = gaussF(rnd, N * C, 1);
        int A = B * H * T * T;
        float[] out = nanF(N * C);
        float[] att = nanF(A);
        double[] outD = nanD(N * C);
        double[] attD = nanD(A);
        mhc.kernels.Attention.attentionForward(out, att, q, k, v, B, T, C, H);
        mhc.kernels.f64.Attention.attentionForward(outD, attD, d(q), d(k), d(v), B, T, C, H);
        same("attentionForward out", s, outD, out);
        same("attentionForward att", s, attD, att);
        float[] work = nanF(A);
        double[] workD = nanD(A);
        mhc.kernels.Attention.attentionBackwardScores(work, dout, att, v, B, T, C, H);
        mhc.kernels.f64.Attention.attentionBackwardScores(workD, d(dout), attD, d(v), B, T, C, H);
        same("attentionBackwardScores", s, workD, work);
        float[] dq = gaussF(rnd, N * C, 1);
        double[] dqD = d(dq);
        mhc.kernels.Attention.attentionBackwardQuery(dq, work, k, B, T, C, H);
        mhc.kernels.f64.Attention.attentionBackwardQuery(dqD, workD, d(k), B, T, C, H);
        same("attentionBackwardQuery", s, dqD, dq);
        float[] dk = gaussF(rnd, N * C, 1);
        float[] dv = gaussF(rnd, N * C, 1);
        double[] dkD = d(dk);
        double[] dvD = d(dv);
        mhc.kernels.Attention.attentionBackwardKeyValue(dk, dv, work, att, q, dout, B, T, C, H);
        mhc.kernels.f64.Attention.attentionBackwardKeyValue(dkD, dvD, workD, attD, d(q), d(dout), B, T, C, H);
        same("attentionBackwardKeyValue dk", s, dkD, dk);
        same("attentionBackwardKeyValue dv", s, dvD, dv);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void swiglu(Shape s) {
        Random rnd = new Random(s.seed());
        int N = s.N(), F = s.F();
        float[] h1 = gaussF(rnd, N * F, 3);
        float[] h3 = gaussF(rnd, N * F, 1);
        float[] dout = gaussF(rnd, N * F, 1);
        float[] out = nanF(N * F);
        double[] outD = nanD(N * F);
        mhc.kernels.SwiGlu.swigluForward(out, h1, h3, N, F);
        mhc.kernels.f64.SwiGlu.swigluForward(outD, d(h1), d(h3), N, F);
        same("swigluForward", s, outD, out);
        float[] dh1 = gaussF(rnd, N * F, 1);
        float[] dh3 = gaussF(rnd, N * F, 1);
        double[] dh1D = d(dh1);
        double[] dh3D = d(dh3);
        mhc.kernels.SwiGlu.swigluBackward(dh1, dh3, dout, h1, h3, N, F);
        mhc.kernels.f64.SwiGlu.swigluBackward(dh1D, dh3D, d(dout), d(h1), d(h3), N, F);
        same("swigluBackward dh1", s, dh1D, dh1);
        same("swigluBackward dh3", s, dh3D, dh3);
    }

    /** Logits of scale 3; row 0 is offset by +100 (exp(100) overflows float: the max subtraction must hold). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void crossEntropy(Shape s) {
        Random rnd = new Random(s.seed());
        int N = s.N(), V = s.V();
        float[] logits = gaussF(rnd, N * V, 3);
        for (int v = 0; v < V; v++) {
            logits[v] += 100f;
        }
        int[] targets = new int[N];
        for (int r = 0; r < N; r++) {
            targets[r] = rnd.nextInt(V);
        }
        float[] losses = nanF(N);
        float[] probs = nanF(N * V);
        double[] lossesD = nanD(N);
        double[] probsD = nanD(N * V);
        mhc.kernels.CrossEntropy.crossEntropyForward(losses, probs, logits, targets, N, V);
        mhc.kernels.f64.CrossEntropy.crossEntropyForward(lossesD, probsD, d(logits), targets, N, V);
        same("crossEntropyForward losses", s, lossesD, losses);
        same("crossEntropyForward probs", s, probsD, probs);
        float[] dlogits = gaussF(rnd, N * V, 1);
        double[] dlogitsD = d(dlogits);
        mhc.kernels.CrossEntropy.crossEntropyBackward(dlogits, probs, targets, 1f / N, N, V);
        mhc.kernels.f64.CrossEntropy.crossEntropyBackward(dlogitsD, probsD, targets, 1.0 / N, N, V);
        same("crossEntropyBackward", s, dlogitsD, dlogits);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void embedding(Shape s) {
        Random rnd = new Random(s.seed());
        int N = s.N(), n = s.n(), C = s.C(), V = s.V();
        int[] tokens = new int[N];
        for (int r = 0; r < N; r++) {
            tokens[r] = rnd.nextInt(3); // few distinct tokens: many repeats
        }
        float[] embed = gaussF(rnd, V * C, 1);
        float[] dx = gaussF(rnd, N * n * C, 1);
        float[] x = nanF(N * n * C);
        double[] xD = nanD(N * n * C);
        mhc.kernels.Embedding.embeddingForward(x, tokens, embed, N, n, C);
        mhc.kernels.f64.Embedding.embeddingForward(xD, tokens, d(embed), N, n, C);
        same("embeddingForward", s, xD, x);
        float[] dembed = gaussF(rnd, V * C, 1);
        double[] dembedD = d(dembed);
        mhc.kernels.Embedding.embeddingBackward(dembed, dx, tokens, N, n, C);
        mhc.kernels.f64.Embedding.embeddingBackward(dembedD, d(dx), tokens, N, n, C);
        same("embeddingBackward", s, dembedD, dembed);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void streams(Shape s) {
        Random rnd = new Random(s.seed());
        int N = s.N(), n = s.n(), C = s.C();
        float[] x = gaussF(rnd, N * n * C, 1);
        float[] hpre = uniformF(rnd, N * n, 0, 1);
        float[] hpost = uniformF(rnd, N * n, 0, 2);
        float[] hres = uniformF(rnd, N * n * n, 0, 1);
        float[] y = gaussF(rnd, N * C, 1);
        float[] du = gaussF(rnd, N * C, 1);
        float[] dxout = gaussF(rnd, N * n * C, 1);

        float[] u = nanF(N * C);
        double[] uD = nanD(N * C);
        mhc.kernels.Streams.aggregateForward(u, x, hpre, N, n, C);
        mhc.kernels.f64.Streams.aggregateForward(uD, d(x), d(hpre), N, n, C);
        same("aggregateForward", s, uD, u);
        float[] dx = gaussF(rnd, N * n * C, 1);
        double[] dxD = d(dx);
        mhc.kernels.Streams.aggregateBackwardStreams(dx, du, hpre, N, n, C);
        mhc.kernels.f64.Streams.aggregateBackwardStreams(dxD, d(du), d(hpre), N, n, C);
        same("aggregateBackwardStreams", s, dxD, dx);
        float[] dhpre = gaussF(rnd, N * n, 1);
        double[] dhpreD = d(dhpre);
        mhc.kernels.Streams.aggregateBackwardCoeffs(dhpre, du, x, N, n, C);
        mhc.kernels.f64.Streams.aggregateBackwardCoeffs(dhpreD, d(du), d(x), N, n, C);
        same("aggregateBackwardCoeffs", s, dhpreD, dhpre);

        float[] xout = nanF(N * n * C);
        double[] xoutD = nanD(N * n * C);
        mhc.kernels.Streams.mixForward(xout, x, hres, hpost, y, N, n, C);
        mhc.kernels.f64.Streams.mixForward(xoutD, d(x), d(hres), d(hpost), d(y), N, n, C);
        same("mixForward", s, xoutD, xout);
        float[] dx2 = gaussF(rnd, N * n * C, 1);
        float[] dy = gaussF(rnd, N * C, 1);
        double[] dx2D = d(dx2);
        double[] dyD = d(dy);
        mhc.kernels.Streams.mixBackwardStreams(dx2, dy, dxout, hres, hpost, N, n, C);
        mhc.kernels.f64.Streams.mixBackwardStreams(dx2D, dyD, d(dxout), d(hres), d(hpost), N, n, C);
        same("mixBackwardStreams dx", s, dx2D, dx2);
        same("mixBackwardStreams dy", s, dyD, dy);
        float[] dhres = gaussF(rnd, N * n * n, 1);
        float[] dhpost = gaussF(rnd, N * n, 1);
        double[] dhresD = d(dhres);
        double[] dhpostD = d(dhpost);
        mhc.kernels.Streams.mixBackwardCoeffs(dhres, dhpost, dxout, x, y, N, n, C);
        mhc.kernels.f64.Streams.mixBackwardCoeffs(dhresD, dhpostD, d(dxout), d(x), d(y), N, n, C);
        same("mixBackwardCoeffs dhres", s, dhresD, dhres);
        same("mixBackwardCoeffs dhpost", s, dhpostD, dhpost);

        float[] uc = nanF(N * C);
        double[] ucD = nanD(N * C);
        mhc.kernels.Streams.collapseForward(uc, x, N, n, C);
        mhc.kernels.f64.Streams.collapseForward(ucD, d(x), N, n, C);
        same("collapseForward", s, ucD, uc);
        float[] dx3 = gaussF(rnd, N * n * C, 1);
        double[] dx3D = d(dx3);
        mhc.kernels.Streams.collapseBackward(dx3, du, N, n, C);
        mhc.kernels.f64.Streams.collapseBackward(dx3D, d(du), N, n, C);
        same("collapseBackward", s, dx3D, dx3);
    }

    /** Logits of scale 3, token 0 offset by +100 (exp overflows float without the max subtraction). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void sinkhorn(Shape s) {
        for (int iters : new int[]{0, 1, 20}) {
            Random rnd = new Random(s.seed() + iters);
            int N = s.N(), n = s.n(), nn = n * n;
            float[] z = gaussF(rnd, N * nn, 3);
            for (int e = 0; e < nn; e++) {
                z[e] += 100f;
            }
            float[] dout = gaussF(rnd, N * nn, 1);
            float[] out = nanF(N * nn);
            double[] outD = nanD(N * nn);
            mhc.kernels.Sinkhorn.sinkhornForward(out, z, N, n, iters);
            mhc.kernels.f64.Sinkhorn.sinkhornForward(outD, d(z), N, n, iters);
            same("sinkhornForward iters=" + iters, s, outD, out);
            float[] dz = gaussF(rnd, N * nn, 1);
            double[] dzD = d(dz);
            float[] work = nanF(mhc.kernels.Sinkhorn.workSize(N, n, iters));
            double[] workD = nanD(mhc.kernels.f64.Sinkhorn.workSize(N, n, iters));
            mhc.kernels.Sinkhorn.sinkhornBackward(dz, dout, z, work, N, n, iters);
            mhc.kernels.f64.Sinkhorn.sinkhornBackward(dzD, d(dout), d(z), workD, N, n, iters);
            same("sinkhornBackward iters=" + iters, s, dzD, dz);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void mhc(Shape s) {
        Random rnd = new Random(s.seed());
        int N = s.N(), n = s.n(), C = s.C(), K = n * C, M = n * n + 2 * n;
        float[] v = gaussF(rnd, N * K, 1);
        float[] rms = nanF(N);
        double[] rmsD = nanD(N);
        mhc.kernels.Mhc.rmsForward(rms, v, N, K);
        mhc.kernels.f64.Mhc.rmsForward(rmsD, d(v), N, K);
        same("Mhc.rmsForward", s, rmsD, rms);
        float[] drmsUp = gaussF(rnd, N, 1);
        float[] dv = gaussF(rnd, N * K, 1);
        double[] dvD = d(dv);
        mhc.kernels.Mhc.rmsBackward(dv, drmsUp, v, rms, N, K);
        mhc.kernels.f64.Mhc.rmsBackward(dvD, d(drmsUp), d(v), rmsD, N, K);
        same("Mhc.rmsBackward", s, dvD, dv);

        float[] h = gaussF(rnd, N * M, 1);
        float[] alpha = uniformF(rnd, 3, 0.5, 1.5);
        float[] bias = gaussF(rnd, M, 1);
        float[] hpre = nanF(N * n);
        float[] hpost = nanF(N * n);
        float[] zres = nanF(N * n * n);
        double[] hpreD = nanD(N * n);
        double[] hpostD = nanD(N * n);
        double[] zresD = nanD(N * n * n);
        mhc.kernels.Mhc.mhcCoeffForward(hpre, hpost, zres, h, rms, alpha, bias, N, n);
        mhc.kernels.f64.Mhc.mhcCoeffForward(hpreD, hpostD, zresD, d(h), rmsD, d(alpha), d(bias), N, n);
        same("mhcCoeffForward hpre", s, hpreD, hpre);
        same("mhcCoeffForward hpost", s, hpostD, hpost);
        same("mhcCoeffForward zres", s, zresD, zres);

        float[] dhpre = gaussF(rnd, N * n, 1);
        float[] dhpost = gaussF(rnd, N * n, 1);
        float[] dzres = gaussF(rnd, N * n * n, 1);
        float[] dh = gaussF(rnd, N * M, 1);
        float[] drms = gaussF(rnd, N, 1);
        float[] workDz = nanF(N * M);
        double[] dhD = d(dh);
        double[] drmsD = d(drms);
        double[] workDzD = nanD(N * M);
        mhc.kernels.Mhc.mhcCoeffBackward(dh, drms, workDz, dhpre, dhpost, dzres, hpre, hpost, h, rms, alpha, N, n);
        mhc.kernels.f64.Mhc.mhcCoeffBackward(dhD, drmsD, workDzD, d(dhpre), d(dhpost), d(dzres), hpreD, hpostD,
                d(h), rmsD, d(alpha), N, n);
        same("mhcCoeffBackward dh", s, dhD, dh);
        same("mhcCoeffBackward drms", s, drmsD, drms);
        same("mhcCoeffBackward workDz", s, workDzD, workDz);
        float[] dalpha = gaussF(rnd, 3, 1);
        float[] dbias = gaussF(rnd, M, 1);
        double[] dalphaD = d(dalpha);
        double[] dbiasD = d(dbias);
        mhc.kernels.Mhc.mhcCoeffParamBackward(dalpha, dbias, workDz, h, rms, N, n);
        mhc.kernels.f64.Mhc.mhcCoeffParamBackward(dalphaD, dbiasD, workDzD, d(h), rmsD, N, n);
        same("mhcCoeffParamBackward dalpha", s, dalphaD, dalpha);
        same("mhcCoeffParamBackward dbias", s, dbiasD, dbias);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void hyperConn(Shape s) {
        Random rnd = new Random(s.seed());
        int N = s.N(), n = s.n(), C = s.C(), nn = n * n;
        float[] xbar = gaussF(rnd, N * n * C, 1);
        float[] wPre = gaussF(rnd, C, 0.3);
        float[] wPost = gaussF(rnd, C, 0.3);
        float[] wRes = gaussF(rnd, C * n, 0.3);
        float[] pre = gaussF(rnd, n, 1);
        float[] post = gaussF(rnd, n, 1);
        float[] res = gaussF(rnd, nn, 1);
        float[] scale = uniformF(rnd, 2, 0.5, 1.5);
        float[][] f = new float[6][];
        double[][] g = new double[6][];
        int[] sizes = {N * n, N * n, N * nn, N * n, N * n, N * nn};
        for (int i = 0; i < 6; i++) {
            f[i] = nanF(sizes[i]);
            g[i] = nanD(sizes[i]);
        }
        mhc.kernels.HyperConn.hcCoeffForward(f[0], f[1], f[2], f[3], f[4], f[5], xbar, wPre, wPost, wRes, pre, post,
                res, scale, N, n, C);
        mhc.kernels.f64.HyperConn.hcCoeffForward(g[0], g[1], g[2], g[3], g[4], g[5], d(xbar), d(wPre), d(wPost),
                d(wRes), d(pre), d(post), d(res), d(scale), N, n, C);
        String[] names = {"hpre", "hpost", "hres", "tpre", "tpost", "tres"};
        for (int i = 0; i < 6; i++) {
            same("hcCoeffForward " + names[i], s, g[i], f[i]);
        }

        float[] dhpre = gaussF(rnd, N * n, 1);
        float[] dhpost = gaussF(rnd, N * n, 1);
        float[] dhres = gaussF(rnd, N * nn, 1);
        float[] wp = nanF(N * n);
        float[] wq = nanF(N * n);
        float[] wr = nanF(N * nn);
        double[] wpD = nanD(N * n);
        double[] wqD = nanD(N * n);
        double[] wrD = nanD(N * nn);
        mhc.kernels.HyperConn.hcCoeffBackwardDots(wp, wq, wr, dhpre, dhpost, dhres, f[3], f[4], f[5], scale, N, n);
        mhc.kernels.f64.HyperConn.hcCoeffBackwardDots(wpD, wqD, wrD, d(dhpre), d(dhpost), d(dhres), g[3], g[4], g[5],
                d(scale), N, n);
        same("hcCoeffBackwardDots pre", s, wpD, wp);
        same("hcCoeffBackwardDots post", s, wqD, wq);
        same("hcCoeffBackwardDots res", s, wrD, wr);

        float[] dxbar = gaussF(rnd, N * n * C, 1);
        double[] dxbarD = d(dxbar);
        mhc.kernels.HyperConn.hcCoeffBackwardInput(dxbar, wp, wq, wr, wPre, wPost, wRes, N, n, C);
        mhc.kernels.f64.HyperConn.hcCoeffBackwardInput(dxbarD, wpD, wqD, wrD, d(wPre), d(wPost), d(wRes), N, n, C);
        same("hcCoeffBackwardInput", s, dxbarD, dxbar);

        float[] dwPre = gaussF(rnd, C, 1);
        float[] dwPost = gaussF(rnd, C, 1);
        float[] dwRes = gaussF(rnd, C * n, 1);
        double[] dwPreD = d(dwPre);
        double[] dwPostD = d(dwPost);
        double[] dwResD = d(dwRes);
        mhc.kernels.HyperConn.hcCoeffBackwardWeights(dwPre, dwPost, dwRes, wp, wq, wr, xbar, N, n, C);
        mhc.kernels.f64.HyperConn.hcCoeffBackwardWeights(dwPreD, dwPostD, dwResD, wpD, wqD, wrD, d(xbar), N, n, C);
        same("hcCoeffBackwardWeights wPre", s, dwPreD, dwPre);
        same("hcCoeffBackwardWeights wPost", s, dwPostD, dwPost);
        same("hcCoeffBackwardWeights wRes", s, dwResD, dwRes);

        float[] dpre = gaussF(rnd, n, 1);
        float[] dpost = gaussF(rnd, n, 1);
        float[] dres = gaussF(rnd, nn, 1);
        float[] dscale = gaussF(rnd, 2, 1);
        double[] dpreD = d(dpre);
        double[] dpostD = d(dpost);
        double[] dresD = d(dres);
        double[] dscaleD = d(dscale);
        mhc.kernels.HyperConn.hcCoeffBackwardStatic(dpre, dpost, dres, dscale, dhpre, dhpost, dhres, f[3], f[4], f[5],
                N, n);
        mhc.kernels.f64.HyperConn.hcCoeffBackwardStatic(dpreD, dpostD, dresD, dscaleD, d(dhpre), d(dhpost), d(dhres),
                g[3], g[4], g[5], N, n);
        same("hcCoeffBackwardStatic pre", s, dpreD, dpre);
        same("hcCoeffBackwardStatic post", s, dpostD, dpost);
        same("hcCoeffBackwardStatic res", s, dresD, dres);
        same("hcCoeffBackwardStatic scale", s, dscaleD, dscale);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void moe(Shape s) {
        Random rnd = new Random(s.seed());
        int N = s.N(), E = s.E(), K = s.K(), C = s.C();
        float[] logits = gaussF(rnd, N * E, 2);
        float[] bias = gaussF(rnd, E, 0.3);
        int[] sel = new int[N * K];
        int[] selD = new int[N * K];
        float[] gates = nanF(N * K);
        float[] scores = nanF(N * E);
        double[] gatesD = nanD(N * K);
        double[] scoresD = nanD(N * E);
        mhc.kernels.Moe.moeRouteForward(sel, gates, scores, logits, bias, N, E, K);
        mhc.kernels.f64.Moe.moeRouteForward(selD, gatesD, scoresD, d(logits), d(bias), N, E, K);
        assertArrayEquals(selD, sel, "moeRouteForward sel [" + s + "]: float vs double twin");
        same("moeRouteForward gates", s, gatesD, gates);
        same("moeRouteForward scores", s, scoresD, scores);
        float[] dgatesUp = gaussF(rnd, N * K, 1);
        float[] dlogits = gaussF(rnd, N * E, 1);
        double[] dlogitsD = d(dlogits);
        mhc.kernels.Moe.moeRouteBackward(dlogits, dgatesUp, scores, gates, sel, N, E, K);
        mhc.kernels.f64.Moe.moeRouteBackward(dlogitsD, d(dgatesUp), scoresD, gatesD, selD, N, E, K);
        same("moeRouteBackward", s, dlogitsD, dlogits);

        int[] rows = new int[E * N];
        int[] slots = new int[E * N];
        int[] counts = new int[E];
        int[] rowsD = new int[E * N];
        int[] slotsD = new int[E * N];
        int[] countsD = new int[E];
        mhc.kernels.Moe.moeDispatch(rows, slots, counts, sel, N, E, K);
        mhc.kernels.f64.Moe.moeDispatch(rowsD, slotsD, countsD, selD, N, E, K);
        assertArrayEquals(countsD, counts, "moeDispatch counts [" + s + "]");
        assertArrayEquals(rowsD, rows, "moeDispatch rows [" + s + "]");
        assertArrayEquals(slotsD, slots, "moeDispatch slots [" + s + "]");

        float[] a = gaussF(rnd, N * C, 1);
        float[] y = gaussF(rnd, N * C, 1);
        double[] yD = d(y);
        float[] da = gaussF(rnd, N * C, 1);
        double[] daD = d(da);
        float[] dy = gaussF(rnd, N * C, 1);
        float[] dgates = gaussF(rnd, N * K, 1);
        double[] dgatesD = d(dgates);
        for (int e = 0; e < E; e++) {
            int cnt = counts[e], off = e * N;
            String ex = " (expert " + e + ", " + cnt + " rows)";
            float[] out = nanF(cnt * C);
            double[] outD = nanD(cnt * C);
            mhc.kernels.Moe.moeGather(out, a, rows, off, cnt, C);
            mhc.kernels.f64.Moe.moeGather(outD, d(a), rowsD, off, cnt, C);
            same("moeGather" + ex, s, outD, out);
            float[] dout = gaussF(rnd, cnt * C, 1);
            mhc.kernels.Moe.moeGatherBackward(da, dout, rows, off, cnt, C);
            mhc.kernels.f64.Moe.moeGatherBackward(daD, d(dout), rowsD, off, cnt, C);
            same("moeGatherBackward" + ex, s, daD, da);

            float[] ye = gaussF(rnd, cnt * C, 1);
            mhc.kernels.Moe.moeCombine(y, ye, gates, rows, slots, off, cnt, C, K);
            mhc.kernels.f64.Moe.moeCombine(yD, d(ye), gatesD, rowsD, slotsD, off, cnt, C, K);
            same("moeCombine" + ex, s, yD, y);
            float[] dye = gaussF(rnd, cnt * C, 1);
            double[] dyeD = d(dye);
            mhc.kernels.Moe.moeCombineBackward(dye, dgates, dy, ye, gates, rows, slots, off, cnt, C, K);
            mhc.kernels.f64.Moe.moeCombineBackward(dyeD, dgatesD, d(dy), d(ye), gatesD, rowsD, slotsD, off, cnt, C, K);
            same("moeCombineBackward dye" + ex, s, dyeD, dye);
            same("moeCombineBackward dgates" + ex, s, dgatesD, dgates);
        }
        float[] ys = gaussF(rnd, N * C, 1);
        mhc.kernels.Moe.moeAddShared(y, ys, N, C);
        mhc.kernels.f64.Moe.moeAddShared(yD, d(ys), N, C);
        same("moeAddShared", s, yD, y);
    }
}
