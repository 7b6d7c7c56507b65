package mhc.engine.tornado;

import mhc.kernels.Attention;
import mhc.kernels.CrossEntropy;
import mhc.kernels.Embedding;
import mhc.kernels.HyperConn;
import mhc.kernels.Matmul;
import mhc.kernels.Mhc;
import mhc.kernels.Moe;
import mhc.kernels.RmsNorm;
import mhc.kernels.Rope;
import mhc.kernels.Sinkhorn;
import mhc.kernels.Streams;
import mhc.kernels.SwiGlu;
import mhc.engine.model.Ops;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * Every kernel of the model run by TornadoVM on one device, one call at a time: each distinct
 * call (kernel, arrays, sizes) becomes a one-task graph, compiled on first use and cached,
 * that copies its arrays to the device, runs, and copies them back. The same plain kernels
 * as the JVM path: there is no second copy of the math.
 *
 * <p>Scalar arguments are compiled into the kernel, so a graph belongs to one shape; the
 * model reuses its buffers from step to step, so after the first step every call finds its
 * graph in the cache.
 */
public class TornadoOps extends Ops {
    private final TornadoDevice device;
    private final Map<Key, TornadoExecutionPlan> plans = new HashMap<>();
    private final List<TornadoExecutionPlan> all = new ArrayList<>();
    private int graphs;

    public TornadoOps(TornadoDevice device) {
        this.device = device;
    }

    public TornadoDevice device() {
        return device;
    }

    @Override
    public String toString() {
        return device.getPhysicalDevice().getDeviceName() + " via " + device.getTornadoVMBackend();
    }

    /** Compiled graphs so far (one per distinct call). */
    public int graphCount() {
        return graphs;
    }

    /** A call's identity: the kernel, its arrays (by reference) and its scalars (by value). */
    private record Key(String kernel, Object[] arrays, Object[] scalars) {
        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Key k) || !k.kernel.equals(kernel) || k.arrays.length != arrays.length) {
                return false;
            }
            for (int i = 0; i < arrays.length; i++) {
                if (k.arrays[i] != arrays[i]) {
                    return false;
                }
            }
            return Arrays.equals(k.scalars, scalars);
        }

        @Override
        public int hashCode() {
            int h = kernel.hashCode();
            for (Object a : arrays) {
                h = 31 * h + System.identityHashCode(a);
            }
            return 31 * h + Arrays.hashCode(scalars);
        }
    }

    private static Object[] arrays(Object... a) {
        return a;
    }

    /** Runs one kernel call on the device, building and compiling its graph on first use. */
    private void run(String kernel, UnaryOperator<TaskGraph> task, Object[] arrays, Object... scalars) {
        Key key = new Key(kernel, arrays, scalars);
        TornadoExecutionPlan plan = plans.get(key);
        if (plan == null) {
            TaskGraph g = new TaskGraph("g" + graphs++ + "_" + kernel)
                    .transferToDevice(DataTransferMode.EVERY_EXECUTION, arrays);
            g = task.apply(g).transferToHost(DataTransferMode.EVERY_EXECUTION, arrays);
            ImmutableTaskGraph snapshot = g.snapshot();
            plan = new TornadoExecutionPlan(snapshot).withDevice(device);
            plans.put(key, plan);
            all.add(plan);
        }
        try {
            plan.execute();
        } catch (RuntimeException e) {
            throw TornadoSupport.failure(kernel, device, e);
        }
    }

    /** Frees the device memory of every graph. */
    public void close() {
        for (TornadoExecutionPlan p : all) {
            try {
                p.close();
            } catch (Exception ignored) {
                // best effort: the JVM is usually exiting
            }
        }
        plans.clear();
        all.clear();
    }

    // ------------------------------------------------------------------ the kernels, on the device

    @Override
    public void attentionBackwardKeyValue(float[] dk, float[] dv, float[] workScores, float[] att, float[] q, float[] dout, int B, int T, int C, int H) {
        run("attentionBackwardKeyValue", g -> g.task("attentionBackwardKeyValue", Attention::attentionBackwardKeyValue, dk, dv, workScores, att, q, dout, B, T, C, H), arrays(dk, dv, workScores, att, q, dout), B, T, C, H);
    }

    @Override
    public void attentionBackwardQuery(float[] dq, float[] workScores, float[] k, int B, int T, int C, int H) {
        run("attentionBackwardQuery", g -> g.task("attentionBackwardQuery", Attention::attentionBackwardQuery, dq, workScores, k, B, T, C, H), arrays(dq, workScores, k), B, T, C, H);
    }

    @Override
    public void attentionBackwardScores(float[] workScores, float[] dout, float[] att, float[] v, int B, int T, int C, int H) {
        run("attentionBackwardScores", g -> g.task("attentionBackwardScores", Attention::attentionBackwardScores, workScores, dout, att, v, B, T, C, H), arrays(workScores, dout, att, v), B, T, C, H);
    }

    @Override
    public void attentionForward(float[] out, float[] att, float[] q, float[] k, float[] v, int B, int T, int C, int H) {
        run("attentionForward", g -> g.task("attentionForward", Attention::attentionForward, out, att, q, k, v, B, T, C, H), arrays(out, att, q, k, v), B, T, C, H);
    }

    @Override
    public void crossEntropyBackward(float[] dlogits, float[] probs, int[] targets, float dloss, int N, int V) {
        run("crossEntropyBackward", g -> g.task("crossEntropyBackward", CrossEntropy::crossEntropyBackward, dlogits, probs, targets, dloss, N, V), arrays(dlogits, probs, targets), dloss, N, V);
    }

    @Override
    public void crossEntropyForward(float[] losses, float[] probs, float[] logits, int[] targets, int N, int V) {
        run("crossEntropyForward", g -> g.task("crossEntropyForward", CrossEntropy::crossEntropyForward, losses, probs, logits, targets, N, V), arrays(losses, probs, logits, targets), N, V);
    }

    @Override
    public void embeddingBackward(float[] dembed, float[] dx, int[] tokens, int N, int n, int C) {
        run("embeddingBackward", g -> g.task("embeddingBackward", Embedding::embeddingBackward, dembed, dx, tokens, N, n, C), arrays(dembed, dx, tokens), N, n, C);
    }

    @Override
    public void embeddingForward(float[] x, int[] tokens, float[] embed, int N, int n, int C) {
        run("embeddingForward", g -> g.task("embeddingForward", Embedding::embeddingForward, x, tokens, embed, N, n, C), arrays(x, tokens, embed), N, n, C);
    }

    @Override
    public void hcCoeffBackwardDots(float[] workPre, float[] workPost, float[] workRes, float[] dhpre, float[] dhpost, float[] dhres, float[] tpre, float[] tpost, float[] tres, float[] scale, int N, int n) {
        run("hcCoeffBackwardDots", g -> g.task("hcCoeffBackwardDots", HyperConn::hcCoeffBackwardDots, workPre, workPost, workRes, dhpre, dhpost, dhres, tpre, tpost, tres, scale, N, n), arrays(workPre, workPost, workRes, dhpre, dhpost, dhres, tpre, tpost, tres, scale), N, n);
    }

    @Override
    public void hcCoeffBackwardInput(float[] dxbar, float[] workPre, float[] workPost, float[] workRes, float[] wPre, float[] wPost, float[] wRes, int N, int n, int C) {
        run("hcCoeffBackwardInput", g -> g.task("hcCoeffBackwardInput", HyperConn::hcCoeffBackwardInput, dxbar, workPre, workPost, workRes, wPre, wPost, wRes, N, n, C), arrays(dxbar, workPre, workPost, workRes, wPre, wPost, wRes), N, n, C);
    }

    @Override
    public void hcCoeffBackwardStatic(float[] dpre, float[] dpost, float[] dres, float[] dscale, float[] dhpre, float[] dhpost, float[] dhres, float[] tpre, float[] tpost, float[] tres, int N, int n) {
        run("hcCoeffBackwardStatic", g -> g.task("hcCoeffBackwardStatic", HyperConn::hcCoeffBackwardStatic, dpre, dpost, dres, dscale, dhpre, dhpost, dhres, tpre, tpost, tres, N, n), arrays(dpre, dpost, dres, dscale, dhpre, dhpost, dhres, tpre, tpost, tres), N, n);
    }

    @Override
    public void hcCoeffBackwardWeights(float[] dwPre, float[] dwPost, float[] dwRes, float[] workPre, float[] workPost, float[] workRes, float[] xbar, int N, int n, int C) {
        run("hcCoeffBackwardWeights", g -> g.task("hcCoeffBackwardWeights", HyperConn::hcCoeffBackwardWeights, dwPre, dwPost, dwRes, workPre, workPost, workRes, xbar, N, n, C), arrays(dwPre, dwPost, dwRes, workPre, workPost, workRes, xbar), N, n, C);
    }

    @Override
    public void hcCoeffForward(float[] hpre, float[] hpost, float[] hres, float[] tpre, float[] tpost, float[] tres, float[] xbar, float[] wPre, float[] wPost, float[] wRes, float[] pre, float[] post, float[] res, float[] scale, int N, int n, int C) {
        run("hcCoeffForward", g -> g.task("hcCoeffForward", HyperConn::hcCoeffForward, hpre, hpost, hres, tpre, tpost, tres, xbar, wPre, wPost, wRes, pre, post, res, scale, N, n, C), arrays(hpre, hpost, hres, tpre, tpost, tres, xbar, wPre, wPost, wRes, pre, post, res, scale), N, n, C);
    }

    @Override
    public void matmulBackwardInput(float[] dinp, float[] dout, float[] w, int wOff, int N, int IN, int OUT) {
        run("matmulBackwardInput", g -> g.task("matmulBackwardInput", Matmul::matmulBackwardInput, dinp, dout, w, wOff, N, IN, OUT), arrays(dinp, dout, w), wOff, N, IN, OUT);
    }

    @Override
    public void matmulBackwardWeight(float[] dw, float[] inp, float[] dout, int wOff, int N, int IN, int OUT) {
        run("matmulBackwardWeight", g -> g.task("matmulBackwardWeight", Matmul::matmulBackwardWeight, dw, inp, dout, wOff, N, IN, OUT), arrays(dw, inp, dout), wOff, N, IN, OUT);
    }

    @Override
    public void matmulForward(float[] out, float[] inp, float[] w, int wOff, int N, int IN, int OUT) {
        run("matmulForward", g -> g.task("matmulForward", Matmul::matmulForward, out, inp, w, wOff, N, IN, OUT), arrays(out, inp, w), wOff, N, IN, OUT);
    }

    @Override
    public void mhcCoeffBackward(float[] dh, float[] drms, float[] workDz, float[] dhpre, float[] dhpost, float[] dzres, float[] hpre, float[] hpost, float[] h, float[] rms, float[] alpha, int N, int n) {
        run("mhcCoeffBackward", g -> g.task("mhcCoeffBackward", Mhc::mhcCoeffBackward, dh, drms, workDz, dhpre, dhpost, dzres, hpre, hpost, h, rms, alpha, N, n), arrays(dh, drms, workDz, dhpre, dhpost, dzres, hpre, hpost, h, rms, alpha), N, n);
    }

    @Override
    public void mhcCoeffForward(float[] hpre, float[] hpost, float[] zres, float[] h, float[] rms, float[] alpha, float[] bias, int N, int n) {
        run("mhcCoeffForward", g -> g.task("mhcCoeffForward", Mhc::mhcCoeffForward, hpre, hpost, zres, h, rms, alpha, bias, N, n), arrays(hpre, hpost, zres, h, rms, alpha, bias), N, n);
    }

    @Override
    public void mhcCoeffParamBackward(float[] dalpha, float[] dbias, float[] workDz, float[] h, float[] rms, int N, int n) {
        run("mhcCoeffParamBackward", g -> g.task("mhcCoeffParamBackward", Mhc::mhcCoeffParamBackward, dalpha, dbias, workDz, h, rms, N, n), arrays(dalpha, dbias, workDz, h, rms), N, n);
    }

    @Override
    public void rmsBackward(float[] dv, float[] drms, float[] v, float[] rms, int N, int K) {
        run("rmsBackward", g -> g.task("rmsBackward", Mhc::rmsBackward, dv, drms, v, rms, N, K), arrays(dv, drms, v, rms), N, K);
    }

    @Override
    public void rmsForward(float[] rms, float[] v, int N, int K) {
        run("rmsForward", g -> g.task("rmsForward", Mhc::rmsForward, rms, v, N, K), arrays(rms, v), N, K);
    }

    @Override
    public void moeAddShared(float[] y, float[] ys, int N, int C) {
        run("moeAddShared", g -> g.task("moeAddShared", Moe::moeAddShared, y, ys, N, C), arrays(y, ys), N, C);
    }

    @Override
    public void moeCombine(float[] y, float[] ye, float[] gates, int[] rows, int[] slots, int off, int cnt, int C, int K) {
        run("moeCombine", g -> g.task("moeCombine", Moe::moeCombine, y, ye, gates, rows, slots, off, cnt, C, K), arrays(y, ye, gates, rows, slots), off, cnt, C, K);
    }

    @Override
    public void moeCombineBackward(float[] dye, float[] dgates, float[] dy, float[] ye, float[] gates, int[] rows, int[] slots, int off, int cnt, int C, int K) {
        run("moeCombineBackward", g -> g.task("moeCombineBackward", Moe::moeCombineBackward, dye, dgates, dy, ye, gates, rows, slots, off, cnt, C, K), arrays(dye, dgates, dy, ye, gates, rows, slots), off, cnt, C, K);
    }

    @Override
    public void moeDispatch(int[] rows, int[] slots, int[] counts, int[] sel, int N, int E, int K) {
        run("moeDispatch", g -> g.task("moeDispatch", Moe::moeDispatch, rows, slots, counts, sel, N, E, K), arrays(rows, slots, counts, sel), N, E, K);
    }

    @Override
    public void moeGather(float[] out, float[] a, int[] rows, int off, int cnt, int C) {
        run("moeGather", g -> g.task("moeGather", Moe::moeGather, out, a, rows, off, cnt, C), arrays(out, a, rows), off, cnt, C);
    }

    @Override
    public void moeGatherBackward(float[] da, float[] dout, int[] rows, int off, int cnt, int C) {
        run("moeGatherBackward", g -> g.task("moeGatherBackward", Moe::moeGatherBackward, da, dout, rows, off, cnt, C), arrays(da, dout, rows), off, cnt, C);
    }

    @Override
    public void moeRouteBackward(float[] dlogits, float[] dgates, float[] scores, float[] gates, int[] sel, int N, int E, int K) {
        run("moeRouteBackward", g -> g.task("moeRouteBackward", Moe::moeRouteBackward, dlogits, dgates, scores, gates, sel, N, E, K), arrays(dlogits, dgates, scores, gates, sel), N, E, K);
    }

    @Override
    public void moeRouteForward(int[] sel, float[] gates, float[] scores, float[] logits, float[] routerBias, int N, int E, int K) {
        run("moeRouteForward", g -> g.task("moeRouteForward", Moe::moeRouteForward, sel, gates, scores, logits, routerBias, N, E, K), arrays(sel, gates, scores, logits, routerBias), N, E, K);
    }

    @Override
    public void rmsnormBackward(float[] dx, float[] dout, float[] x, float[] w, float[] rstd, int N, int C) {
        run("rmsnormBackward", g -> g.task("rmsnormBackward", RmsNorm::rmsnormBackward, dx, dout, x, w, rstd, N, C), arrays(dx, dout, x, w, rstd), N, C);
    }

    @Override
    public void rmsnormForward(float[] out, float[] rstd, float[] x, float[] w, int N, int C) {
        run("rmsnormForward", g -> g.task("rmsnormForward", RmsNorm::rmsnormForward, out, rstd, x, w, N, C), arrays(out, rstd, x, w), N, C);
    }

    @Override
    public void rmsnormWeightBackward(float[] dw, float[] dout, float[] x, float[] rstd, int N, int C) {
        run("rmsnormWeightBackward", g -> g.task("rmsnormWeightBackward", RmsNorm::rmsnormWeightBackward, dw, dout, x, rstd, N, C), arrays(dw, dout, x, rstd), N, C);
    }

    @Override
    public void ropeBackward(float[] dinp, float[] dout, float[] cos, float[] sin, int N, int T, int C, int H) {
        run("ropeBackward", g -> g.task("ropeBackward", Rope::ropeBackward, dinp, dout, cos, sin, N, T, C, H), arrays(dinp, dout, cos, sin), N, T, C, H);
    }

    @Override
    public void ropeForward(float[] out, float[] inp, float[] cos, float[] sin, int N, int T, int C, int H) {
        run("ropeForward", g -> g.task("ropeForward", Rope::ropeForward, out, inp, cos, sin, N, T, C, H), arrays(out, inp, cos, sin), N, T, C, H);
    }

    @Override
    public void sinkhornBackward(float[] dz, float[] dout, float[] z, float[] work, int N, int n, int iters) {
        run("sinkhornBackward", g -> g.task("sinkhornBackward", Sinkhorn::sinkhornBackward, dz, dout, z, work, N, n, iters), arrays(dz, dout, z, work), N, n, iters);
    }

    @Override
    public void sinkhornForward(float[] out, float[] z, int N, int n, int iters) {
        run("sinkhornForward", g -> g.task("sinkhornForward", Sinkhorn::sinkhornForward, out, z, N, n, iters), arrays(out, z), N, n, iters);
    }

    @Override
    public void aggregateBackwardCoeffs(float[] dhpre, float[] du, float[] x, int N, int n, int C) {
        run("aggregateBackwardCoeffs", g -> g.task("aggregateBackwardCoeffs", Streams::aggregateBackwardCoeffs, dhpre, du, x, N, n, C), arrays(dhpre, du, x), N, n, C);
    }

    @Override
    public void aggregateBackwardStreams(float[] dx, float[] du, float[] hpre, int N, int n, int C) {
        run("aggregateBackwardStreams", g -> g.task("aggregateBackwardStreams", Streams::aggregateBackwardStreams, dx, du, hpre, N, n, C), arrays(dx, du, hpre), N, n, C);
    }

    @Override
    public void aggregateForward(float[] u, float[] x, float[] hpre, int N, int n, int C) {
        run("aggregateForward", g -> g.task("aggregateForward", Streams::aggregateForward, u, x, hpre, N, n, C), arrays(u, x, hpre), N, n, C);
    }

    @Override
    public void collapseBackward(float[] dx, float[] du, int N, int n, int C) {
        run("collapseBackward", g -> g.task("collapseBackward", Streams::collapseBackward, dx, du, N, n, C), arrays(dx, du), N, n, C);
    }

    @Override
    public void collapseForward(float[] u, float[] x, int N, int n, int C) {
        run("collapseForward", g -> g.task("collapseForward", Streams::collapseForward, u, x, N, n, C), arrays(u, x), N, n, C);
    }

    @Override
    public void mixBackwardCoeffs(float[] dhres, float[] dhpost, float[] dxout, float[] x, float[] y, int N, int n, int C) {
        run("mixBackwardCoeffs", g -> g.task("mixBackwardCoeffs", Streams::mixBackwardCoeffs, dhres, dhpost, dxout, x, y, N, n, C), arrays(dhres, dhpost, dxout, x, y), N, n, C);
    }

    @Override
    public void mixBackwardStreams(float[] dx, float[] dy, float[] dxout, float[] hres, float[] hpost, int N, int n, int C) {
        run("mixBackwardStreams", g -> g.task("mixBackwardStreams", Streams::mixBackwardStreams, dx, dy, dxout, hres, hpost, N, n, C), arrays(dx, dy, dxout, hres, hpost), N, n, C);
    }

    @Override
    public void mixForward(float[] xout, float[] x, float[] hres, float[] hpost, float[] y, int N, int n, int C) {
        run("mixForward", g -> g.task("mixForward", Streams::mixForward, xout, x, hres, hpost, y, N, n, C), arrays(xout, x, hres, hpost, y), N, n, C);
    }

    @Override
    public void swigluBackward(float[] dh1, float[] dh3, float[] dout, float[] h1, float[] h3, int N, int F) {
        run("swigluBackward", g -> g.task("swigluBackward", SwiGlu::swigluBackward, dh1, dh3, dout, h1, h3, N, F), arrays(dh1, dh3, dout, h1, h3), N, F);
    }

    @Override
    public void swigluForward(float[] out, float[] h1, float[] h3, int N, int F) {
        run("swigluForward", g -> g.task("swigluForward", SwiGlu::swigluForward, out, h1, h3, N, F), arrays(out, h1, h3), N, F);
    }
}
