package mhc.engine.model;

import mhc.engine.Config;
import mhc.engine.ParamSpec;
import mhc.kernels.Rope;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;

/**
 * The model of shared/spec/MODEL.md, forward and backward, composed from the plain kernels.
 * This file is the one place where the model's math is assembled.
 *
 * <pre>
 *   tokens -> embed, copy to n streams -> x_0                       (N, n, C)
 *   for l in 0..2L-1:                       coefficients from x_l: Hpre, Hpost, Hres
 *       u = sum_j Hpre[j] x_l[j];  a = rmsnorm(u) * norm;  y = F_l(a)
 *       x_{l+1}[i] = sum_j Hres[i][j] x_l[j] + Hpost[i] y
 *   u = mean_i x_2L[i];  a = rmsnorm(u) * final_norm;  logits = a · head;  cross-entropy
 * </pre>
 *
 * <p>{@link #forward} keeps every activation the backward needs; {@link #backward} fills
 * {@link #grads()} (zeroed first) with the gradient of the mean loss. One instance is reused
 * across steps; buffers are sized by the batch shape of the last forward.
 */
public final class Model {
    private final Config cfg;
    private final Ops ops;
    private final Params params;
    private final Params grads;
    private Params into; // where the running backward writes its gradients: grads, or a caller's set
    private final int C, n, L2, H, V, nn, M;
    private final boolean packedMoe; // MoE in the packed form (Moe.moePack): fixed shapes, for a device

    private int B, T, N;
    private int[] inputs;   // (N)
    private int[] targets;  // (N)
    private float[][] xs;   // 2L+1 stream states, (N, n, C) each
    private Sub[] subs;
    private float[] uf, rstdf, af, logits, probs, losses;
    private float[] ropeCos, ropeSin;  // (T, D/2)
    private double loss;
    private int[] captured;       // forwardBackward: the shape of the captured pass (B, T, totalTokens)
    private int[] capturedInputs; // and the inputs buffer it was captured on
    private PassTail capturedTail; // and the tail recorded after its backward (null: none)
    private final HashMap<String, float[]> scratch = new HashMap<>();

    /** Activations of one sublayer, kept from forward to backward. */
    private static final class Sub {
        float[] hpre, hpost, hres;              // (N, n), (N, n), (N, n, n)
        float[] rms, h, zres;                   // mhc: (N), (N, M), (N, n, n)
        float[] xbar, xrstd, tpre, tpost, tres; // hc: (N, n, C), (N n), (N, n), (N, n), (N, n, n)
        float[] u, rstd, a, y;                  // (N, C), (N), (N, C), (N, C)
        float[] qraw, kraw, q, k, v, att, o;    // attention; att (B, H, T, T)
        float[] h1, h3, g;                      // dense: (N, F)
        float[] rlogits, scores, gates;         // moe: (N, E), (N, E), (N, K)
        int[] sel, rows, slots, counts;         // moe: (N, K), (E, N), (E, N), (E)
        float[][] ex, eh1, eh3, eg, ey;         // moe, per routed then shared expert
        int[] order, slotOf, expertOf, position, offsets; // packed moe: (R), (R), (R), (N, K), (E+1)
        float[] xr, h1r, h3r, gr, yr;           // packed moe, routed rows: (R, C), (R, F) x3, (R, C)
    }

    /** A model on the plain kernels. */
    public Model(Params params) {
        this(params, new Ops());
    }

    /** A model whose operations run on {@code ops} (a faster or device backend). */
    public Model(Params params, Ops ops) {
        this.ops = ops;
        this.cfg = params.config();
        this.params = params;
        this.grads = new Params(cfg);
        this.C = cfg.width();
        this.n = cfg.n();
        this.L2 = cfg.sublayers();
        this.H = cfg.heads();
        this.V = cfg.vocab();
        this.nn = n * n;
        this.M = n * n + 2 * n;
        this.packedMoe = cfg.isMoe() && ops.prefersFixedShapes();
    }

    public Config config() {
        return cfg;
    }

    public Params params() {
        return params;
    }

    public Params grads() {
        return grads;
    }

    /** The mean cross-entropy of the last forward. */
    public double loss() {
        return loss;
    }

    /** Rows of the last batch (B) and tokens per row (T). */
    public int batchRows() {
        return B;
    }

    public int batchLength() {
        return T;
    }

    // ------------------------------------------------------------------ forward

    /**
     * Runs the model on a batch of B rows of T+1 tokens (inputs 0..T-1, targets 1..T) and
     * returns the mean cross-entropy.
     */
    public double forward(int[] batch, int B, int T) {
        load(batch, B, T);
        forwardCalls();
        return meanLoss();
    }

    /** Sizes the buffers for B x T and copies the batch into the inputs and targets. */
    private void load(int[] batch, int B, int T) {
        if (batch.length != B * (T + 1)) {
            throw new IllegalArgumentException("batch has " + batch.length + " tokens, expected B*(T+1) = " + B * (T + 1));
        }
        resize(B, T);
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                inputs[b * T + t] = batch[b * (T + 1) + t];
                targets[b * T + t] = batch[b * (T + 1) + t + 1];
            }
        }
    }

    /** The mean of the per-position losses the last forward computed. */
    private double meanLoss() {
        double sum = 0;
        for (int r = 0; r < N; r++) {
            sum += losses[r];
        }
        loss = sum / N;
        return loss;
    }

    /**
     * {@link #forward} then {@link #backward(int)}, on a backend that can capture (TornadoVM):
     * the first call records the pass's kernel calls and every later call with the same shape
     * replays them, with activations and gradients kept on the device between kernels. Each
     * replay copies the parameters, inputs and targets in and the losses and gradients out.
     * Returns the mean loss. Elsewhere the same as the two calls. MoE is captured in its
     * packed form, whose sizes do not depend on the routing. The activations on the host are
     * not updated by a replay: {@link #gains()} and {@link #firstNonFinite()} need a
     * {@link #forward} first.
     */
    public double forwardBackward(int[] batch, int B, int T, int totalTokens) {
        if (!capturesPasses()) {
            forward(batch, B, T);
            backward(totalTokens);
            return loss;
        }
        capturedPass(batch, B, T, totalTokens, null);
        return meanLoss();
    }

    /**
     * Kernel calls recorded after the backward, in the same captured pass: the optimizer step of
     * a training step that runs on the device ({@link #trainPass}).
     */
    public interface PassTail {
        /** Records the calls, given the gradients and the N per-position losses of the pass. */
        void record(Ops ops, Params grads, float[] losses, int N);

        /** Its arrays the host writes before each replay. */
        Object[] in();

        /** Its arrays the host reads after each replay. */
        Object[] out();

        /** Its arrays that live on the device (copied back by {@link #pullResident}). */
        Object[] resident();
    }

    /**
     * A whole training step on a capturing backend: forward, backward and {@code tail} (the
     * optimizer) as one captured pass, recorded on the first call and replayed after. The
     * trainable parameters live on the device: copied there once, updated there, copied back
     * by {@link #pullResident}; after the host changes them, call {@link #residentChanged}. The
     * gradients and losses stay on the device: the host reads the tail's outputs and, for MoE,
     * the expert loads ({@link #expertLoads}), and writes the router bias before each replay.
     */
    public void trainPass(int[] batch, int B, int T, int totalTokens, PassTail tail) {
        if (!capturesPasses()) {
            throw new IllegalStateException("trainPass needs a backend that captures passes (TornadoVM)");
        }
        capturedPass(batch, B, T, totalTokens, tail);
    }

    /** Copies the parameters (and the tail's resident arrays) of {@link #trainPass} back to the host. */
    public void pullResident() {
        if (capturedTail != null) {
            ops.pullResident();
        }
    }

    /** The host changed the parameters or the tail's resident arrays: the next replay copies them in again. */
    public void residentChanged() {
        if (capturedTail != null) {
            ops.residentChanged();
        }
    }

    private void capturedPass(int[] batch, int B, int T, int totalTokens, PassTail tail) {
        load(batch, B, T);
        if (captured == null || captured[0] != B || captured[1] != T || captured[2] != totalTokens
                || capturedInputs != inputs || capturedTail != tail) {
            if (capturedTail != null) {
                ops.pullResident(); // the device's parameters are the newer ones
            }
            ops.beginCapture();
            try {
                forwardCalls();
                backward(totalTokens);
                if (tail != null) {
                    tail.record(ops, grads, losses, N);
                }
            } finally {
                List<Object> in = new ArrayList<>(List.of(inputs, targets));
                List<Object> out = new ArrayList<>();
                List<Object> resident = new ArrayList<>();
                if (cfg.isMoe()) {
                    for (int l = 1; l < L2; l += 2) {
                        out.add(subs[l].counts); // the expert loads, for the router-bias update
                    }
                }
                if (tail == null) {
                    out.add(losses);
                    for (String name : params.names()) {
                        in.add(params.get(name));
                        out.add(grads.get(name));
                    }
                } else {
                    for (String name : params.names()) {
                        // trainable ones change on the device; the router bias changes on the host
                        (params.spec(name).trainable() ? resident : in).add(params.get(name));
                    }
                    in.addAll(List.of(tail.in()));
                    out.addAll(List.of(tail.out()));
                    resident.addAll(List.of(tail.resident()));
                }
                ops.endCapture(in.toArray(), out.toArray(), resident.toArray());
            }
            captured = new int[]{B, T, totalTokens};
            capturedInputs = inputs;
            capturedTail = tail;
        }
        ops.replay();
    }

    /** Whether {@link #forwardBackward} captures and replays: a device backend (MoE in its packed form). */
    public boolean capturesPasses() {
        return ops.canCapture() && (!cfg.isMoe() || packedMoe);
    }

    /** The forward's kernel calls, from the embedding to the per-position losses. */
    private void forwardCalls() {
        ops.scope("embed");
        ops.embeddingForward(xs[0], inputs, params.get("embed"), N, n, C);
        boolean mhc = cfg.connection().equals("mhc");
        for (int l = 0; l < L2; l++) {
            Sub s = subs[l];
            String p = ParamSpec.sublayerPrefix(l);
            float[] x = xs[l];
            ops.scope(p.substring(0, p.length() - 1));
            switch (cfg.connection()) {
                // mhc: for l > 0 already done by the previous sublayer's mixMhcPreForward
                case "mhc" -> {
                    if (l == 0) {
                        ops.mhcPreForward(s.u, s.hpre, s.hpost, s.hres, s.rms, s.h, s.zres, x,
                                params.get(p + "mhc.phi"), params.get(p + "mhc.alpha"), params.get(p + "mhc.bias"),
                                N, n, C, cfg.sinkhornIters());
                    }
                }
                case "hc" -> ops.hcPreForward(s.u, s.hpre, s.hpost, s.hres, s.xbar, s.xrstd, s.tpre, s.tpost, s.tres, x,
                        params.get(p + "hc.w_pre"), params.get(p + "hc.w_post"), params.get(p + "hc.w_res"),
                        params.get(p + "hc.pre"), params.get(p + "hc.post"), params.get(p + "hc.res"),
                        params.get(p + "hc.scale"), N, n, C);
                default -> ops.aggregateForward(s.u, x, s.hpre, N, n, C); // residual: Hpre = 1, u = x
            }
            ops.rmsnormForward(s.a, s.rstd, s.u, params.get(p + "norm"), N, C);
            if (l % 2 == 0) {
                attentionForward(s, p);
            } else if (cfg.isMoe()) {
                moeForward(s, p);
            } else {
                denseForward(s, p);
            }
            if (mhc && l + 1 < L2) {
                Sub t = subs[l + 1];
                String q = ParamSpec.sublayerPrefix(l + 1);
                ops.mixMhcPreForward(xs[l + 1], x, s.hres, s.hpost, s.y, t.u, t.hpre, t.hpost, t.hres, t.rms, t.h, t.zres,
                        params.get(q + "mhc.phi"), params.get(q + "mhc.alpha"), params.get(q + "mhc.bias"),
                        N, n, C, cfg.sinkhornIters());
            } else {
                ops.mixForward(xs[l + 1], x, s.hres, s.hpost, s.y, N, n, C);
            }
        }
        ops.scope("head");
        ops.collapseForward(uf, xs[L2], N, n, C);
        ops.rmsnormForward(af, rstdf, uf, params.get("final_norm"), N, C);
        ops.matmulForward(logits, af, params.get("head"), 0, N, C, V);
        ops.crossEntropyForward(losses, probs, logits, targets, N, V);
    }

    private void attentionForward(Sub s, String p) {
        ops.matmulForward(s.qraw, s.a, params.get(p + "wq"), 0, N, C, C);
        ops.matmulForward(s.kraw, s.a, params.get(p + "wk"), 0, N, C, C);
        ops.matmulForward(s.v, s.a, params.get(p + "wv"), 0, N, C, C);
        ops.ropeForward(s.q, s.qraw, ropeCos, ropeSin, N, T, C, H);
        ops.ropeForward(s.k, s.kraw, ropeCos, ropeSin, N, T, C, H);
        ops.attentionForward(s.o, s.att, s.q, s.k, s.v, B, T, C, H);
        ops.matmulForward(s.y, s.o, params.get(p + "wo"), 0, N, C, C);
    }

    private void denseForward(Sub s, String p) {
        int F = cfg.ffnHidden();
        ops.matmulForward(s.h1, s.a, params.get(p + "w1"), 0, N, C, F);
        ops.matmulForward(s.h3, s.a, params.get(p + "w3"), 0, N, C, F);
        ops.swigluForward(s.g, s.h1, s.h3, N, F);
        ops.matmulForward(s.y, s.g, params.get(p + "w2"), 0, N, F, C);
    }

    private void moeForward(Sub s, String p) {
        int E = cfg.experts(), K = cfg.expertsActive(), S = cfg.sharedExperts(), F = cfg.expertHidden();
        ops.matmulForward(s.rlogits, s.a, params.get(p + "router"), 0, N, C, E);
        ops.moeRouteForward(s.sel, s.gates, s.scores, s.rlogits, params.get(p + "router_bias"), N, E, K);
        ops.zero(s.y, N * C);
        if (packedMoe) {
            // all routed rows at once (no size depends on the routing), then the shared experts
            int R = N * K;
            ops.moePack(s.order, s.slotOf, s.expertOf, s.position, s.offsets, s.counts, s.sel, N, E, K);
            ops.moeGatherPacked(s.xr, s.a, s.order, R, C);
            ops.matmulForwardGrouped(s.h1r, s.xr, params.get(p + "w1"), s.expertOf, R, C, F);
            ops.matmulForwardGrouped(s.h3r, s.xr, params.get(p + "w3"), s.expertOf, R, C, F);
            ops.swigluForward(s.gr, s.h1r, s.h3r, R, F);
            ops.matmulForwardGrouped(s.yr, s.gr, params.get(p + "w2"), s.expertOf, R, F, C);
            ops.moeCombinePacked(s.y, s.yr, s.gates, s.position, s.sel, N, E, K, C);
        } else {
            ops.moeDispatch(s.rows, s.slots, s.counts, s.sel, N, E, K);
        }
        for (int e = packedMoe ? E : 0; e < E + S; e++) {
            boolean shared = e >= E;
            int cnt = shared ? N : s.counts[e];
            if (cnt == 0) {
                continue;
            }
            int slot = shared ? e - E : e;
            String w = shared ? "shared_" : "";
            float[] in;
            if (shared) {
                in = s.a;
            } else {
                s.ex[e] = fit(s.ex[e], cnt * C);
                ops.moeGather(s.ex[e], s.a, s.rows, e * N, cnt, C);
                in = s.ex[e];
            }
            s.eh1[e] = fit(s.eh1[e], cnt * F);
            s.eh3[e] = fit(s.eh3[e], cnt * F);
            s.eg[e] = fit(s.eg[e], cnt * F);
            s.ey[e] = fit(s.ey[e], cnt * C);
            ops.matmulForward(s.eh1[e], in, params.get(p + w + "w1"), slot * C * F, cnt, C, F);
            ops.matmulForward(s.eh3[e], in, params.get(p + w + "w3"), slot * C * F, cnt, C, F);
            ops.swigluForward(s.eg[e], s.eh1[e], s.eh3[e], cnt, F);
            ops.matmulForward(s.ey[e], s.eg[e], params.get(p + w + "w2"), slot * F * C, cnt, F, C);
            if (shared) {
                ops.moeAddShared(s.y, s.ey[e], N, C);
            } else {
                ops.moeCombine(s.y, s.ey[e], s.gates, s.rows, s.slots, e * N, cnt, C, K);
            }
        }
    }

    // ------------------------------------------------------------------ backward

    /** Gradients of the mean loss of the last forward into {@link #grads()}, which it zeroes first. */
    public void backward() {
        backward(N);
    }

    /**
     * Gradients of {@code (sum of this batch's token losses) / totalTokens}: the share of this
     * batch in the mean loss of a larger batch split into parts (data-parallel training).
     */
    public void backward(int totalTokens) {
        backward(totalTokens, grads);
    }

    /**
     * {@link #backward(int)} into another set of gradients of this config (zeroed first): a
     * data-parallel replica that fills one set while the step adds up another.
     */
    public void backward(int totalTokens, Params into) {
        if (subs == null) {
            throw new IllegalStateException("backward() before forward()");
        }
        for (String name : into.names()) {
            float[] g = into.get(name);
            ops.zero(g, g.length);
        }
        backwardAdding(totalTokens, into);
    }

    /**
     * {@link #backward(int, Params)} without zeroing {@code into} first: every parameter's
     * gradient is added to what it holds (every kernel adds into its parameter gradients). For
     * a caller that keeps its sets at zero at no cost of its own: the step's sum clears each set
     * while it reads it, where a separate pass would bring all of its lines in again.
     */
    public void backwardAdding(int totalTokens, Params into) {
        if (subs == null) {
            throw new IllegalStateException("backward() before forward()");
        }
        this.into = into;
        ops.scope("head");
        float[] dlogits = zeros("dlogits", N * V);
        ops.crossEntropyBackward(dlogits, probs, targets, 1f / totalTokens, N, V);
        ops.matmulBackwardWeight(into.get("head"), af, dlogits, 0, N, C, V);
        float[] daf = zeros("daf", N * C);
        ops.matmulBackwardInput(daf, dlogits, params.get("head"), 0, N, C, V);
        float[] duf = zeros("duf", N * C);
        ops.rmsnormBackward(duf, daf, uf, params.get("final_norm"), rstdf, N, C);
        ops.rmsnormWeightBackward(into.get("final_norm"), daf, uf, rstdf, N, C);
        float[] dx = zeros("dxA", N * n * C);
        ops.collapseBackward(dx, duf, N, n, C);
        // dx: the gradient of sublayer l's output streams xs[l+1]; dxPrev: of its input streams
        // xs[l]. residual and hc run the mix's backward first (it writes dy and starts dxPrev),
        // then the sublayer's, then the connection's. mhc needs only dy before the sublayer's
        // backward and does the rest of the mix's backward together with the connection's
        // (Ops.mhcBackward), which also gives the dy of sublayer l-1: so dy comes from the
        // iteration before, and the streams and their gradient are read once per sublayer.
        // Where the backend can (mhcBackwardInPlace), dxPrev is dx itself: the stream gradient
        // is written over the one just read, with no second array to bring in from memory.
        boolean mhc = cfg.connection().equals("mhc");
        boolean inPlace = mhc && ops.mhcBackwardInPlace();
        float[] dxPrev = inPlace ? dx : scratch("dxB", N * n * C);
        boolean dynamic = !cfg.connection().equals("residual");
        float[] dy = scratch("dy", N * C);
        float[] dhres = scratch("dhres", N * nn);
        float[] dhpost = scratch("dhpost", N * n);
        if (mhc) {
            ops.zero(dy, N * C);
            ops.mixBackwardOutput(dy, dx, subs[L2 - 1].hpost, N, n, C);
        }
        for (int l = L2 - 1; l >= 0; l--) {
            Sub s = subs[l];
            String p = ParamSpec.sublayerPrefix(l);
            float[] x = xs[l];
            ops.scope(p.substring(0, p.length() - 1));
            if (!mhc) {
                ops.mixBackward(dxPrev, dy, dhres, dhpost, dx, x, s.hres, s.hpost, s.y, dynamic, N, n, C);
            }
            float[] da = zeros("da", N * C);
            if (l % 2 == 0) {
                attentionBackward(s, p, dy, da);
            } else if (cfg.isMoe()) {
                moeBackward(s, p, dy, da);
            } else {
                denseBackward(s, p, dy, da);
            }
            float[] du = zeros("du", N * C);
            ops.rmsnormBackward(du, da, s.u, params.get(p + "norm"), s.rstd, N, C);
            ops.rmsnormWeightBackward(into.get(p + "norm"), da, s.u, s.rstd, N, C);
            switch (cfg.connection()) {
                case "mhc" -> ops.mhcBackward(dxPrev, dy, into.get(p + "mhc.phi"), into.get(p + "mhc.alpha"),
                        into.get(p + "mhc.bias"), dx, du, x, s.y, s.hpre, s.hpost, s.hres, s.rms, s.h, s.zres,
                        params.get(p + "mhc.phi"), params.get(p + "mhc.alpha"), l > 0 ? subs[l - 1].hpost : null,
                        N, n, C, cfg.sinkhornIters());
                case "hc" -> ops.hcPreBackward(dxPrev, into.get(p + "hc.w_pre"), into.get(p + "hc.w_post"),
                        into.get(p + "hc.w_res"), into.get(p + "hc.pre"), into.get(p + "hc.post"), into.get(p + "hc.res"),
                        into.get(p + "hc.scale"), du, dhpost, dhres, x, s.hpre, s.xbar, s.xrstd, s.tpre, s.tpost, s.tres,
                        params.get(p + "hc.w_pre"), params.get(p + "hc.w_post"), params.get(p + "hc.w_res"),
                        params.get(p + "hc.scale"), N, n, C);
                default -> ops.aggregateBackwardStreams(dxPrev, du, s.hpre, N, n, C);
            }
            if (!inPlace) {
                float[] t = dx;
                dx = dxPrev;
                dxPrev = t;
            }
        }
        ops.scope("embed");
        ops.embeddingBackward(into.get("embed"), dx, inputs, N, n, C);
    }

    private void attentionBackward(Sub s, String p, float[] dy, float[] da) {
        ops.matmulBackwardWeight(into.get(p + "wo"), s.o, dy, 0, N, C, C);
        float[] dout = zeros("dattOut", N * C);
        ops.matmulBackwardInput(dout, dy, params.get(p + "wo"), 0, N, C, C);
        float[] dq = zeros("dq", N * C);
        float[] dk = zeros("dk", N * C);
        float[] dv = zeros("dv", N * C);
        ops.attentionBackward(dq, dk, dv, dout, s.att, s.q, s.k, s.v, s.o, B, T, C, H);
        float[] dqraw = zeros("dqraw", N * C);
        float[] dkraw = zeros("dkraw", N * C);
        ops.ropeBackward(dqraw, dq, ropeCos, ropeSin, N, T, C, H);
        ops.ropeBackward(dkraw, dk, ropeCos, ropeSin, N, T, C, H);
        linearBackward(da, s.a, dqraw, p + "wq", 0, N, C, C);
        linearBackward(da, s.a, dkraw, p + "wk", 0, N, C, C);
        linearBackward(da, s.a, dv, p + "wv", 0, N, C, C);
    }

    private void denseBackward(Sub s, String p, float[] dy, float[] da) {
        int F = cfg.ffnHidden();
        float[] dg = zeros("dg", N * F);
        linearBackward(dg, s.g, dy, p + "w2", 0, N, F, C);
        float[] dh1 = zeros("dh1", N * F);
        float[] dh3 = zeros("dh3", N * F);
        ops.swigluBackward(dh1, dh3, dg, s.h1, s.h3, N, F);
        linearBackward(da, s.a, dh1, p + "w1", 0, N, C, F);
        linearBackward(da, s.a, dh3, p + "w3", 0, N, C, F);
    }

    private void moeBackward(Sub s, String p, float[] dy, float[] da) {
        int E = cfg.experts(), K = cfg.expertsActive(), S = cfg.sharedExperts(), F = cfg.expertHidden();
        float[] dgates = zeros("dgates", N * K);
        if (packedMoe) {
            int R = N * K;
            float[] dye = zeros("dyr", R * C);
            ops.moeCombineBackwardPacked(dye, dgates, dy, s.yr, s.gates, s.order, s.slotOf, R, C, K);
            float[] dg = zeros("dgr", R * F);
            ops.matmulBackwardWeightGrouped(into.get(p + "w2"), s.gr, dye, s.offsets, E, F, C);
            ops.matmulBackwardInputGrouped(dg, dye, params.get(p + "w2"), s.expertOf, R, F, C);
            float[] dh1 = zeros("dh1r", R * F);
            float[] dh3 = zeros("dh3r", R * F);
            ops.swigluBackward(dh1, dh3, dg, s.h1r, s.h3r, R, F);
            float[] din = zeros("dxr", R * C);
            ops.matmulBackwardWeightGrouped(into.get(p + "w1"), s.xr, dh1, s.offsets, E, C, F);
            ops.matmulBackwardInputGrouped(din, dh1, params.get(p + "w1"), s.expertOf, R, C, F);
            ops.matmulBackwardWeightGrouped(into.get(p + "w3"), s.xr, dh3, s.offsets, E, C, F);
            ops.matmulBackwardInputGrouped(din, dh3, params.get(p + "w3"), s.expertOf, R, C, F);
            ops.moeGatherBackwardPacked(da, din, s.position, s.sel, N, E, K, C);
        }
        for (int e = packedMoe ? E : 0; e < E + S; e++) {
            boolean shared = e >= E;
            int cnt = shared ? N : s.counts[e];
            if (cnt == 0) {
                continue;
            }
            int slot = shared ? e - E : e;
            String w = shared ? "shared_" : "";
            float[] dye;
            if (shared) {
                dye = dy;
            } else {
                dye = zeros("dye", cnt * C);
                ops.moeCombineBackward(dye, dgates, dy, s.ey[e], s.gates, s.rows, s.slots, e * N, cnt, C, K);
            }
            float[] dg = zeros("deg", cnt * F);
            linearBackward(dg, s.eg[e], dye, p + w + "w2", slot * F * C, cnt, F, C);
            float[] dh1 = zeros("deh1", cnt * F);
            float[] dh3 = zeros("deh3", cnt * F);
            ops.swigluBackward(dh1, dh3, dg, s.eh1[e], s.eh3[e], cnt, F);
            float[] in = shared ? s.a : s.ex[e];
            float[] din = shared ? da : zeros("dex", cnt * C);
            linearBackward(din, in, dh1, p + w + "w1", slot * C * F, cnt, C, F);
            linearBackward(din, in, dh3, p + w + "w3", slot * C * F, cnt, C, F);
            if (!shared) {
                ops.moeGatherBackward(da, din, s.rows, e * N, cnt, C);
            }
        }
        float[] dlogits = zeros("drouter", N * E);
        ops.moeRouteBackward(dlogits, dgates, s.scores, s.gates, s.sel, N, E, K);
        linearBackward(da, s.a, dlogits, p + "router", 0, N, C, E);
    }

    /** Both gradient products of {@code out = inp · W}: into the parameter W and into {@code dinp}. */
    private void linearBackward(float[] dinp, float[] inp, float[] dout, String w, int wOff, int rows, int in, int out) {
        ops.matmulBackwardWeight(into.get(w), inp, dout, wOff, rows, in, out);
        ops.matmulBackwardInput(dinp, dout, params.get(w), wOff, rows, in, out);
    }

    // ------------------------------------------------------------------ inspection

    /** Tokens each expert of sublayer l (odd, MoE) received in the last forward: the loads. */
    public int[] expertLoads(int l) {
        return subs[l].counts.clone();
    }

    /** Hres of sublayer l from the last forward, (N, n, n); for residual the 1x1 identity. */
    public float[] hres(int l) {
        return subs[l].hres;
    }

    /** The stream state entering sublayer l (l = 2L: the state after the last sublayer). */
    public float[] streams(int l) {
        return xs[l];
    }

    /** The output of sublayer l's function F_l in the last forward, (N, C). */
    public float[] sublayerOutput(int l) {
        return subs[l].y;
    }

    public float[] logits() {
        return logits;
    }

    /**
     * Bytes of the activations this model keeps from forward to backward for the current batch
     * (the last forward's shape): the stream states {@code xs}, every array of every sublayer's
     * {@link Sub} (whether or not the ops use it), and the final ones (inputs, targets, the
     * collapse, final norm, logits, probabilities, losses). Scratch is not counted. 0 before
     * the first forward.
     */
    public long activationBytes() {
        if (subs == null) {
            return 0;
        }
        java.util.List<Object> kept = new java.util.ArrayList<>(Arrays.asList(inputs, targets, uf, rstdf, af, logits, probs, losses));
        kept.addAll(Arrays.asList(xs));
        for (Sub s : subs) {
            kept.addAll(Arrays.asList(s.hpre, s.hpost, s.hres, s.rms, s.h, s.zres, s.xbar, s.xrstd, s.tpre, s.tpost,
                    s.tres, s.u, s.rstd, s.a, s.y, s.qraw, s.kraw, s.q, s.k, s.v, s.att, s.o, s.h1, s.h3, s.g,
                    s.rlogits, s.scores, s.gates, s.sel, s.rows, s.slots, s.counts,
                    s.order, s.slotOf, s.expertOf, s.position, s.offsets, s.xr, s.h1r, s.h3r, s.gr, s.yr));
            for (float[][] perExpert : new float[][][]{s.ex, s.eh1, s.eh3, s.eg, s.ey}) {
                if (perExpert != null) {
                    kept.addAll(Arrays.asList(perExpert));
                }
            }
        }
        long bytes = 0;
        for (Object a : kept) {
            if (a instanceof float[] f) {
                bytes += (long) f.length * Float.BYTES;
            } else if (a instanceof int[] i) {
                bytes += (long) i.length * Integer.BYTES;
            }
        }
        return bytes;
    }

    /** Sum of the token losses of the last forward (in double), for means over several batches. */
    public double lossSum() {
        return loss * N;
    }

    /**
     * Where the last forward first produced a non-finite value, in the order of computation:
     * "the embedding", "sublayer l (blocks.b.attn)", "the final norm and head", or null if
     * every activation is finite.
     */
    public String firstNonFinite() {
        if (!allFinite(xs[0])) {
            return "the embedding";
        }
        for (int l = 0; l < L2; l++) {
            if (!allFinite(subs[l].y) || !allFinite(xs[l + 1])) {
                String p = ParamSpec.sublayerPrefix(l);
                return "sublayer " + l + " (" + p.substring(0, p.length() - 1) + ")";
            }
        }
        if (!allFinite(logits)) {
            return "the final norm and head";
        }
        return null;
    }

    private static boolean allFinite(float[] a) {
        for (float v : a) {
            if (!Float.isFinite(v)) {
                return false;
            }
        }
        return true;
    }

    /**
     * Amax gains of the last forward (MODEL.md, "Stability measure"), per sublayer averaged over
     * the batch's tokens: the single gains of Hres_l and the composite gains of
     * {@code P_l = Hres_{2L-1} ... Hres_l}. Products are formed in double.
     */
    public Gains gains() {
        double[] f = new double[L2], b = new double[L2], cf = new double[L2], cb = new double[L2];
        double[] P = new double[nn], Q = new double[nn], Hl = new double[nn];
        for (int r = 0; r < N; r++) {
            for (int e = 0; e < nn; e++) {
                P[e] = e % (n + 1) == 0 ? 1 : 0;
            }
            for (int l = L2 - 1; l >= 0; l--) {
                float[] h = subs[l].hres;
                for (int e = 0; e < nn; e++) {
                    Hl[e] = h[r * nn + e];
                }
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < n; j++) {
                        double acc = 0;
                        for (int k = 0; k < n; k++) {
                            acc += P[i * n + k] * Hl[k * n + j];
                        }
                        Q[i * n + j] = acc;
                    }
                }
                System.arraycopy(Q, 0, P, 0, nn);
                f[l] += rowGain(Hl);
                b[l] += colGain(Hl);
                cf[l] += rowGain(P);
                cb[l] += colGain(P);
            }
        }
        for (int l = 0; l < L2; l++) {
            f[l] /= N;
            b[l] /= N;
            cf[l] /= N;
            cb[l] /= N;
        }
        return new Gains(f, b, cf, cb);
    }

    private double rowGain(double[] P) {
        double best = 0;
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j < n; j++) {
                s += P[i * n + j];
            }
            best = Math.max(best, Math.abs(s));
        }
        return best;
    }

    private double colGain(double[] P) {
        double best = 0;
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int i = 0; i < n; i++) {
                s += P[i * n + j];
            }
            best = Math.max(best, Math.abs(s));
        }
        return best;
    }

    // ------------------------------------------------------------------ buffers

    private void resize(int B, int T) {
        if (B < 1 || T < 1) {
            throw new IllegalArgumentException("batch must have B >= 1 rows of T >= 1 tokens, got B=" + B + " T=" + T);
        }
        if (subs != null && B == this.B && T == this.T) {
            return;
        }
        this.B = B;
        this.T = T;
        this.N = B * T;
        inputs = new int[N];
        targets = new int[N];
        xs = new float[L2 + 1][N * n * C];
        subs = new Sub[L2];
        for (int l = 0; l < L2; l++) {
            Sub s = new Sub();
            subs[l] = s;
            s.hpre = new float[N * n];
            s.hpost = new float[N * n];
            s.hres = new float[N * nn];
            switch (cfg.connection()) {
                case "mhc" -> {
                    s.rms = new float[N];
                    s.h = new float[N * M];
                    s.zres = new float[N * nn];
                }
                case "hc" -> {
                    s.xbar = new float[N * n * C];
                    s.xrstd = new float[N * n];
                    s.tpre = new float[N * n];
                    s.tpost = new float[N * n];
                    s.tres = new float[N * nn];
                }
                default -> {
                    Arrays.fill(s.hpre, 1f);
                    Arrays.fill(s.hpost, 1f);
                    Arrays.fill(s.hres, 1f);
                }
            }
            s.u = new float[N * C];
            s.rstd = new float[N];
            s.a = new float[N * C];
            s.y = new float[N * C];
            if (l % 2 == 0) {
                s.qraw = new float[N * C];
                s.kraw = new float[N * C];
                s.q = new float[N * C];
                s.k = new float[N * C];
                s.v = new float[N * C];
                s.o = new float[N * C];
                s.att = new float[ops.attentionStateSize(B, T, H)];
            } else if (cfg.isMoe()) {
                int E = cfg.experts(), K = cfg.expertsActive(), S = cfg.sharedExperts();
                s.rlogits = new float[N * E];
                s.scores = new float[N * E];
                s.gates = new float[N * K];
                s.sel = new int[N * K];
                s.rows = packedMoe ? null : new int[E * N];
                s.slots = packedMoe ? null : new int[E * N];
                s.counts = new int[E];
                if (packedMoe) {
                    int R = N * K, F = cfg.expertHidden();
                    s.order = new int[R];
                    s.slotOf = new int[R];
                    s.expertOf = new int[R];
                    s.position = new int[N * K];
                    s.offsets = new int[E + 1];
                    s.xr = new float[R * C];
                    s.h1r = new float[R * F];
                    s.h3r = new float[R * F];
                    s.gr = new float[R * F];
                    s.yr = new float[R * C];
                }
                s.ex = new float[E + S][];
                s.eh1 = new float[E + S][];
                s.eh3 = new float[E + S][];
                s.eg = new float[E + S][];
                s.ey = new float[E + S][];
            } else {
                int F = cfg.ffnHidden();
                s.h1 = new float[N * F];
                s.h3 = new float[N * F];
                s.g = new float[N * F];
            }
        }
        ropeCos = new float[T * (C / H / 2)];
        ropeSin = new float[T * (C / H / 2)];
        Rope.ropeTables(ropeCos, ropeSin, T, C / H);
        uf = new float[N * C];
        rstdf = new float[N];
        af = new float[N * C];
        logits = new float[N * V];
        probs = new float[N * V];
        losses = new float[N];
        scratch.clear();
    }

    /** An array of exactly {@code size} floats, reused between calls with the same name; contents undefined. */
    private float[] scratch(String name, int size) {
        float[] a = scratch.get(name);
        if (a == null || a.length != size) {
            a = new float[size];
            scratch.put(name, a);
        }
        return a;
    }

    private float[] zeros(String name, int size) {
        float[] a = scratch(name, size);
        ops.zero(a, size);
        return a;
    }

    private static float[] fit(float[] a, int size) {
        return a != null && a.length == size ? a : new float[size];
    }
}
