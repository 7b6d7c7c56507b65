package mhc.tests;

import mhc.kernels.f64.Attention;
import mhc.kernels.f64.CrossEntropy;
import mhc.kernels.f64.Embedding;
import mhc.kernels.f64.HyperConn;
import mhc.kernels.f64.Matmul;
import mhc.kernels.f64.Mhc;
import mhc.kernels.f64.Moe;
import mhc.kernels.f64.RmsNorm;
import mhc.kernels.f64.Rope;
import mhc.kernels.f64.Sinkhorn;
import mhc.kernels.f64.Streams;
import mhc.kernels.f64.SwiGlu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static mhc.tests.KernelHarness.Grad;
import static mhc.tests.KernelHarness.Loss;
import static mhc.tests.KernelHarness.constant;
import static mhc.tests.KernelHarness.dot;
import static mhc.tests.KernelHarness.gauss;
import static mhc.tests.KernelHarness.grad;
import static mhc.tests.KernelHarness.gradCheck;
import static mhc.tests.KernelHarness.uniform;
import static mhc.tests.KernelHarness.verify;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Finite-difference checks of every backward kernel, in double precision on the generated
 * twins {@code mhc.kernels.f64} (the same source with float replaced by double; see tests/pom.xml).
 *
 * <p>Method: random inputs, a random upstream weight R for each output, the scalar
 * {@code L = sum(out * R)} computed in double; the backward is called with {@code dout = R} into
 * zeroed gradient arrays, and every entry of every input is compared with the central difference
 * {@code (L(x + h) - L(x - h)) / 2h}, {@code h = 1e-6}.
 *
 * <p>Tolerance: {@code |fd - analytic| <= 1e-7 + 1e-6 |fd|}. The truncation error of a central
 * difference is ~h^2 |L'''| ~ 1e-12, the rounding error ~ eps |L| / h ~ 1e-16 * 10 / 1e-6 ~ 1e-9
 * for the losses here (|L| ~ 1..100), so a right backward agrees to ~1e-9, while a wrong or
 * missing term shows as 1e-3 or more. Each family also checks the "+=" convention once:
 * calling its backward twice doubles every gradient.
 */
class KernelGradientTest {

    @Test
    void matmul() {
        Random rnd = new Random(1);
        int N = 3, IN = 4, OUT = 5, wOff = IN * OUT;
        double[] inp = gauss(rnd, N * IN, 1);
        double[] w = gauss(rnd, 3 * IN * OUT, 1); // a stack of 3 matrices; the kernel uses the middle one
        double[] R = gauss(rnd, N * OUT, 1);
        double[] out = new double[N * OUT];
        double[] dinp = new double[inp.length];
        double[] dw = new double[w.length];
        Loss loss = () -> {
            Matmul.matmulForward(out, inp, w, wOff, N, IN, OUT);
            return dot(out, R);
        };
        verify("matmulBackwardInput/Weight (wOff=" + wOff + " in a stack of 3)", loss, () -> {
            Matmul.matmulBackwardInput(dinp, R, w, wOff, N, IN, OUT);
            Matmul.matmulBackwardWeight(dw, inp, R, wOff, N, IN, OUT);
        }, grad("inp", inp, dinp), grad("w (whole stack: zero outside the slice)", w, dw));
    }

    @Test
    void rmsnorm() {
        Random rnd = new Random(2);
        int N = 3, C = 7;
        double[] x = gauss(rnd, N * C, 1);
        double[] w = uniform(rnd, C, 0.5, 1.5);
        double[] R = gauss(rnd, N * C, 1);
        double[] out = new double[N * C];
        double[] rstd = new double[N];
        double[] dx = new double[x.length];
        double[] dw = new double[C];
        Loss loss = () -> {
            RmsNorm.rmsnormForward(out, rstd, x, w, N, C);
            return dot(out, R);
        };
        verify("rmsnormBackward + rmsnormWeightBackward", loss, () -> {
            RmsNorm.rmsnormBackward(dx, R, x, w, rstd, N, C);
            RmsNorm.rmsnormWeightBackward(dw, R, x, rstd, N, C);
        }, grad("x", x, dx), grad("w", w, dw));
    }

    @Test
    void rope() {
        Random rnd = new Random(3);
        int B = 2, T = 5, C = 12, H = 3, N = B * T;
        double[] inp = gauss(rnd, N * C, 1);
        double[] R = gauss(rnd, N * C, 1);
        double[] out = new double[N * C];
        double[] dinp = new double[inp.length];
        double[] cos = new double[T * (C / H / 2)], sin = new double[T * (C / H / 2)];
        Rope.ropeTables(cos, sin, T, C / H);
        Loss loss = () -> {
            Rope.ropeForward(out, inp, cos, sin, N, T, C, H);
            return dot(out, R);
        };
        verify("ropeBackward", loss, () -> Rope.ropeBackward(dinp, R, cos, sin, N, T, C, H), grad("inp", inp, dinp));
    }

    @Test
    void attention() {
        Random rnd = new Random(4);
        int B = 2, T = 5, C = 12, H = 3, N = B * T;
        double[] q = gauss(rnd, N * C, 1);
        double[] k = gauss(rnd, N * C, 1);
        double[] v = gauss(rnd, N * C, 1);
        double[] R = gauss(rnd, N * C, 1);
        double[] out = new double[N * C];
        double[] att = new double[B * H * T * T];
        double[] work = new double[B * H * T * T];
        double[] dq = new double[q.length];
        double[] dk = new double[k.length];
        double[] dv = new double[v.length];
        Loss loss = () -> {
            Attention.attentionForward(out, att, q, k, v, B, T, C, H);
            return dot(out, R);
        };
        verify("attentionBackwardScores+Query+KeyValue (B=2,T=5,C=12,H=3)", loss, () -> {
            Attention.attentionBackwardScores(work, R, att, v, B, T, C, H);
            Attention.attentionBackwardQuery(dq, work, k, B, T, C, H);
            Attention.attentionBackwardKeyValue(dk, dv, work, att, q, R, B, T, C, H);
        }, grad("q", q, dq), grad("k", k, dk), grad("v", v, dv));
    }

    @Test
    void swiglu() {
        Random rnd = new Random(5);
        int N = 3, F = 5;
        double[] h1 = gauss(rnd, N * F, 2);
        double[] h3 = gauss(rnd, N * F, 1);
        double[] R = gauss(rnd, N * F, 1);
        double[] out = new double[N * F];
        double[] dh1 = new double[h1.length];
        double[] dh3 = new double[h3.length];
        Loss loss = () -> {
            SwiGlu.swigluForward(out, h1, h3, N, F);
            return dot(out, R);
        };
        verify("swigluBackward", loss, () -> SwiGlu.swigluBackward(dh1, dh3, R, h1, h3, N, F),
                grad("h1", h1, dh1), grad("h3", h3, dh3));
    }

    @Test
    void crossEntropy() {
        Random rnd = new Random(6);
        int N = 4, V = 7;
        double[] logits = gauss(rnd, N * V, 2);
        int[] targets = {3, 0, 6, 3};
        double[] losses = new double[N];
        double[] probs = new double[N * V];
        double[] dlogits = new double[logits.length];
        Loss meanLoss = () -> {
            CrossEntropy.crossEntropyForward(losses, probs, logits, targets, N, V);
            double s = 0;
            for (double l : losses) {
                s += l;
            }
            return s / N;
        };
        verify("crossEntropyBackward (dloss = 1/N, L = mean loss)", meanLoss,
                () -> CrossEntropy.crossEntropyBackward(dlogits, probs, targets, 1.0 / N, N, V),
                grad("logits", logits, dlogits));
    }

    @Test
    void embedding() {
        Random rnd = new Random(7);
        int V = 6, N = 7, n = 3, C = 4;
        int[] tokens = {2, 0, 2, 5, 2, 0, 3}; // 2 three times, 0 twice; rows 1 and 4 unused
        double[] embed = gauss(rnd, V * C, 1);
        double[] R = gauss(rnd, N * n * C, 1);
        double[] x = new double[N * n * C];
        double[] dembed = new double[embed.length];
        Loss loss = () -> {
            Embedding.embeddingForward(x, tokens, embed, N, n, C);
            return dot(x, R);
        };
        verify("embeddingBackward (repeated tokens)", loss,
                () -> Embedding.embeddingBackward(dembed, R, tokens, N, n, C), grad("embed", embed, dembed));
    }

    @Test
    void streamsAggregate() {
        Random rnd = new Random(8);
        int N = 4, n = 3, C = 5;
        double[] x = gauss(rnd, N * n * C, 1);
        double[] hpre = gauss(rnd, N * n, 1);
        double[] R = gauss(rnd, N * C, 1);
        double[] u = new double[N * C];
        double[] dx = new double[x.length];
        double[] dhpre = new double[hpre.length];
        Loss loss = () -> {
            Streams.aggregateForward(u, x, hpre, N, n, C);
            return dot(u, R);
        };
        verify("Streams aggregateBackwardStreams/Coeffs (n=3)", loss, () -> {
            Streams.aggregateBackwardStreams(dx, R, hpre, N, n, C);
            Streams.aggregateBackwardCoeffs(dhpre, R, x, N, n, C);
        }, grad("x", x, dx), grad("hpre", hpre, dhpre));
    }

    @Test
    void streamsMix() {
        Random rnd = new Random(9);
        int N = 4, n = 3, C = 5;
        double[] x = gauss(rnd, N * n * C, 1);
        double[] hres = gauss(rnd, N * n * n, 1);
        double[] hpost = gauss(rnd, N * n, 1);
        double[] y = gauss(rnd, N * C, 1);
        double[] R = gauss(rnd, N * n * C, 1);
        double[] xout = new double[N * n * C];
        double[] dx = new double[x.length];
        double[] dhres = new double[hres.length];
        double[] dhpost = new double[hpost.length];
        double[] dy = new double[y.length];
        Loss loss = () -> {
            Streams.mixForward(xout, x, hres, hpost, y, N, n, C);
            return dot(xout, R);
        };
        verify("Streams mixBackwardStreams/Coeffs (n=3)", loss, () -> {
            Streams.mixBackwardStreams(dx, dy, R, hres, hpost, N, n, C);
            Streams.mixBackwardCoeffs(dhres, dhpost, R, x, y, N, n, C);
        }, grad("x", x, dx), grad("y", y, dy), grad("hres", hres, dhres), grad("hpost", hpost, dhpost));
    }

    /** The dy half alone ({@code Streams.mixBackwardOutput}, which the mHC backward runs before the sublayer's). */
    @Test
    void streamsMixOutput() {
        Random rnd = new Random(19);
        int N = 4, n = 3, C = 5;
        double[] x = gauss(rnd, N * n * C, 1);
        double[] hres = gauss(rnd, N * n * n, 1);
        double[] hpost = gauss(rnd, N * n, 1);
        double[] y = gauss(rnd, N * C, 1);
        double[] R = gauss(rnd, N * n * C, 1);
        double[] xout = new double[N * n * C];
        double[] dy = new double[y.length];
        Loss loss = () -> {
            Streams.mixForward(xout, x, hres, hpost, y, N, n, C);
            return dot(xout, R);
        };
        verify("Streams mixBackwardOutput (n=3)", loss, () -> Streams.mixBackwardOutput(dy, R, hpost, N, n, C),
                grad("y", y, dy));
    }

    @Test
    void streamsCollapse() {
        Random rnd = new Random(10);
        int N = 4, n = 3, C = 5;
        double[] x = gauss(rnd, N * n * C, 1);
        double[] R = gauss(rnd, N * C, 1);
        double[] u = new double[N * C];
        double[] dx = new double[x.length];
        Loss loss = () -> {
            Streams.collapseForward(u, x, N, n, C);
            return dot(u, R);
        };
        verify("Streams collapseBackward (n=3)", loss, () -> Streams.collapseBackward(dx, R, N, n, C),
                grad("x", x, dx));
    }

    /** Token r has logits of scale 1 + r (1, 2, 3): from mild to nearly saturated. */
    @ParameterizedTest(name = "n={0} iters={1}")
    @CsvSource({"3,0", "3,1", "3,5", "3,20", "4,0", "4,1", "4,5", "4,20"})
    void sinkhorn(int n, int iters) {
        Random rnd = new Random(11 + 10L * n + iters);
        int N = 3, nn = n * n;
        double[] z = new double[N * nn];
        for (int r = 0; r < N; r++) {
            for (int e = 0; e < nn; e++) {
                z[r * nn + e] = (1 + r) * rnd.nextGaussian();
            }
        }
        double[] R = gauss(rnd, N * nn, 1);
        double[] out = new double[N * nn];
        double[] work = new double[Sinkhorn.workSize(N, n, iters)];
        double[] dz = new double[z.length];
        Loss loss = () -> {
            Sinkhorn.sinkhornForward(out, z, N, n, iters);
            return dot(out, R);
        };
        verify("sinkhornBackward (n=" + n + ", iters=" + iters + ")", loss,
                () -> Sinkhorn.sinkhornBackward(dz, R, z, work, N, n, iters), grad("z", z, dz));
    }

    @Test
    void mhcRms() {
        Random rnd = new Random(12);
        int N = 3, K = 9;
        double[] v = gauss(rnd, N * K, 1);
        double[] R = gauss(rnd, N, 1);
        double[] rms = new double[N];
        double[] dv = new double[v.length];
        Loss loss = () -> {
            Mhc.rmsForward(rms, v, N, K);
            return dot(rms, R);
        };
        verify("Mhc rmsBackward", loss, () -> Mhc.rmsBackward(dv, R, v, rms, N, K), grad("v", v, dv));
    }

    /** Through mhcCoeffForward; L weighs Hpre, Hpost and zres (so dzres = R_res is a random upstream gradient). */
    @Test
    void mhcCoeff() {
        Random rnd = new Random(13);
        int N = 3, n = 3, M = n * n + 2 * n;
        double[] h = gauss(rnd, N * M, 1);
        double[] rms = uniform(rnd, N, 0.5, 2);
        double[] alpha = uniform(rnd, 3, 0.5, 1.5);
        double[] bias = gauss(rnd, M, 1);
        double[] rPre = gauss(rnd, N * n, 1);
        double[] rPost = gauss(rnd, N * n, 1);
        double[] rRes = gauss(rnd, N * n * n, 1);
        double[] hpre = new double[N * n];
        double[] hpost = new double[N * n];
        double[] zres = new double[N * n * n];
        double[] workDz = new double[N * M];
        double[] dh = new double[h.length];
        double[] drms = new double[N];
        double[] dalpha = new double[3];
        double[] dbias = new double[M];
        Loss loss = () -> {
            Mhc.mhcCoeffForward(hpre, hpost, zres, h, rms, alpha, bias, N, n);
            return dot(hpre, rPre) + dot(hpost, rPost) + dot(zres, rRes);
        };
        verify("mhcCoeffBackward + mhcCoeffParamBackward (n=3)", loss, () -> {
            Mhc.mhcCoeffBackward(dh, drms, workDz, rPre, rPost, rRes, hpre, hpost, h, rms, alpha, N, n);
            Mhc.mhcCoeffParamBackward(dalpha, dbias, workDz, h, rms, N, n);
        }, grad("h", h, dh), grad("rms", rms, drms), grad("alpha", alpha, dalpha), grad("bias", bias, dbias));
    }

    /** Through hcCoeffForward, every parameter and the normalized streams xbar. */
    @Test
    void hyperConn() {
        Random rnd = new Random(14);
        int N = 2, n = 3, C = 5;
        double[] xbar = gauss(rnd, N * n * C, 1);
        double[] wPre = gauss(rnd, C, 0.5);
        double[] wPost = gauss(rnd, C, 0.5);
        double[] wRes = gauss(rnd, C * n, 0.5);
        double[] pre = gauss(rnd, n, 1);
        double[] post = gauss(rnd, n, 1);
        double[] res = gauss(rnd, n * n, 1);
        double[] scale = uniform(rnd, 2, 0.5, 1.5);
        double[] rPre = gauss(rnd, N * n, 1);
        double[] rPost = gauss(rnd, N * n, 1);
        double[] rRes = gauss(rnd, N * n * n, 1);
        double[] hpre = new double[N * n];
        double[] hpost = new double[N * n];
        double[] hres = new double[N * n * n];
        double[] tpre = new double[N * n];
        double[] tpost = new double[N * n];
        double[] tres = new double[N * n * n];
        double[] gPre = new double[N * n];
        double[] gPost = new double[N * n];
        double[] gRes = new double[N * n * n];
        double[] dxbar = new double[xbar.length];
        double[] dwPre = new double[C];
        double[] dwPost = new double[C];
        double[] dwRes = new double[C * n];
        double[] dpre = new double[n];
        double[] dpost = new double[n];
        double[] dres = new double[n * n];
        double[] dscale = new double[2];
        Loss loss = () -> {
            HyperConn.hcCoeffForward(hpre, hpost, hres, tpre, tpost, tres, xbar, wPre, wPost, wRes, pre, post, res,
                    scale, N, n, C);
            return dot(hpre, rPre) + dot(hpost, rPost) + dot(hres, rRes);
        };
        verify("hcCoeffBackwardDots/Input/Weights/Static (n=3)", loss, () -> {
            HyperConn.hcCoeffBackwardDots(gPre, gPost, gRes, rPre, rPost, rRes, tpre, tpost, tres, scale, N, n);
            HyperConn.hcCoeffBackwardInput(dxbar, gPre, gPost, gRes, wPre, wPost, wRes, N, n, C);
            HyperConn.hcCoeffBackwardWeights(dwPre, dwPost, dwRes, gPre, gPost, gRes, xbar, N, n, C);
            HyperConn.hcCoeffBackwardStatic(dpre, dpost, dres, dscale, rPre, rPost, rRes, tpre, tpost, tres, N, n);
        }, grad("xbar", xbar, dxbar), grad("wPre", wPre, dwPre), grad("wPost", wPost, dwPost),
                grad("wRes", wRes, dwRes), grad("pre", pre, dpre), grad("post", post, dpost),
                grad("res", res, dres), grad("scale", scale, dscale));
    }

    /**
     * Through moeRouteForward with a selection that no perturbation of size h can change: every
     * gap between consecutive values of {@code s_e + bias_e} (the top K+1 of each token) is
     * asserted to exceed 1e-2, and the loss asserts the selection stays the base one. The router
     * bias only selects, so its gradient is zero.
     */
    @Test
    void moeRoute() {
        Random rnd = new Random(23); // a seed whose top-K+1 gaps are all > 0.13
        int N = 4, E = 5, K = 2;
        double[] logits = gauss(rnd, N * E, 1.5);
        double[] bias = gauss(rnd, E, 0.3);
        double[] R = gauss(rnd, N * K, 1);
        int[] sel = new int[N * K];
        double[] gates = new double[N * K];
        double[] scores = new double[N * E];
        double[] dlogits = new double[logits.length];
        double[] dbias = new double[E];
        Moe.moeRouteForward(sel, gates, scores, logits, bias, N, E, K);
        int[] base = sel.clone();
        for (int r = 0; r < N; r++) {
            double[] val = new double[E];
            for (int e = 0; e < E; e++) {
                val[e] = scores[r * E + e] + bias[e];
            }
            double[] sorted = val.clone();
            Arrays.sort(sorted);
            for (int k = 0; k < K; k++) {
                assertTrue(sorted[E - 1 - k] - sorted[E - 2 - k] > 1e-2, "moeRoute test setup: token " + r
                        + " has nearly tied experts " + Arrays.toString(val) + "; pick another seed");
                assertTrue(val[sel[r * K + k]] == sorted[E - 1 - k], "moeRouteForward: token " + r + " slot " + k
                        + " selected expert " + sel[r * K + k] + " but the top values are " + Arrays.toString(val));
            }
        }
        Loss loss = () -> {
            Moe.moeRouteForward(sel, gates, scores, logits, bias, N, E, K);
            assertArrayEquals(base, sel, "moeRoute: a perturbation changed the selection");
            return dot(gates, R);
        };
        verify("moeRouteBackward (E=5, K=2, fixed selection)", loss,
                () -> Moe.moeRouteBackward(dlogits, R, scores, gates, sel, N, E, K),
                grad("logits", logits, dlogits), constant("router bias (selection only)", bias, dbias));
    }

    /** The rows of each expert from moeDispatch of a fixed selection; expert e's list starts at e*N. */
    private static final int MOE_N = 6, MOE_E = 3, MOE_K = 2;
    private static final int[] MOE_SEL = {1, 0, 2, 1, 0, 2, 1, 2, 0, 1, 2, 0};

    private static int[][] dispatch() {
        int[] rows = new int[MOE_E * MOE_N];
        int[] slots = new int[MOE_E * MOE_N];
        int[] counts = new int[MOE_E];
        Moe.moeDispatch(rows, slots, counts, MOE_SEL, MOE_N, MOE_E, MOE_K);
        assertArrayEquals(new int[]{4, 4, 4}, counts, "moeDispatch counts");
        return new int[][]{rows, slots, counts};
    }

    @Test
    void moeGather() {
        Random rnd = new Random(16);
        int N = MOE_N, E = MOE_E, C = 4;
        int[][] d = dispatch();
        int[] rows = d[0], counts = d[2];
        double[] a = gauss(rnd, N * C, 1);
        double[][] out = new double[E][];
        double[][] R = new double[E][];
        for (int e = 0; e < E; e++) {
            out[e] = new double[counts[e] * C];
            R[e] = gauss(rnd, counts[e] * C, 1);
        }
        double[] da = new double[a.length];
        Loss loss = () -> {
            double s = 0;
            for (int e = 0; e < E; e++) {
                Moe.moeGather(out[e], a, rows, e * N, counts[e], C);
                s += dot(out[e], R[e]);
            }
            return s;
        };
        verify("moeGatherBackward (all experts into one da)", loss, () -> {
            for (int e = 0; e < E; e++) {
                Moe.moeGatherBackward(da, R[e], rows, e * N, counts[e], C);
            }
        }, grad("a", a, da));
    }

    /** y = y0 + sum over experts of the gated expert outputs; gradients for the gates and every expert's output. */
    @Test
    void moeCombine() {
        Random rnd = new Random(17);
        int N = MOE_N, E = MOE_E, K = MOE_K, C = 4;
        int[][] d = dispatch();
        int[] rows = d[0], slots = d[1], counts = d[2];
        double[] y0 = gauss(rnd, N * C, 1);
        double[] gates = uniform(rnd, N * K, 0.1, 0.9);
        double[] R = gauss(rnd, N * C, 1);
        double[][] ye = new double[E][];
        double[][] dye = new double[E][];
        for (int e = 0; e < E; e++) {
            ye[e] = gauss(rnd, counts[e] * C, 1);
            dye[e] = new double[ye[e].length];
        }
        double[] y = new double[N * C];
        double[] dgates = new double[gates.length];
        Loss loss = () -> {
            System.arraycopy(y0, 0, y, 0, y.length);
            for (int e = 0; e < E; e++) {
                Moe.moeCombine(y, ye[e], gates, rows, slots, e * N, counts[e], C, K);
            }
            return dot(y, R);
        };
        List<Grad> grads = new ArrayList<>();
        grads.add(grad("gates", gates, dgates));
        for (int e = 0; e < E; e++) {
            grads.add(grad("ye[expert " + e + "]", ye[e], dye[e]));
        }
        verify("moeCombineBackward", loss, () -> {
            for (int e = 0; e < E; e++) {
                Moe.moeCombineBackward(dye[e], dgates, R, ye[e], gates, rows, slots, e * N, counts[e], C, K);
            }
        }, grads.toArray(new Grad[0]));
        // moeCombine adds to y (it must not overwrite what other experts wrote): dL/dy0 = R.
        gradCheck("moeCombine: d L / d y0 (the y it adds to)", loss, y0, R.clone());
    }

    /** No backward kernel: y += ys passes R to both y and ys. */
    @Test
    void moeAddShared() {
        Random rnd = new Random(18);
        int N = 5, C = 4;
        double[] y0 = gauss(rnd, N * C, 1);
        double[] ys = gauss(rnd, N * C, 1);
        double[] R = gauss(rnd, N * C, 1);
        double[] y = new double[N * C];
        Loss loss = () -> {
            System.arraycopy(y0, 0, y, 0, y.length);
            Moe.moeAddShared(y, ys, N, C);
            return dot(y, R);
        };
        gradCheck("moeAddShared: d L / d ys", loss, ys, R.clone());
        gradCheck("moeAddShared: d L / d y", loss, y0, R.clone());
    }
}
