package mhc.tests;

import mhc.engine.jvm.FastOps;
import mhc.engine.model.Ops;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static mhc.tests.FusedKernelTest.nanF;
import static mhc.tests.FusedKernelTest.same;
import static mhc.tests.KernelHarness.gaussF;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fast path's mHC connection and mixes ({@link FastOps}: {@code FastMhc} plus the GEMM),
 * and its HC connection ({@code FastHc}), against the plain composition of {@link Ops}: forward
 * outputs and every gradient, with FusedKernelTest's float tolerance ({@code 1e-5 * max|plain| + 1e-4 |plain|} per tensor; the
 * two differ in the order of float sums, fused multiply-adds and a float exp polynomial).
 *
 * <p>Shapes: n = 1, 3, 4; C = 5 (shorter than a vector), 33 and 130 (whole vectors and a
 * tail); N = 1, 17, 40 and 100, so that the token groups of the coefficient kernels (16 lanes
 * on AVX-512, 8 on AVX2) come whole, partial and alone, and the backward's updates of the
 * projection gradient (every 48 tokens) come once, twice and with a partial last one;
 * Sinkhorn iters = 0, 1, 20. Forward outputs
 * start as NaN, gradients as random values (a backward must add to them; the mix's backward
 * must overwrite them, and leave dhres and dhpost alone when not asked for them); the outputs
 * that the mHC backward overwrites start as NaN.
 */
class FastMhcTest {

    static Stream<Arguments> shapes() {
        List<Arguments> a = new ArrayList<>();
        for (int n : new int[]{1, 3, 4}) {
            for (int C : new int[]{5, 33, 130}) {
                for (int N : new int[]{1, 17, 40, 100}) {
                    for (int iters : new int[]{0, 1, 20}) {
                        if (iters == 20 || (C == 33 && N == 17)) { // all shapes at 20 iterations, one shape at 0 and 1
                            a.add(Arguments.of(n, C, N, iters));
                        }
                    }
                }
            }
        }
        return a.stream();
    }

    @ParameterizedTest(name = "n={0} C={1} N={2} iters={3}")
    @MethodSource("shapes")
    void mhcPreMatchesPlain(int n, int C, int N, int iters) {
        FusedKernelTest.MhcCase t = new FusedKernelTest.MhcCase(n, C, N, iters);
        float[][] plain = FusedKernelTest.runMhc(new Ops(), t);
        float[][] fast = FusedKernelTest.runMhc(new FastOps(), t);
        for (int i = 0; i < plain.length; i++) {
            same("fast mhcPre " + FusedKernelTest.MHC_NAMES[i] + " [" + t + "]", plain[i], fast[i]);
        }
    }

    static Stream<Arguments> mixShapes() {
        return shapes().filter(a -> (int) a.get()[3] == 20).map(a -> Arguments.of(a.get()[0], a.get()[1], a.get()[2]));
    }

    @ParameterizedTest(name = "n={0} C={1} N={2}")
    @MethodSource("mixShapes")
    void mixMatchesPlain(int n, int C, int N) {
        Random rnd = new Random(7000L + 1000L * n + 10L * C + N);
        float[] x = gaussF(rnd, N * n * C, 1), y = gaussF(rnd, N * C, 1), hres = gaussF(rnd, N * n * n, 1),
                hpost = gaussF(rnd, N * n, 1), dxout = gaussF(rnd, N * n * C, 1);
        float[] dx0 = gaussF(rnd, N * n * C, 1), dy0 = gaussF(rnd, N * C, 1), dhres0 = gaussF(rnd, N * n * n, 1),
                dhpost0 = gaussF(rnd, N * n, 1);
        String t = " [n=" + n + ",C=" + C + ",N=" + N + "]";
        float[] outP = nanF(N * n * C), outF = nanF(N * n * C);
        new Ops().mixForward(outP, x, hres, hpost, y, N, n, C);
        new FastOps().mixForward(outF, x, hres, hpost, y, N, n, C);
        same("fast mixForward" + t, outP, outF);
        for (boolean coeffs : new boolean[]{true, false}) {
            float[] dxP = dx0.clone(), dyP = dy0.clone(), dhresP = dhres0.clone(), dhpostP = dhpost0.clone();
            new Ops().mixBackward(dxP, dyP, dhresP, dhpostP, dxout, x, hres, hpost, y, coeffs, N, n, C);
            float[] dxF = dx0.clone(), dyF = dy0.clone(), dhresF = dhres0.clone(), dhpostF = dhpost0.clone();
            new FastOps().mixBackward(dxF, dyF, dhresF, dhpostF, dxout, x, hres, hpost, y, coeffs, N, n, C);
            String tc = t + (coeffs ? " with coefficients" : " streams only");
            same("fast mixBackward dx" + tc, dxP, dxF);
            same("fast mixBackward dy" + tc, dyP, dyF);
            same("fast mixBackward dhres" + tc, dhresP, dhresF);
            same("fast mixBackward dhpost" + tc, dhpostP, dhpostF);
        }
        float[] dyP = dy0.clone(), dyF = dy0.clone();
        new Ops().mixBackwardOutput(dyP, dxout, hpost, N, n, C);
        new FastOps().mixBackwardOutput(dyF, dxout, hpost, N, n, C);
        same("fast mixBackwardOutput" + t, dyP, dyF);
    }

    /**
     * The calls across two sublayers (mix after one, connection before the next, fused per group
     * of tokens on the fast path) against the plain composition of the same two calls.
     */
    @ParameterizedTest(name = "n={0} C={1} N={2} iters={3}")
    @MethodSource("shapes")
    void acrossSublayersMatchesPlain(int n, int C, int N, int iters) {
        FusedKernelTest.MhcCase t = new FusedKernelTest.MhcCase(n, C, N, iters);
        Random rnd = new Random(31L * n + 7L * C + N + 100L * iters);
        int nn = n * n, M = t.M;
        float[] xPrev = gaussF(rnd, N * n * C, 1), hresPrev = gaussF(rnd, N * nn, 0.5),
                hpostPrev = gaussF(rnd, N * n, 1), yPrev = gaussF(rnd, N * C, 1);
        String tag = " [" + t + "]";
        // forward: xout = mix(xPrev), then the connection on xout
        float[][] outs = new float[2][];
        float[][][] coeffs = new float[2][][];
        Ops[] paths = {new Ops(), new FastOps()};
        for (int p = 0; p < 2; p++) {
            float[] xout = nanF(N * n * C), u = nanF(N * C), hpre = nanF(N * n), hpost = nanF(N * n), hres = nanF(N * nn),
                    rms = nanF(N), h = nanF(N * M), zres = nanF(N * nn);
            paths[p].mixMhcPreForward(xout, xPrev, hresPrev, hpostPrev, yPrev, u, hpre, hpost, hres, rms, h, zres,
                    t.phi, t.alpha, t.bias, N, n, C, iters);
            outs[p] = xout;
            coeffs[p] = new float[][]{u, hpre, hpost, hres, rms, h, zres};
        }
        same("mixMhcPreForward xout" + tag, outs[0], outs[1]);
        String[] names = {"u", "hpre", "hpost", "hres", "rms", "h", "zres"};
        for (int i = 0; i < names.length; i++) {
            same("mixMhcPreForward " + names[i] + tag, coeffs[0][i], coeffs[1][i]);
        }
        // on three threads (blocks of tokens on different threads): the one-thread bits
        FastOps threaded = new FastOps(3);
        {
            float[] xout = nanF(N * n * C), u = nanF(N * C), hpre = nanF(N * n), hpost = nanF(N * n), hres = nanF(N * nn),
                    rms = nanF(N), h = nanF(N * M), zres = nanF(N * nn);
            threaded.mixMhcPreForward(xout, xPrev, hresPrev, hpostPrev, yPrev, u, hpre, hpost, hres, rms, h, zres,
                    t.phi, t.alpha, t.bias, N, n, C, iters);
            assertArrayEquals(outs[1], xout, "mixMhcPreForward xout on 3 threads" + tag);
            float[][] got = {u, hpre, hpost, hres, rms, h, zres};
            for (int i = 0; i < names.length; i++) {
                assertArrayEquals(coeffs[1][i], got[i], "mixMhcPreForward " + names[i] + " on 3 threads" + tag);
            }
        }
        // the connection alone (before the first sublayer) on the streams the mix wrote: the bits
        // of the fused call's connection part, on one thread and on three
        for (FastOps fast : new FastOps[]{(FastOps) paths[1], threaded}) {
            float[] u = nanF(N * C), hpre = nanF(N * n), hpost = nanF(N * n), hres = nanF(N * nn), rms = nanF(N),
                    h = nanF(N * M), zres = nanF(N * nn);
            fast.mhcPreForward(u, hpre, hpost, hres, rms, h, zres, outs[1], t.phi, t.alpha, t.bias, N, n, C, iters);
            float[][] got = {u, hpre, hpost, hres, rms, h, zres};
            for (int i = 0; i < names.length; i++) {
                assertArrayEquals(coeffs[1][i], got[i], "mhcPreForward " + names[i] + " against mixMhcPreForward's on "
                        + fast.threads() + " thread(s)" + tag);
            }
        }
        // the whole backward around the sublayer, both paths from the plain forward's state; with
        // the previous sublayer's Hpost (dyPrev) and without it (the first sublayer)
        float[][] c = coeffs[0];
        float[] dxout = gaussF(rnd, N * n * C, 1), y = gaussF(rnd, N * C, 1);
        for (boolean first : new boolean[]{false, true}) {
            float[][][] got = new float[2][][];
            for (int p = 0; p < 2; p++) {
                float[] dx = nanF(N * n * C), dyPrev = first ? null : nanF(N * C);
                float[] dphi = t.dphi0.clone(), dalpha = t.dalpha0.clone(), dbias = t.dbias0.clone();
                paths[p].mhcBackward(dx, dyPrev, dphi, dalpha, dbias, dxout, t.du, outs[0], y, c[1], c[2], c[3], c[4],
                        c[5], c[6], t.phi, t.alpha, first ? null : hpostPrev, N, n, C, iters);
                got[p] = new float[][]{dx, dphi, dalpha, dbias, first ? new float[0] : dyPrev};
            }
            String[] gnames = {"dx", "dphi", "dalpha", "dbias", "dyPrev"};
            for (int i = 0; i < gnames.length; i++) {
                same("mhcBackward " + gnames[i] + (first ? " (first sublayer)" : "") + tag, got[0][i], got[1][i]);
            }
            // in place, as the model calls it where the backend allows (dx is dxout): the fast
            // path's bits of the call with two arrays
            assertTrue(paths[1].mhcBackwardInPlace() && !paths[0].mhcBackwardInPlace(),
                    "in place on the fast path, never in the plain composition");
            float[] dx = dxout.clone(), dyPrev = first ? null : nanF(N * C);
            float[] dphi = t.dphi0.clone(), dalpha = t.dalpha0.clone(), dbias = t.dbias0.clone();
            paths[1].mhcBackward(dx, dyPrev, dphi, dalpha, dbias, dx, t.du, outs[0], y, c[1], c[2], c[3], c[4],
                    c[5], c[6], t.phi, t.alpha, first ? null : hpostPrev, N, n, C, iters);
            float[][] inPlace = {dx, dphi, dalpha, dbias, first ? new float[0] : dyPrev};
            for (int i = 0; i < gnames.length; i++) {
                assertArrayEquals(got[1][i], inPlace[i], "mhcBackward in place " + gnames[i] + tag);
            }
            // in place on three threads: the one-thread bits
            dx = dxout.clone();
            dyPrev = first ? null : nanF(N * C);
            dphi = t.dphi0.clone();
            dalpha = t.dalpha0.clone();
            dbias = t.dbias0.clone();
            threaded.mhcBackward(dx, dyPrev, dphi, dalpha, dbias, dx, t.du, outs[0], y, c[1], c[2], c[3], c[4],
                    c[5], c[6], t.phi, t.alpha, first ? null : hpostPrev, N, n, C, iters);
            float[][] onThree = {dx, dphi, dalpha, dbias, first ? new float[0] : dyPrev};
            for (int i = 0; i < gnames.length; i++) {
                assertArrayEquals(got[1][i], onThree[i], "mhcBackward in place on 3 threads " + gnames[i] + tag);
            }
        }
        threaded.close();
    }

    /** HC on the fast path ({@code FastHc}) against the plain composition, every output and gradient. */
    @ParameterizedTest(name = "n={0} C={1} N={2}")
    @MethodSource("mixShapes")
    void hcPreMatchesPlain(int n, int C, int N) {
        FusedKernelTest.HcCase t = new FusedKernelTest.HcCase(n, C, N);
        float[][] plain = FusedKernelTest.runHc(new Ops(), t);
        float[][] fast = FusedKernelTest.runHc(new FastOps(), t);
        for (int i = 0; i < plain.length; i++) {
            same("fast hcPre " + FusedKernelTest.HC_NAMES[i] + " [" + t + "]", plain[i], fast[i]);
        }
    }
}
