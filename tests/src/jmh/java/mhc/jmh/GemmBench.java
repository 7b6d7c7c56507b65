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
 * The three products of a linear map {@code out = inp · W} (N x IN times IN x OUT), plain kernel
 * vs fast path. Each call is {@code 2*N*IN*OUT} FLOP: GFLOP/s = 2*N*IN*OUT / (ms/op * 1e6).
 * {@code threads} is the fast GEMM's thread count (the plain kernel is single-threaded: run
 * it with threads=1 only). Shapes: 1024^3; the model's (gpt-small) C->C, C->F and F->C for a whole
 * batch (B*T = 2048 rows) and for one sequence (256 rows: what each replica of the data-parallel
 * training step multiplies); and mHC's nC->n*n+2n (256 x 1024 x 24).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g", "-XX:+UseParallelGC"})
public class GemmBench {
    /** N x IN x OUT. */
    @Param({"1024x1024x1024", "2048x256x256", "2048x256x688", "2048x688x256", "256x256x256", "256x256x688", "256x688x256", "256x1024x24"})
    public String shape;

    @Param({"plain", "fast"})
    public String impl;

    @Param({"1"})
    public int threads;

    int N, IN, OUT;
    Ops ops;
    float[] inp, w, out, dout, dinp, dw;

    @Setup
    public void setup() {
        String[] p = shape.split("x");
        N = Integer.parseInt(p[0]);
        IN = Integer.parseInt(p[1]);
        OUT = Integer.parseInt(p[2]);
        ops = Impl.ops(impl, threads);
        Random rnd = new Random(1);
        inp = Impl.gauss(rnd, N * IN);
        w = Impl.gauss(rnd, IN * OUT);
        dout = Impl.gauss(rnd, N * OUT);
        out = new float[N * OUT];
        dinp = new float[N * IN];
        dw = new float[IN * OUT];
    }

    @Benchmark
    public float[] forward() {
        ops.matmulForward(out, inp, w, 0, N, IN, OUT);
        return out;
    }

    @Benchmark
    public float[] backwardInput() {
        ops.matmulBackwardInput(dinp, dout, w, 0, N, IN, OUT);
        return dinp;
    }

    @Benchmark
    public float[] backwardWeight() {
        ops.matmulBackwardWeight(dw, inp, dout, 0, N, IN, OUT);
        return dw;
    }
}
