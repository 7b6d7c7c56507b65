package mhc.jmh;

import mhc.engine.model.Ops;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The mHC connection at gpt-small's shape (N = 2048 tokens, or 256 as the training step calls
 * it per sequence; n = 4 streams, C = 256, 20 Sinkhorn-Knopp iterations), single-threaded: the
 * connection before a sublayer, the mix after it, the mix and the next connection in one call
 * (one pass on the fast path), and the connection's whole backward in one call (with two
 * arrays; the model's call is in place where the backend allows). {@code plain} composes the
 * reference kernels, {@code fused} is the scalar fused kernels, {@code fast} the Vector API path.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g", "-XX:+UseParallelGC"})
public class ConnectionBench {
    @Param({"plain", "fused", "fast"})
    public String impl;

    /** Tokens per call: the op benchmark's 2048, or {@code -p N=256} for the training step's per-sequence calls. */
    @Param({"2048"})
    public int N;

    final int n = 4, C = 256, iters = 20, M = n * n + 2 * n, K = n * C;
    Ops ops;
    float[] x, xPrev, y, yPrev, phi, alpha, bias, hresPrev, hpostPrev;
    float[] u, hpre, hpost, hres, rms, h, zres, xout;
    float[] du, dhpost, dhres, dx, dphi, dalpha, dbias, dxMix, dyMix, dhresMix, dhpostMix;

    @Setup
    public void setup() {
        ops = Impl.ops(impl, 1);
        Random rnd = new Random(1);
        x = Impl.gauss(rnd, N * K);
        xPrev = Impl.gauss(rnd, N * K);
        y = Impl.gauss(rnd, N * C);
        yPrev = Impl.gauss(rnd, N * C);
        phi = Impl.gauss(rnd, K * M);
        for (int i = 0; i < phi.length; i++) {
            phi[i] *= (float) (1 / Math.sqrt(K));
        }
        alpha = new float[]{0.5f, 0.5f, 0.5f};
        bias = Impl.gauss(rnd, M);
        hresPrev = Impl.gauss(rnd, N * n * n);
        hpostPrev = Impl.gauss(rnd, N * n);
        u = new float[N * C];
        hpre = new float[N * n];
        hpost = new float[N * n];
        hres = new float[N * n * n];
        rms = new float[N];
        h = new float[N * M];
        zres = new float[N * n * n];
        xout = new float[N * K];
        du = Impl.gauss(rnd, N * C);
        dhpost = Impl.gauss(rnd, N * n);
        dhres = Impl.gauss(rnd, N * n * n);
        dx = new float[N * K];
        dphi = new float[K * M];
        dalpha = new float[3];
        dbias = new float[M];
        dxMix = new float[N * K];
        dyMix = new float[N * C];
        dhresMix = new float[N * n * n];
        dhpostMix = new float[N * n];
        ops.mhcPreForward(u, hpre, hpost, hres, rms, h, zres, x, phi, alpha, bias, N, n, C, iters);
    }

    @Benchmark
    public float[] mhcPreForward() {
        ops.mhcPreForward(u, hpre, hpost, hres, rms, h, zres, x, phi, alpha, bias, N, n, C, iters);
        return u;
    }

    @Benchmark
    public float[] mhcPreBackward() {
        ops.mhcPreBackward(dx, dphi, dalpha, dbias, du, dhpost, dhres, x, hpre, hpost, rms, h, zres, phi, alpha,
                N, n, C, iters);
        return dx;
    }

    @Benchmark
    public float[] mixForward() {
        ops.mixForward(xout, xPrev, hresPrev, hpostPrev, yPrev, N, n, C);
        return xout;
    }

    @Benchmark
    public float[] mixBackward() {
        ops.mixBackward(dxMix, dyMix, dhresMix, dhpostMix, dx, xPrev, hresPrev, hpostPrev, yPrev, true, N, n, C);
        return dxMix;
    }

    /** mixForward + mhcPreForward as one call (what the model runs between two mHC sublayers). */
    @Benchmark
    public float[] mixMhcPreForward() {
        ops.mixMhcPreForward(x, xPrev, hresPrev, hpostPrev, yPrev, u, hpre, hpost, hres, rms, h, zres, phi, alpha, bias,
                N, n, C, iters);
        return u;
    }

    /**
     * The connection's whole backward around a sublayer as one call (the mix's backward, the
     * connection's, and the previous sublayer's dy): what the model runs per mHC sublayer.
     */
    @Benchmark
    public float[] mhcBackward() {
        ops.mhcBackward(dxMix, dyMix, dphi, dalpha, dbias, dx, du, x, y, hpre, hpost, hres, rms, h, zres, phi, alpha,
                hpostPrev, N, n, C, iters);
        return dxMix;
    }
}
