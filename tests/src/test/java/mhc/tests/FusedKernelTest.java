package mhc.tests;

import mhc.engine.jvm.FusedOps;
import mhc.engine.model.Ops;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;

import static mhc.tests.KernelHarness.gaussF;
import static mhc.tests.KernelHarness.maxAbs;
import static mhc.tests.KernelHarness.uniformF;

/**
 * Every fused connection kernel against the plain composition it replaces, forward outputs and
 * every gradient, on odd shapes: n = 1, 3, 4; C = 5, 12, 33; N = 1, 7; Sinkhorn iters = 0, 1, 20
 * (mhc), and one wide shape whose parameter kernels split into several blocks with a tail.
 * Two comparisons per shape:
 * <ul>
 *   <li>float: {@link FusedOps} against {@link Ops} (the engine's own code paths), with
 *       {@code |fused - plain| <= 1e-5 * max|plain| + 1e-4 |plain|} per tensor. The two differ
 *       only in the order of float sums (the fused kernels use partial sums and another loop
 *       order), i.e. by a few units of roundoff (6e-8) of the tensor's scale times the depth of
 *       the computation (sums of up to nC = 132 terms, 40 Sinkhorn steps): 1e-5 of the scale is
 *       a wide margin (the class prints the largest error as a fraction of its tolerance), while
 *       a missing or wrong term is of the order of the scale itself.</li>
 *   <li>double: the double twins of the fused kernels ({@code mhc.kernels.f64.MhcFused},
 *       {@code HcFused}) wired as FusedOps wires them, against the double twin of {@link Ops},
 *       with {@code 1e-11 * max|plain| + 1e-9 |plain|}: in double the reordering costs ~1e-15,
 *       so this pins the fused math to the plain math far below float resolution.</li>
 * </ul>
 * Forward outputs start as NaN (an unwritten output fails), gradients as the same random values
 * in both paths (a backward must add to them).
 */
class FusedKernelTest {
    static final double ATOL_OF_SCALE = 1e-5;
    static final double RTOL = 1e-4;
    static final double D_ATOL_OF_SCALE = 1e-11;
    static final double D_RTOL = 1e-9;

    static Stream<Arguments> mhcShapes() {
        List<Arguments> a = new ArrayList<>();
        for (int n : new int[]{1, 3, 4}) {
            for (int C : new int[]{5, 12, 33}) {
                for (int N : new int[]{1, 7}) {
                    for (int iters : new int[]{0, 1, 20}) {
                        a.add(Arguments.of(n, C, N, iters));
                    }
                }
            }
        }
        a.add(Arguments.of(3, 131, 6, 20)); // nC = 393: several blocks of MhcFused.BLOCK rows of phi, and a tail
        return a.stream();
    }

    static Stream<Arguments> streamShapes() {
        List<Arguments> a = new ArrayList<>();
        for (int n : new int[]{1, 3, 4}) {
            for (int C : new int[]{5, 12, 33}) {
                for (int N : new int[]{1, 7}) {
                    a.add(Arguments.of(n, C, N));
                }
            }
        }
        a.add(Arguments.of(3, 301, 6)); // C = 301: several blocks of MhcFused.BLOCK columns, and a tail
        return a.stream();
    }

    // ---- comparisons -----------------------------------------------------------------------

    private static double worstFloat;
    private static String worstFloatWhere = "none";
    private static double worstDouble;
    private static String worstDoubleWhere = "none";

    static void same(String what, float[] ref, float[] got) {
        double[] r = Check.toDouble(ref);
        double atol = ATOL_OF_SCALE * maxAbs(r);
        Check.close(what + ": fused vs plain (float)", r, Check.toDouble(got), atol, RTOL);
        double err = 0;
        for (int i = 0; i < r.length; i++) {
            err = Math.max(err, Math.abs(got[i] - r[i]) / (atol + RTOL * Math.abs(r[i])));
        }
        synchronized (FusedKernelTest.class) {
            if (err > worstFloat) {
                worstFloat = err;
                worstFloatWhere = what;
            }
        }
    }

    static void sameD(String what, double[] ref, double[] got) {
        double atol = D_ATOL_OF_SCALE * maxAbs(ref);
        Check.close(what + ": fused vs plain (double twins)", ref, got, atol, D_RTOL);
        double err = 0;
        for (int i = 0; i < ref.length; i++) {
            err = Math.max(err, Math.abs(got[i] - ref[i]) / (atol + D_RTOL * Math.abs(ref[i])));
        }
        synchronized (FusedKernelTest.class) {
            if (err > worstDouble) {
                worstDouble = err;
                worstDoubleWhere = what;
            }
        }
    }

    @AfterAll
    static void printMargin() {
        System.out.printf(Locale.ROOT, "FusedKernelTest: largest fused-vs-plain error = %.3f of its tolerance (float, at %s), "
                + "%.2e (double twins, at %s)%n", worstFloat, worstFloatWhere, worstDouble, worstDoubleWhere);
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

    static double[] d(float[] a) {
        return Check.toDouble(a);
    }

    // ---- mhc -----------------------------------------------------------------------------------

    /** Inputs of the mHC connection with logits of order one: phi ~ N(0, 1/nC), so h/r ~ 1. */
    static final class MhcCase {
        final int n, C, N, iters, M, K, nn;
        final float[] x, phi, alpha, bias, du, dhpost, dhres, dx0, dphi0, dalpha0, dbias0;

        MhcCase(int n, int C, int N, int iters) {
            this.n = n;
            this.C = C;
            this.N = N;
            this.iters = iters;
            this.M = n * n + 2 * n;
            this.K = n * C;
            this.nn = n * n;
            Random rnd = new Random(1000L * n + 100L * C + 10L * N + iters);
            x = gaussF(rnd, N * K, 1);
            phi = gaussF(rnd, K * M, 1 / Math.sqrt(K));
            alpha = uniformF(rnd, 3, 0.5, 1.5);
            bias = gaussF(rnd, M, 1);
            du = gaussF(rnd, N * C, 1);
            dhpost = gaussF(rnd, N * n, 1);
            dhres = gaussF(rnd, N * nn, 1);
            dx0 = gaussF(rnd, N * K, 1);
            dphi0 = gaussF(rnd, K * M, 1);
            dalpha0 = gaussF(rnd, 3, 1);
            dbias0 = gaussF(rnd, M, 1);
        }

        @Override
        public String toString() {
            return "n=" + n + ",C=" + C + ",N=" + N + ",iters=" + iters;
        }
    }

    /** Forward outputs (u, hpre, hpost, hres, rms, h, zres) and gradients (dx, dphi, dalpha, dbias) of one path. */
    static float[][] runMhc(Ops ops, MhcCase t) {
        int N = t.N, n = t.n, C = t.C;
        float[] u = nanF(N * C), hpre = nanF(N * n), hpost = nanF(N * n), hres = nanF(N * t.nn), rms = nanF(N),
                h = nanF(N * t.M), zres = nanF(N * t.nn);
        ops.mhcPreForward(u, hpre, hpost, hres, rms, h, zres, t.x, t.phi, t.alpha, t.bias, N, n, C, t.iters);
        float[] dx = t.dx0.clone(), dphi = t.dphi0.clone(), dalpha = t.dalpha0.clone(), dbias = t.dbias0.clone();
        ops.mhcPreBackward(dx, dphi, dalpha, dbias, t.du, t.dhpost, t.dhres, t.x, hpre, hpost, rms, h, zres, t.phi,
                t.alpha, N, n, C, t.iters);
        return new float[][]{u, hpre, hpost, hres, rms, h, zres, dx, dphi, dalpha, dbias};
    }

    static final String[] MHC_NAMES = {"u", "hpre", "hpost", "hres", "rms", "h", "zres", "dx", "dphi", "dalpha", "dbias"};

    @ParameterizedTest(name = "n={0} C={1} N={2} iters={3}")
    @MethodSource("mhcShapes")
    void mhcPre(int n, int C, int N, int iters) {
        MhcCase t = new MhcCase(n, C, N, iters);
        float[][] plain = runMhc(new Ops(), t);
        float[][] fused = runMhc(new FusedOps(), t);
        for (int i = 0; i < plain.length; i++) {
            same("mhcPre " + MHC_NAMES[i] + " [" + t + "]", plain[i], fused[i]);
        }
        // Double twins: the fused kernels wired as FusedOps wires them, against the plain Ops twin.
        double[][] plainD = runMhcPlainD(t);
        double[][] fusedD = runMhcFusedD(t);
        for (int i = 0; i < plainD.length; i++) {
            sameD("mhcPre " + MHC_NAMES[i] + " [" + t + "]", plainD[i], fusedD[i]);
        }
    }

    static double[][] runMhcPlainD(MhcCase t) {
        int N = t.N, n = t.n, C = t.C;
        double[] u = nanD(N * C), hpre = nanD(N * n), hpost = nanD(N * n), hres = nanD(N * t.nn), rms = nanD(N),
                h = nanD(N * t.M), zres = nanD(N * t.nn);
        mhc.engine.model.f64.Ops ops = new mhc.engine.model.f64.Ops();
        ops.mhcPreForward(u, hpre, hpost, hres, rms, h, zres, d(t.x), d(t.phi), d(t.alpha), d(t.bias), N, n, C, t.iters);
        double[] dx = d(t.dx0), dphi = d(t.dphi0), dalpha = d(t.dalpha0), dbias = d(t.dbias0);
        ops.mhcPreBackward(dx, dphi, dalpha, dbias, d(t.du), d(t.dhpost), d(t.dhres), d(t.x), hpre, hpost, rms, h, zres,
                d(t.phi), d(t.alpha), N, n, C, t.iters);
        return new double[][]{u, hpre, hpost, hres, rms, h, zres, dx, dphi, dalpha, dbias};
    }

    static double[][] runMhcFusedD(MhcCase t) {
        int N = t.N, n = t.n, C = t.C;
        double[] u = nanD(N * C), hpre = nanD(N * n), hpost = nanD(N * n), hres = nanD(N * t.nn), rms = nanD(N),
                h = nanD(N * t.M), zres = nanD(N * t.nn);
        mhcForwardD(u, hpre, hpost, hres, zres, rms, h, d(t.x), d(t.phi), d(t.alpha), d(t.bias), N, n, C, t.iters);
        double[] dx = d(t.dx0), dphi = d(t.dphi0), dalpha = d(t.dalpha0), dbias = d(t.dbias0);
        mhcBackwardD(dx, dphi, dalpha, dbias, d(t.du), d(t.dhpost), d(t.dhres), d(t.x), hpre, hpost, rms, h, zres,
                d(t.phi), d(t.alpha), N, n, C, t.iters);
        return new double[][]{u, hpre, hpost, hres, rms, h, zres, dx, dphi, dalpha, dbias};
    }

    /** The double twin of {@code FusedOps.mhcPreForward}. */
    static void mhcForwardD(double[] u, double[] hpre, double[] hpost, double[] hres, double[] zres, double[] rms,
                            double[] h, double[] x, double[] phi, double[] alpha, double[] bias,
                            int N, int n, int C, int iters) {
        mhc.kernels.f64.MhcFused.mhcPreForward(u, hpre, hpost, hres, zres, rms, h, x, phi, alpha, bias, 1, N, n, C, iters);
    }

    /** The double twin of {@code FusedOps.mhcPreBackward} (scratch starts as NaN: it must be overwritten before use). */
    static void mhcBackwardD(double[] dx, double[] dphi, double[] dalpha, double[] dbias, double[] du, double[] dhpost,
                             double[] dhres, double[] x, double[] hpre, double[] hpost, double[] rms, double[] h,
                             double[] zres, double[] phi, double[] alpha, int N, int n, int C, int iters) {
        int M = n * n + 2 * n, K = n * C;
        double[] phiT = nanD(M * K);
        mhc.kernels.f64.MhcFused.transpose(phiT, phi, K, M);
        double[] workDz = nanD(N * M), workDh = nanD(N * M);
        double[] workSk = nanD(mhc.kernels.f64.MhcFused.sinkhornWorkSize(N, n, iters));
        mhc.kernels.f64.MhcFused.mhcPreBackwardTokens(dx, workDz, workDh, workSk, du, dhpost, dhres, x, hpre, hpost, rms,
                h, zres, phiT, alpha, 1, N, n, C, iters);
        mhc.kernels.f64.MhcFused.mhcPhiBackward(dphi, nanD(K * M), x, workDh, N, K, M);
        mhc.kernels.f64.Mhc.mhcCoeffParamBackward(dalpha, dbias, workDz, h, rms, N, n);
    }

    // ---- hc ------------------------------------------------------------------------------------

    /** Inputs of the HC connection with dot products of order one: w ~ N(0, 1/C). */
    static final class HcCase {
        final int n, C, N, nn;
        final float[] x, wPre, wPost, wRes, pre, post, res, scale, du, dhpost, dhres;
        final float[] dx0, dwPre0, dwPost0, dwRes0, dpre0, dpost0, dres0, dscale0;

        HcCase(int n, int C, int N) {
            this.n = n;
            this.C = C;
            this.N = N;
            this.nn = n * n;
            Random rnd = new Random(7000L + 1000L * n + 100L * C + N);
            x = gaussF(rnd, N * n * C, 1);
            wPre = gaussF(rnd, C, 1 / Math.sqrt(C));
            wPost = gaussF(rnd, C, 1 / Math.sqrt(C));
            wRes = gaussF(rnd, C * n, 1 / Math.sqrt(C));
            pre = gaussF(rnd, n, 1);
            post = gaussF(rnd, n, 1);
            res = gaussF(rnd, nn, 1);
            scale = uniformF(rnd, 2, 0.5, 1.5);
            du = gaussF(rnd, N * C, 1);
            dhpost = gaussF(rnd, N * n, 1);
            dhres = gaussF(rnd, N * nn, 1);
            dx0 = gaussF(rnd, N * n * C, 1);
            dwPre0 = gaussF(rnd, C, 1);
            dwPost0 = gaussF(rnd, C, 1);
            dwRes0 = gaussF(rnd, C * n, 1);
            dpre0 = gaussF(rnd, n, 1);
            dpost0 = gaussF(rnd, n, 1);
            dres0 = gaussF(rnd, nn, 1);
            dscale0 = gaussF(rnd, 2, 1);
        }

        @Override
        public String toString() {
            return "n=" + n + ",C=" + C + ",N=" + N;
        }
    }

    static final String[] HC_NAMES = {"u", "hpre", "hpost", "hres", "xrstd", "tpre", "tpost", "tres",
            "dx", "dwPre", "dwPost", "dwRes", "dpre", "dpost", "dres", "dscale"};

    /** Forward outputs (all but xbar, which the fused forward does not keep) and every gradient of one path. */
    static float[][] runHc(Ops ops, HcCase t) {
        int N = t.N, n = t.n, C = t.C;
        float[] u = nanF(N * C), hpre = nanF(N * n), hpost = nanF(N * n), hres = nanF(N * t.nn), xbar = nanF(N * n * C),
                xrstd = nanF(N * n), tpre = nanF(N * n), tpost = nanF(N * n), tres = nanF(N * t.nn);
        ops.hcPreForward(u, hpre, hpost, hres, xbar, xrstd, tpre, tpost, tres, t.x, t.wPre, t.wPost, t.wRes, t.pre,
                t.post, t.res, t.scale, N, n, C);
        float[] dx = t.dx0.clone(), dwPre = t.dwPre0.clone(), dwPost = t.dwPost0.clone(), dwRes = t.dwRes0.clone(),
                dpre = t.dpre0.clone(), dpost = t.dpost0.clone(), dres = t.dres0.clone(), dscale = t.dscale0.clone();
        ops.hcPreBackward(dx, dwPre, dwPost, dwRes, dpre, dpost, dres, dscale, t.du, t.dhpost, t.dhres, t.x, hpre, xbar,
                xrstd, tpre, tpost, tres, t.wPre, t.wPost, t.wRes, t.scale, N, n, C);
        return new float[][]{u, hpre, hpost, hres, xrstd, tpre, tpost, tres, dx, dwPre, dwPost, dwRes, dpre, dpost,
                dres, dscale};
    }

    @ParameterizedTest(name = "n={0} C={1} N={2}")
    @MethodSource("streamShapes")
    void hcPre(int n, int C, int N) {
        HcCase t = new HcCase(n, C, N);
        float[][] plain = runHc(new Ops(), t);
        float[][] fused = runHc(new FusedOps(), t);
        for (int i = 0; i < plain.length; i++) {
            same("hcPre " + HC_NAMES[i] + " [" + t + "]", plain[i], fused[i]);
        }
        double[][] plainD = runHcPlainD(t);
        double[][] fusedD = runHcFusedD(t);
        for (int i = 0; i < plainD.length; i++) {
            sameD("hcPre " + HC_NAMES[i] + " [" + t + "]", plainD[i], fusedD[i]);
        }
    }

    static double[][] runHcPlainD(HcCase t) {
        int N = t.N, n = t.n, C = t.C;
        double[] u = nanD(N * C), hpre = nanD(N * n), hpost = nanD(N * n), hres = nanD(N * t.nn), xbar = nanD(N * n * C),
                xrstd = nanD(N * n), tpre = nanD(N * n), tpost = nanD(N * n), tres = nanD(N * t.nn);
        mhc.engine.model.f64.Ops ops = new mhc.engine.model.f64.Ops();
        ops.hcPreForward(u, hpre, hpost, hres, xbar, xrstd, tpre, tpost, tres, d(t.x), d(t.wPre), d(t.wPost), d(t.wRes),
                d(t.pre), d(t.post), d(t.res), d(t.scale), N, n, C);
        double[] dx = d(t.dx0), dwPre = d(t.dwPre0), dwPost = d(t.dwPost0), dwRes = d(t.dwRes0), dpre = d(t.dpre0),
                dpost = d(t.dpost0), dres = d(t.dres0), dscale = d(t.dscale0);
        ops.hcPreBackward(dx, dwPre, dwPost, dwRes, dpre, dpost, dres, dscale, d(t.du), d(t.dhpost), d(t.dhres), d(t.x),
                hpre, xbar, xrstd, tpre, tpost, tres, d(t.wPre), d(t.wPost), d(t.wRes), d(t.scale), N, n, C);
        return new double[][]{u, hpre, hpost, hres, xrstd, tpre, tpost, tres, dx, dwPre, dwPost, dwRes, dpre, dpost,
                dres, dscale};
    }

    static double[][] runHcFusedD(HcCase t) {
        int N = t.N, n = t.n, C = t.C;
        double[] u = nanD(N * C), hpre = nanD(N * n), hpost = nanD(N * n), hres = nanD(N * t.nn), xrstd = nanD(N * n),
                tpre = nanD(N * n), tpost = nanD(N * n), tres = nanD(N * t.nn);
        double[] x = d(t.x), wPre = d(t.wPre), wPost = d(t.wPost), wRes = d(t.wRes), scale = d(t.scale);
        hcForwardD(u, hpre, hpost, hres, xrstd, tpre, tpost, tres, x, wPre, wPost, wRes, d(t.pre), d(t.post), d(t.res),
                scale, N, n, C);
        double[] dx = d(t.dx0), dwPre = d(t.dwPre0), dwPost = d(t.dwPost0), dwRes = d(t.dwRes0), dpre = d(t.dpre0),
                dpost = d(t.dpost0), dres = d(t.dres0), dscale = d(t.dscale0);
        hcBackwardD(dx, dwPre, dwPost, dwRes, dpre, dpost, dres, dscale, d(t.du), d(t.dhpost), d(t.dhres), x, hpre,
                xrstd, tpre, tpost, tres, wPre, wPost, wRes, scale, N, n, C);
        return new double[][]{u, hpre, hpost, hres, xrstd, tpre, tpost, tres, dx, dwPre, dwPost, dwRes, dpre, dpost,
                dres, dscale};
    }

    /** The double twin of {@code FusedOps.hcPreForward}. */
    static void hcForwardD(double[] u, double[] hpre, double[] hpost, double[] hres, double[] xrstd, double[] tpre,
                           double[] tpost, double[] tres, double[] x, double[] wPre, double[] wPost, double[] wRes,
                           double[] pre, double[] post, double[] res, double[] scale, int N, int n, int C) {
        double[] wResT = nanD(n * C);
        mhc.kernels.f64.MhcFused.transpose(wResT, wRes, C, n);
        mhc.kernels.f64.HcFused.hcPreForward(u, hpre, hpost, hres, xrstd, tpre, tpost, tres, x, wPre, wPost, wResT, pre,
                post, res, scale, N, n, C);
    }

    /** The double twin of {@code FusedOps.hcPreBackward}. */
    static void hcBackwardD(double[] dx, double[] dwPre, double[] dwPost, double[] dwRes, double[] dpre, double[] dpost,
                            double[] dres, double[] dscale, double[] du, double[] dhpost, double[] dhres, double[] x,
                            double[] hpre, double[] xrstd, double[] tpre, double[] tpost, double[] tres, double[] wPre,
                            double[] wPost, double[] wRes, double[] scale, int N, int n, int C) {
        double[] wResT = nanD(n * C);
        mhc.kernels.f64.MhcFused.transpose(wResT, wRes, C, n);
        double[] dhpre = nanD(N * n), gp = nanD(N * n), gq = nanD(N * n), gr = nanD(N * n * n);
        mhc.kernels.f64.HcFused.hcPreBackwardTokens(dx, dhpre, gp, gq, gr, nanD(N * C), du, dhpost, dhres, x, hpre, xrstd,
                tpre, tpost, tres, wPre, wPost, wResT, scale, N, n, C);
        mhc.kernels.f64.HcFused.hcWeightsBackward(dwPre, dwPost, dwRes, nanD((2 + n) * C), gp, gq, gr, x, xrstd, N, n, C);
        mhc.kernels.f64.HyperConn.hcCoeffBackwardStatic(dpre, dpost, dres, dscale, dhpre, dhpost, dhres, tpre, tpost, tres,
                N, n);
    }

    // ---- mix backward --------------------------------------------------------------------------

    /** FusedOps' mixBackwardStreams + mixBackwardCoeffs ({@code MhcFused}) against the plain {@code Streams} ones. */
    @ParameterizedTest(name = "n={0} C={1} N={2}")
    @MethodSource("streamShapes")
    void mixBackward(int n, int C, int N) {
        Random rnd = new Random(9000L + 1000L * n + 100L * C + N);
        float[] x = gaussF(rnd, N * n * C, 1), y = gaussF(rnd, N * C, 1), hres = gaussF(rnd, N * n * n, 1),
                hpost = gaussF(rnd, N * n, 1), dxout = gaussF(rnd, N * n * C, 1);
        float[] dx0 = gaussF(rnd, N * n * C, 1), dy0 = gaussF(rnd, N * C, 1), dhres0 = gaussF(rnd, N * n * n, 1),
                dhpost0 = gaussF(rnd, N * n, 1);
        String t = " [n=" + n + ",C=" + C + ",N=" + N + "]";
        float[] dxP = dx0.clone(), dyP = dy0.clone(), dhresP = dhres0.clone(), dhpostP = dhpost0.clone();
        Ops plain = new Ops();
        plain.mixBackwardStreams(dxP, dyP, dxout, hres, hpost, N, n, C);
        plain.mixBackwardCoeffs(dhresP, dhpostP, dxout, x, y, N, n, C);
        float[] dxF = dx0.clone(), dyF = dy0.clone(), dhresF = dhres0.clone(), dhpostF = dhpost0.clone();
        Ops fused = new FusedOps();
        fused.mixBackwardStreams(dxF, dyF, dxout, hres, hpost, N, n, C);
        fused.mixBackwardCoeffs(dhresF, dhpostF, dxout, x, y, N, n, C);
        same("mixBackward dx" + t, dxP, dxF);
        same("mixBackward dy" + t, dyP, dyF);
        same("mixBackward dhres" + t, dhresP, dhresF);
        same("mixBackward dhpost" + t, dhpostP, dhpostF);
        double[] dxPD = d(dx0), dyPD = d(dy0), dhresPD = d(dhres0), dhpostPD = d(dhpost0);
        mhc.kernels.f64.Streams.mixBackwardStreams(dxPD, dyPD, d(dxout), d(hres), d(hpost), N, n, C);
        mhc.kernels.f64.Streams.mixBackwardCoeffs(dhresPD, dhpostPD, d(dxout), d(x), d(y), N, n, C);
        double[] dxFD = d(dx0), dyFD = d(dy0), dhresFD = d(dhres0), dhpostFD = d(dhpost0);
        mhc.kernels.f64.MhcFused.mixBackwardStreams(dxFD, dyFD, d(dxout), d(hres), d(hpost), N, n, C);
        mhc.kernels.f64.MhcFused.mixBackwardCoeffs(dhresFD, dhpostFD, d(dxout), d(x), d(y), N, n, C);
        sameD("mixBackward dx" + t, dxPD, dxFD);
        sameD("mixBackward dy" + t, dyPD, dyFD);
        sameD("mixBackward dhres" + t, dhresPD, dhresFD);
        sameD("mixBackward dhpost" + t, dhpostPD, dhpostFD);
    }

    /** FusedOps' mixForward ({@code MhcFused}) against the plain {@code Streams} one, float and double. */
    @ParameterizedTest(name = "n={0} C={1} N={2}")
    @MethodSource("streamShapes")
    void mixForward(int n, int C, int N) {
        Random rnd = new Random(9500L + 1000L * n + 100L * C + N);
        float[] x = gaussF(rnd, N * n * C, 1), y = gaussF(rnd, N * C, 1), hres = gaussF(rnd, N * n * n, 1),
                hpost = gaussF(rnd, N * n, 1);
        String t = " [n=" + n + ",C=" + C + ",N=" + N + "]";
        float[] outP = nanF(N * n * C), outF = nanF(N * n * C);
        new Ops().mixForward(outP, x, hres, hpost, y, N, n, C);
        new FusedOps().mixForward(outF, x, hres, hpost, y, N, n, C);
        same("mixForward" + t, outP, outF);
        double[] outPD = nanD(N * n * C), outFD = nanD(N * n * C);
        mhc.kernels.f64.Streams.mixForward(outPD, d(x), d(hres), d(hpost), d(y), N, n, C);
        mhc.kernels.f64.MhcFused.mixForward(outFD, d(x), d(hres), d(hpost), d(y), N, n, C);
        sameD("mixForward" + t, outPD, outFD);
    }
}
