package mhc.tests;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static mhc.tests.KernelHarness.Loss;
import static mhc.tests.KernelHarness.dot;
import static mhc.tests.KernelHarness.gauss;
import static mhc.tests.KernelHarness.grad;
import static mhc.tests.KernelHarness.uniform;
import static mhc.tests.KernelHarness.verify;

/**
 * Finite-difference checks of the fused connection kernels on their double twins
 * ({@code mhc.kernels.f64.MhcFused}, {@code HcFused}), wired as {@code FusedOps} wires them
 * (see {@link FusedKernelTest#mhcBackwardD}). Method and tolerance as in
 * {@link KernelGradientTest}: {@code L = sum(out * R)} over every output of the connection group
 * that the model uses (u, Hpost, Hres), central differences with h = 1e-6 in every entry of every
 * input, {@code |fd - analytic| <= 1e-7 + 1e-6 |fd|}, and the "+=" convention (backward twice
 * doubles every gradient).
 */
class FusedGradientTest {

    @ParameterizedTest(name = "n={0} C={1} N={2} iters={3}")
    @CsvSource({"1,5,3,20", "3,5,3,0", "3,5,3,1", "3,5,3,20", "4,3,2,0", "4,3,2,1", "4,3,2,20"})
    void mhcPre(int n, int C, int N, int iters) {
        Random rnd = new Random(100 + 10L * n + iters);
        int M = n * n + 2 * n, K = n * C, nn = n * n;
        double[] x = gauss(rnd, N * K, 1);
        double[] phi = gauss(rnd, K * M, 1 / Math.sqrt(K));
        double[] alpha = uniform(rnd, 3, 0.5, 1.5);
        double[] bias = gauss(rnd, M, 1);
        double[] rU = gauss(rnd, N * C, 1);
        double[] rPost = gauss(rnd, N * n, 1);
        double[] rRes = gauss(rnd, N * nn, 1);
        double[] u = new double[N * C], hpre = new double[N * n], hpost = new double[N * n], hres = new double[N * nn],
                rms = new double[N], h = new double[N * M], zres = new double[N * nn];
        double[] dx = new double[x.length], dphi = new double[phi.length], dalpha = new double[3],
                dbias = new double[M];
        Loss loss = () -> {
            FusedKernelTest.mhcForwardD(u, hpre, hpost, hres, zres, rms, h, x, phi, alpha, bias, N, n, C, iters);
            return dot(u, rU) + dot(hpost, rPost) + dot(hres, rRes);
        };
        verify("MhcFused mhcPreForward/BackwardTokens/PhiBackward (n=" + n + ", C=" + C + ", N=" + N + ", iters=" + iters
                        + ")", loss,
                () -> FusedKernelTest.mhcBackwardD(dx, dphi, dalpha, dbias, rU, rPost, rRes, x, hpre, hpost, rms, h, zres,
                        phi, alpha, N, n, C, iters),
                grad("x", x, dx), grad("phi", phi, dphi), grad("alpha", alpha, dalpha), grad("bias", bias, dbias));
    }

    @ParameterizedTest(name = "n={0} C={1} N={2}")
    @CsvSource({"1,5,3", "3,5,2", "4,7,2"})
    void hcPre(int n, int C, int N) {
        Random rnd = new Random(200 + 10L * n + C);
        int nn = n * n;
        double[] x = gauss(rnd, N * n * C, 1);
        double[] wPre = gauss(rnd, C, 1 / Math.sqrt(C));
        double[] wPost = gauss(rnd, C, 1 / Math.sqrt(C));
        double[] wRes = gauss(rnd, C * n, 1 / Math.sqrt(C));
        double[] pre = gauss(rnd, n, 1);
        double[] post = gauss(rnd, n, 1);
        double[] res = gauss(rnd, nn, 1);
        double[] scale = uniform(rnd, 2, 0.5, 1.5);
        double[] rU = gauss(rnd, N * C, 1);
        double[] rPost = gauss(rnd, N * n, 1);
        double[] rRes = gauss(rnd, N * nn, 1);
        double[] u = new double[N * C], hpre = new double[N * n], hpost = new double[N * n], hres = new double[N * nn],
                xrstd = new double[N * n], tpre = new double[N * n], tpost = new double[N * n], tres = new double[N * nn];
        double[] dx = new double[x.length], dwPre = new double[C], dwPost = new double[C], dwRes = new double[C * n],
                dpre = new double[n], dpost = new double[n], dres = new double[nn], dscale = new double[2];
        Loss loss = () -> {
            FusedKernelTest.hcForwardD(u, hpre, hpost, hres, xrstd, tpre, tpost, tres, x, wPre, wPost, wRes, pre, post,
                    res, scale, N, n, C);
            return dot(u, rU) + dot(hpost, rPost) + dot(hres, rRes);
        };
        verify("HcFused hcPreForward/BackwardTokens/WeightsBackward (n=" + n + ", C=" + C + ", N=" + N + ")", loss,
                () -> FusedKernelTest.hcBackwardD(dx, dwPre, dwPost, dwRes, dpre, dpost, dres, dscale, rU, rPost, rRes, x,
                        hpre, xrstd, tpre, tpost, tres, wPre, wPost, wRes, scale, N, n, C),
                grad("x", x, dx), grad("wPre", wPre, dwPre), grad("wPost", wPost, dwPost), grad("wRes", wRes, dwRes),
                grad("pre", pre, dpre), grad("post", post, dpost), grad("res", res, dres), grad("scale", scale, dscale));
    }

    @ParameterizedTest(name = "n={0} C={1} N={2}")
    @CsvSource({"1,5,3", "3,5,4", "4,7,2"})
    void mixBackward(int n, int C, int N) {
        Random rnd = new Random(300 + 10L * n + C);
        double[] x = gauss(rnd, N * n * C, 1);
        double[] hres = gauss(rnd, N * n * n, 1);
        double[] hpost = gauss(rnd, N * n, 1);
        double[] y = gauss(rnd, N * C, 1);
        double[] R = gauss(rnd, N * n * C, 1);
        double[] xout = new double[N * n * C];
        double[] dx = new double[x.length], dy = new double[y.length], dhres = new double[hres.length],
                dhpost = new double[hpost.length];
        Loss loss = () -> {
            mhc.kernels.f64.Streams.mixForward(xout, x, hres, hpost, y, N, n, C);
            return dot(xout, R);
        };
        verify("MhcFused mixBackwardStreams + mixBackwardCoeffs (n=" + n + ")", loss, () -> {
                    mhc.kernels.f64.MhcFused.mixBackwardStreams(dx, dy, R, hres, hpost, N, n, C);
                    mhc.kernels.f64.MhcFused.mixBackwardCoeffs(dhres, dhpost, R, x, y, N, n, C);
                },
                grad("x", x, dx), grad("y", y, dy), grad("hres", hres, dhres), grad("hpost", hpost, dhpost));
    }
}
