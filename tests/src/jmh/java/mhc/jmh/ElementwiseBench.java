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
 * The row- and element-wise kernels at gpt-small's shapes (N = B*T = 2048 rows): SwiGLU over
 * F=688, RMSNorm over C=256, cross-entropy over V=256, and AdamW over 4.9M parameters (the
 * model's size). Plain vs fast; all single-threaded.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g", "-XX:+UseParallelGC"})
public class ElementwiseBench {
    @Param({"plain", "fast"})
    public String impl;

    final int N = 2048, C = 256, F = 688, V = 256, P = 4_880_000;
    Ops ops;
    float[] h1, h3, g, dh1, dh3, dg;
    float[] x, w, a, rstd, dx, da, dw;
    float[] logits, probs, losses, dlogits;
    int[] targets;
    float[] param, grad, m, v;

    @Setup
    public void setup() {
        ops = Impl.ops(impl, 1);
        Random rnd = new Random(1);
        h1 = Impl.gauss(rnd, N * F);
        h3 = Impl.gauss(rnd, N * F);
        dg = Impl.gauss(rnd, N * F);
        g = new float[N * F];
        dh1 = new float[N * F];
        dh3 = new float[N * F];
        x = Impl.gauss(rnd, N * C);
        w = Impl.gauss(rnd, C);
        da = Impl.gauss(rnd, N * C);
        a = new float[N * C];
        rstd = new float[N];
        dx = new float[N * C];
        dw = new float[C];
        logits = Impl.gauss(rnd, N * V);
        probs = new float[N * V];
        losses = new float[N];
        dlogits = new float[N * V];
        targets = new int[N];
        for (int i = 0; i < N; i++) {
            targets[i] = rnd.nextInt(V);
        }
        param = Impl.gauss(rnd, P);
        grad = Impl.gauss(rnd, P);
        m = new float[P];
        v = new float[P];
        ops.rmsnormForward(a, rstd, x, w, N, C);
        ops.crossEntropyForward(losses, probs, logits, targets, N, V);
    }

    @Benchmark
    public float[] swigluForward() {
        ops.swigluForward(g, h1, h3, N, F);
        return g;
    }

    @Benchmark
    public float[] swigluBackward() {
        ops.swigluBackward(dh1, dh3, dg, h1, h3, N, F);
        return dh1;
    }

    @Benchmark
    public float[] rmsnormForward() {
        ops.rmsnormForward(a, rstd, x, w, N, C);
        return a;
    }

    /** Both backward products of RMSNorm (input and weight), as the model calls them. */
    @Benchmark
    public float[] rmsnormBackward() {
        ops.rmsnormBackward(dx, da, x, w, rstd, N, C);
        ops.rmsnormWeightBackward(dw, da, x, rstd, N, C);
        return dx;
    }

    @Benchmark
    public float[] crossEntropyForward() {
        ops.crossEntropyForward(losses, probs, logits, targets, N, V);
        return probs;
    }

    @Benchmark
    public float[] crossEntropyBackward() {
        ops.crossEntropyBackward(dlogits, probs, targets, 1f / N, N, V);
        return dlogits;
    }

    @Benchmark
    public float[] adamw() {
        ops.adamwUpdate(param, grad, m, v, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1f, 0.5f, 0.3f, P);
        return param;
    }
}
