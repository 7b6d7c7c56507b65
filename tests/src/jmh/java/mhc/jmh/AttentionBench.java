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
 * Causal attention at gpt-small's shape (B=8, T=256, C=256, H=4, D=64), plain (full
 * probabilities) vs fast (tiled, online softmax): the forward, and the backward from a fixed
 * forward state. Work: 4*D FLOP per causal (query, key) pair forward, 8*D backward (the fast
 * backward also recomputes the scores, 2*D more, not counted).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx4g", "-XX:+UseParallelGC"})
public class AttentionBench {
    @Param({"plain", "fast"})
    public String impl;

    @Param({"1"})
    public int threads;

    @Param({"8"})
    public int B;

    @Param({"256"})
    public int T;

    final int C = 256, H = 4;
    Ops ops;
    float[] q, k, v, out, att, dout, dq, dk, dv;

    @Setup
    public void setup() {
        ops = Impl.ops(impl, threads);
        Random rnd = new Random(1);
        int n = B * T * C;
        q = Impl.gauss(rnd, n);
        k = Impl.gauss(rnd, n);
        v = Impl.gauss(rnd, n);
        dout = Impl.gauss(rnd, n);
        out = new float[n];
        dq = new float[n];
        dk = new float[n];
        dv = new float[n];
        att = new float[ops.attentionStateSize(B, T, H)];
        ops.attentionForward(out, att, q, k, v, B, T, C, H);
    }

    @Benchmark
    public float[] forward() {
        ops.attentionForward(out, att, q, k, v, B, T, C, H);
        return out;
    }

    @Benchmark
    public float[] backward() {
        ops.attentionBackward(dq, dk, dv, dout, att, q, k, v, out, B, T, C, H);
        return dq;
    }
}
