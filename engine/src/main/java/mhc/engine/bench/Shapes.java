package mhc.engine.bench;

import mhc.engine.Config;

import java.util.Locale;

/**
 * The letters of MODEL.md that fix the benchmarked shapes, taken from a model config (the
 * {@code streams} key as written, so a residual config still benchmarks the n-stream ops).
 * {@code rowsPerExpert} is the balanced load {@code N*K/E} of one routed expert.
 */
public record Shapes(int B, int T, int C, int H, int n, int F, int V, int E, int K, int S, int Fe, int iters) {

    public static Shapes of(Config cfg) {
        return new Shapes(cfg.batchSize(), cfg.seqLen(), cfg.width(), cfg.heads(), cfg.streams(), cfg.ffnHidden(),
                cfg.vocab(), cfg.experts(), cfg.expertsActive(), cfg.sharedExperts(), cfg.expertHidden(), cfg.sinkhornIters());
    }

    public int N() {
        return B * T;
    }

    /** Columns of the mhc projection: n*n + 2n. */
    public int M() {
        return n * n + 2 * n;
    }

    public int D() {
        return C / H;
    }

    public int rowsPerExpert() {
        return Math.max(1, N() * K / E);
    }

    public String describe() {
        return String.format(Locale.ROOT, "B=%d T=%d C=%d H=%d n=%d F=%d V=%d (N=%d), MoE E=%d K=%d F=%d, Sinkhorn %d iterations",
                B, T, C, H, n, F, V, N(), E, K, Fe, iters);
    }
}
