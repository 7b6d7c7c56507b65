package mhc.engine.tornado;

import mhc.kernels.AdamW;
import mhc.kernels.Attention;
import mhc.kernels.CrossEntropy;
import mhc.kernels.Embedding;
import mhc.kernels.Fill;
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
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.IdentityHashMap;
import java.util.function.BiFunction;

/**
 * Every kernel of the model run by TornadoVM on one device. The same plain kernels as the JVM
 * path, except the linear maps, which run in {@link TiledMatmul}'s local-memory form (checked
 * against the plain kernels by the device tests). Two ways to run:
 * <ul>
 *   <li>Call by call: each distinct call (kernel, arrays, sizes) becomes a one-task graph,
 *       compiled on first use and cached, that copies its arrays to the device, runs, and
 *       copies them back.</li>
 *   <li>Captured ({@link #beginCapture} .. {@link #endCapture}, then {@link #replay}): a whole
 *       forward and backward pass recorded once and replayed as a chain of graphs in one
 *       execution plan, with the arrays kept on the device between kernels (training steps,
 *       through {@code Model.trainPass}, which adds the optimizer to the pass and keeps
 *       parameters and moments on the device).</li>
 * </ul>
 *
 * <p>Scalar arguments are compiled into the kernel, so a graph belongs to one shape; the
 * model reuses its buffers from step to step, so after the first step every call finds its
 * graph in the cache, and a captured pass is replayed as long as the shape stays.
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

    /** A kernel call recorded between {@link #beginCapture} and {@link #endCapture}. */
    private record Call(String kernel, BiFunction<TaskGraph, String, TaskGraph> task, Object[] arrays, WorkerGrid grid) {
    }

    private List<Call> capturing;
    private TornadoExecutionPlan capturedPlan;
    private int capturedGraphs;

    /**
     * Runs one kernel call on the device, building and compiling its graph on first use; while
     * capturing, records it instead. {@code task} adds the kernel to a graph as a task of the
     * given name.
     */
    private void run(String kernel, BiFunction<TaskGraph, String, TaskGraph> task, Object[] arrays, Object... scalars) {
        runOnGrid(kernel, task, arrays, null, scalars);
    }

    /** {@link #run} with an explicit grid (null: TornadoVM's default for the parallel loops). */
    private void runOnGrid(String kernel, BiFunction<TaskGraph, String, TaskGraph> task, Object[] arrays, WorkerGrid grid, Object... scalars) {
        if (capturing != null) {
            capturing.add(new Call(scope + "_" + kernel, task, arrays, grid));
            return;
        }
        Key key = new Key(kernel, arrays, scalars);
        TornadoExecutionPlan plan = plans.get(key);
        if (plan == null) {
            String name = "g" + graphs++ + "_" + kernel;
            TaskGraph g = new TaskGraph(name)
                    .transferToDevice(DataTransferMode.EVERY_EXECUTION, arrays);
            g = task.apply(g, kernel).transferToHost(DataTransferMode.EVERY_EXECUTION, arrays);
            ImmutableTaskGraph snapshot = g.snapshot();
            plan = new TornadoExecutionPlan(snapshot).withDevice(device);
            if (grid != null) {
                plan.withGridScheduler(new GridScheduler(name + "." + kernel, grid));
            }
            plans.put(key, plan);
            all.add(plan);
        }
        try {
            plan.execute();
        } catch (RuntimeException e) {
            throw TornadoSupport.failure(kernel, device, e);
        }
    }

    // ------------------------------------------------------------------ capture and replay

    /** The model part of the calls being recorded, in task names (dots as underscores). */
    private String scope = "model";

    @Override
    public void scope(String part) {
        scope = part.replace('.', '_');
    }

    /** True unless {@code -Dmhc.tornado.capture=false} (every call then runs on its own, as before a capture). */
    @Override
    public boolean canCapture() {
        return !"false".equals(System.getProperty("mhc.tornado.capture"));
    }

    @Override
    public void beginCapture() {
        capturing = new ArrayList<>();
    }

    /**
     * Kernel calls per graph of a captured pass. A TornadoVM graph encodes its tasks and
     * transfers in a fixed 8 KB buffer (TornadoTaskGraph), which a whole pass (over a hundred
     * kernels) overflows, so the pass is cut into graphs of this many calls, run in order from
     * one execution plan, where they share their device buffers.
     */
    static final int CALLS_PER_GRAPH = 8;

    /** What the last {@link #endCapture} recorded, kept to rebuild the plan ({@link #residentChanged}). */
    private List<Call> capturedCallList;
    private Object[] capturedIn, capturedOut, capturedResident;
    private boolean rebuild;
    /** Per graph of the captured plan: its resident arrays to copy back on demand, and its last result. */
    private Object[][] pullable;
    private TornadoExecutionResult[] lastResults;

    /**
     * Builds the recorded calls, in order, into graphs of {@link #CALLS_PER_GRAPH} tasks named
     * after the model ({@code t17_blocks_0_attn_matmulForward}), in one execution plan. Device
     * residency: an array is copied to the device by the first graph that uses it (before every
     * execution if it is in {@code in}, before the first otherwise), handed from graph to graph
     * on the device ({@code persistOnDevice}, {@code consumeFromDevice}) while a later graph
     * needs it, and, if it is in {@code out}, copied back by the last graph that uses it. That
     * graph must write it: TornadoVM skips copying back an array its graph only reads (the
     * model's outputs, losses and gradients, are written by their last kernel). A
     * {@code resident} array is copied in by the first execution only and copied back, on
     * demand ({@link #pullResident}), by the last graph that uses it; between executions it
     * keeps its device buffer (TornadoVM locks the buffers of transferred arrays), which the
     * relay shares with every graph of the pass. Compiled on the first {@link #replay}.
     */
    @Override
    public void endCapture(Object[] in, Object[] out, Object[] resident) {
        capturedCallList = capturing;
        capturing = null;
        capturedIn = in;
        capturedOut = out;
        capturedResident = resident;
        build();
    }

    private void build() {
        List<Call> calls = capturedCallList;
        rebuild = false;
        if (capturedPlan != null) {
            all.remove(capturedPlan);
            try {
                capturedPlan.close();
            } catch (Exception ignored) {
                // its device memory is freed with the plan in any case
            }
            capturedPlan = null;
        }
        IdentityHashMap<Object, Boolean> every = new IdentityHashMap<>();
        for (Object a : capturedIn) {
            every.put(a, true);
        }
        IdentityHashMap<Object, Boolean> toHost = new IdentityHashMap<>();
        for (Object a : capturedOut) {
            toHost.put(a, true);
        }
        IdentityHashMap<Object, Boolean> resident = new IdentityHashMap<>();
        for (Object a : capturedResident) {
            resident.put(a, true);
        }
        int graphsInPass = (calls.size() + CALLS_PER_GRAPH - 1) / CALLS_PER_GRAPH;
        // the last graph that uses each array
        IdentityHashMap<Object, Integer> lastUse = new IdentityHashMap<>();
        for (int i = 0; i < calls.size(); i++) {
            for (Object a : calls.get(i).arrays()) {
                lastUse.put(a, i / CALLS_PER_GRAPH);
            }
        }
        String prefix = "pass" + graphs++ + "_";
        // The arrays on the device after the previous graph, in first-use order. Each graph
        // takes all of them from its predecessor and hands on those still needed: TornadoVM
        // 5.2 fails (a null device buffer) when a graph consumes from two graphs, so device
        // arrays are relayed from graph to graph, used or not.
        List<Object> live = new ArrayList<>();
        GridScheduler grids = new GridScheduler();
        int gridTasks = 0;
        ImmutableTaskGraph[] snapshots = new ImmutableTaskGraph[graphsInPass];
        pullable = new Object[graphsInPass][];
        lastResults = new TornadoExecutionResult[graphsInPass];
        for (int gi = 0; gi < graphsInPass; gi++) {
            String name = prefix + gi;
            int from = gi * CALLS_PER_GRAPH, to = Math.min(calls.size(), from + CALLS_PER_GRAPH);
            IdentityHashMap<Object, Boolean> onDevice = new IdentityHashMap<>();
            for (Object a : live) {
                onDevice.put(a, true);
            }
            List<Object> everyRun = new ArrayList<>(), firstRun = new ArrayList<>(), back = new ArrayList<>();
            List<Object> fresh = new ArrayList<>(), pull = new ArrayList<>();
            IdentityHashMap<Object, Boolean> seen = new IdentityHashMap<>();
            for (int i = from; i < to; i++) {
                for (Object a : calls.get(i).arrays()) {
                    if (seen.put(a, true) != null) {
                        continue;
                    }
                    if (!onDevice.containsKey(a)) {
                        fresh.add(a);
                        (every.containsKey(a) ? everyRun : firstRun).add(a);
                    }
                    if (lastUse.get(a) == gi && toHost.containsKey(a)) {
                        back.add(a);
                    }
                    if (lastUse.get(a) == gi && resident.containsKey(a)) {
                        pull.add(a);
                    }
                }
            }
            List<Object> keep = new ArrayList<>();
            for (Object a : live) {
                if (lastUse.get(a) > gi) {
                    keep.add(a);
                }
            }
            for (Object a : fresh) {
                if (lastUse.get(a) > gi) {
                    keep.add(a);
                }
            }
            TaskGraph g = new TaskGraph(name);
            if (!live.isEmpty()) {
                g = g.consumeFromDevice(prefix + (gi - 1), live.toArray());
            }
            if (!everyRun.isEmpty()) {
                g = g.transferToDevice(DataTransferMode.EVERY_EXECUTION, everyRun.toArray());
            }
            if (!firstRun.isEmpty()) {
                g = g.transferToDevice(DataTransferMode.FIRST_EXECUTION, firstRun.toArray());
            }
            for (int i = from; i < to; i++) {
                Call c = calls.get(i);
                String task = "t" + i + "_" + c.kernel();
                g = c.task().apply(g, task);
                if (c.grid() != null) {
                    grids.addWorkerGrid(name + "." + task, c.grid());
                    gridTasks++;
                }
            }
            if (!keep.isEmpty()) {
                g = g.persistOnDevice(keep.toArray());
            }
            if (!back.isEmpty()) {
                g = g.transferToHost(DataTransferMode.EVERY_EXECUTION, back.toArray());
            }
            if (!pull.isEmpty()) {
                g = g.transferToHost(DataTransferMode.UNDER_DEMAND, pull.toArray());
                pullable[gi] = pull.toArray();
            }
            live = keep;
            snapshots[gi] = g.snapshot();
        }
        capturedPlan = new TornadoExecutionPlan(snapshots).withDevice(device);
        if (gridTasks > 0) {
            capturedPlan.withGridScheduler(grids); // TornadoVM refuses an empty one
        }
        all.add(capturedPlan);
        capturedGraphs = graphsInPass;
    }

    @Override
    public void replay() {
        if (capturedPlan == null) {
            throw new IllegalStateException("replay() before a capture");
        }
        if (rebuild) {
            build();
        }
        try {
            for (int i = 0; i < capturedGraphs; i++) {
                lastResults[i] = capturedPlan.withGraph(i).execute();
            }
        } catch (RuntimeException e) {
            throw TornadoSupport.failure("the captured pass (" + capturedCallList.size() + " kernels)", device, e);
        }
    }

    @Override
    public void pullResident() {
        if (capturedPlan == null || rebuild) {
            return; // the device holds nothing newer than the host
        }
        try {
            for (int i = 0; i < capturedGraphs; i++) {
                if (pullable[i] != null && lastResults[i] != null) {
                    // a result copies back through the graphs the plan has selected
                    capturedPlan.withGraph(i);
                    lastResults[i].transferToHost(pullable[i]);
                }
            }
        } catch (RuntimeException e) {
            throw TornadoSupport.failure("copying the parameters and optimizer state back", device, e);
        }
    }

    @Override
    public void residentChanged() {
        if (capturedPlan != null) {
            rebuild = true; // a new plan copies every array in again on its first execution
        }
    }

    /**
     * On the device while capturing (the array lives there); otherwise on the host, since a
     * call-by-call kernel copies its arrays from the host anyway.
     */
    @Override
    public void zero(float[] a, int size) {
        if (capturing == null) {
            super.zero(a, size);
            return;
        }
        run("zero", (g, id) -> g.task(id, Fill::zero, a, size), arrays(a), size);
    }

    /** Frees the device memory of every graph. */
    @Override
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

    /** On the device, call by call (the benchmark's line); training runs it on the host or inside the captured step. */
    @Override
    public void adamwUpdate(float[] param, float[] grad, float[] m, float[] v, float lr, float beta1, float beta2, float eps, float weightDecay, float gradScale, float bc1, float bc2, int size) {
        run("adamwUpdate", (g, id) -> g.task(id, AdamW::adamwUpdate, param, grad, m, v, lr, beta1, beta2, eps, weightDecay, gradScale, bc1, bc2, size), arrays(param, grad, m, v), lr, beta1, beta2, eps, weightDecay, gradScale, bc1, bc2, size);
    }

    @Override
    public void adamwUpdateScheduled(float[] param, float[] grad, float[] m, float[] v, float[] hp, float beta1, float beta2, float eps, float weightDecay, int size) {
        run("adamwUpdateScheduled", (g, id) -> g.task(id, AdamW::adamwUpdateScheduled, param, grad, m, v, hp, beta1, beta2, eps, weightDecay, size), arrays(param, grad, m, v, hp), beta1, beta2, eps, weightDecay, size);
    }

    @Override
    public void sumOfSquares(float[] partials, float[] x, int slot, int size, int parts) {
        run("sumOfSquares", (g, id) -> g.task(id, AdamW::sumOfSquares, partials, x, slot, size, parts), arrays(partials, x), slot, size, parts);
    }

    @Override
    public void clipScale(float[] stats, float[] hp, float[] partials, float[] losses, int count, int N, float clip) {
        run("clipScale", (g, id) -> g.task(id, AdamW::clipScale, stats, hp, partials, losses, count, N, clip), arrays(stats, hp, partials, losses), count, N, clip);
    }

    @Override
    public void attentionBackwardKeyValue(float[] dk, float[] dv, float[] workScores, float[] att, float[] q, float[] dout, int B, int T, int C, int H) {
        run("attentionBackwardKeyValue", (g, id) -> g.task(id, Attention::attentionBackwardKeyValue, dk, dv, workScores, att, q, dout, B, T, C, H), arrays(dk, dv, workScores, att, q, dout), B, T, C, H);
    }

    @Override
    public void attentionBackwardQuery(float[] dq, float[] workScores, float[] k, int B, int T, int C, int H) {
        run("attentionBackwardQuery", (g, id) -> g.task(id, Attention::attentionBackwardQuery, dq, workScores, k, B, T, C, H), arrays(dq, workScores, k), B, T, C, H);
    }

    @Override
    public void attentionBackwardScores(float[] workScores, float[] dout, float[] att, float[] v, int B, int T, int C, int H) {
        run("attentionBackwardScores", (g, id) -> g.task(id, Attention::attentionBackwardScores, workScores, dout, att, v, B, T, C, H), arrays(workScores, dout, att, v), B, T, C, H);
    }

    @Override
    public void attentionForward(float[] out, float[] att, float[] q, float[] k, float[] v, int B, int T, int C, int H) {
        run("attentionForward", (g, id) -> g.task(id, Attention::attentionForward, out, att, q, k, v, B, T, C, H), arrays(out, att, q, k, v), B, T, C, H);
    }

    @Override
    public void crossEntropyBackward(float[] dlogits, float[] probs, int[] targets, float dloss, int N, int V) {
        run("crossEntropyBackward", (g, id) -> g.task(id, CrossEntropy::crossEntropyBackward, dlogits, probs, targets, dloss, N, V), arrays(dlogits, probs, targets), dloss, N, V);
    }

    @Override
    public void crossEntropyForward(float[] losses, float[] probs, float[] logits, int[] targets, int N, int V) {
        run("crossEntropyForward", (g, id) -> g.task(id, CrossEntropy::crossEntropyForward, losses, probs, logits, targets, N, V), arrays(losses, probs, logits, targets), N, V);
    }

    @Override
    public void embeddingBackward(float[] dembed, float[] dx, int[] tokens, int N, int n, int C) {
        run("embeddingBackward", (g, id) -> g.task(id, Embedding::embeddingBackward, dembed, dx, tokens, N, n, C), arrays(dembed, dx, tokens), N, n, C);
    }

    @Override
    public void embeddingForward(float[] x, int[] tokens, float[] embed, int N, int n, int C) {
        run("embeddingForward", (g, id) -> g.task(id, Embedding::embeddingForward, x, tokens, embed, N, n, C), arrays(x, tokens, embed), N, n, C);
    }

    @Override
    public void hcCoeffBackwardDots(float[] workPre, float[] workPost, float[] workRes, float[] dhpre, float[] dhpost, float[] dhres, float[] tpre, float[] tpost, float[] tres, float[] scale, int N, int n) {
        run("hcCoeffBackwardDots", (g, id) -> g.task(id, HyperConn::hcCoeffBackwardDots, workPre, workPost, workRes, dhpre, dhpost, dhres, tpre, tpost, tres, scale, N, n), arrays(workPre, workPost, workRes, dhpre, dhpost, dhres, tpre, tpost, tres, scale), N, n);
    }

    @Override
    public void hcCoeffBackwardInput(float[] dxbar, float[] workPre, float[] workPost, float[] workRes, float[] wPre, float[] wPost, float[] wRes, int N, int n, int C) {
        run("hcCoeffBackwardInput", (g, id) -> g.task(id, HyperConn::hcCoeffBackwardInput, dxbar, workPre, workPost, workRes, wPre, wPost, wRes, N, n, C), arrays(dxbar, workPre, workPost, workRes, wPre, wPost, wRes), N, n, C);
    }

    @Override
    public void hcCoeffBackwardStatic(float[] dpre, float[] dpost, float[] dres, float[] dscale, float[] dhpre, float[] dhpost, float[] dhres, float[] tpre, float[] tpost, float[] tres, int N, int n) {
        run("hcCoeffBackwardStatic", (g, id) -> g.task(id, HyperConn::hcCoeffBackwardStatic, dpre, dpost, dres, dscale, dhpre, dhpost, dhres, tpre, tpost, tres, N, n), arrays(dpre, dpost, dres, dscale, dhpre, dhpost, dhres, tpre, tpost, tres), N, n);
    }

    @Override
    public void hcCoeffBackwardWeights(float[] dwPre, float[] dwPost, float[] dwRes, float[] workPre, float[] workPost, float[] workRes, float[] xbar, int N, int n, int C) {
        run("hcCoeffBackwardWeights", (g, id) -> g.task(id, HyperConn::hcCoeffBackwardWeights, dwPre, dwPost, dwRes, workPre, workPost, workRes, xbar, N, n, C), arrays(dwPre, dwPost, dwRes, workPre, workPost, workRes, xbar), N, n, C);
    }

    @Override
    public void hcCoeffForward(float[] hpre, float[] hpost, float[] hres, float[] tpre, float[] tpost, float[] tres, float[] xbar, float[] wPre, float[] wPost, float[] wRes, float[] pre, float[] post, float[] res, float[] scale, int N, int n, int C) {
        run("hcCoeffForward", (g, id) -> g.task(id, HyperConn::hcCoeffForward, hpre, hpost, hres, tpre, tpost, tres, xbar, wPre, wPost, wRes, pre, post, res, scale, N, n, C), arrays(hpre, hpost, hres, tpre, tpost, tres, xbar, wPre, wPost, wRes, pre, post, res, scale), N, n, C);
    }

    /**
     * The linear maps run as {@link TiledMatmul}'s local-memory tiled kernels on an explicit
     * grid, unless {@code -Dmhc.tornado.matmul=plain} asks for the plain kernels of
     * {@code Matmul} on TornadoVM's default grid (for comparison).
     */
    private static final boolean TILED = !"plain".equals(System.getProperty("mhc.tornado.matmul"));

    @Override
    public void matmulBackwardInput(float[] dinp, float[] dout, float[] w, int wOff, int N, int IN, int OUT) {
        if (TILED) {
            KernelContext ctx = new KernelContext();
            runOnGrid("matmulBackwardInputTiled", (g, id) -> g.task(id, TiledMatmul::matmulBackwardInput, ctx, dinp, dout, w, wOff, N, IN, OUT), arrays(dinp, dout, w), TiledMatmul.grid(N, IN), wOff, N, IN, OUT);
            return;
        }
        run("matmulBackwardInput", (g, id) -> g.task(id, Matmul::matmulBackwardInput, dinp, dout, w, wOff, N, IN, OUT), arrays(dinp, dout, w), wOff, N, IN, OUT);
    }

    @Override
    public void matmulBackwardWeight(float[] dw, float[] inp, float[] dout, int wOff, int N, int IN, int OUT) {
        if (TILED) {
            KernelContext ctx = new KernelContext();
            runOnGrid("matmulBackwardWeightTiled", (g, id) -> g.task(id, TiledMatmul::matmulBackwardWeight, ctx, dw, inp, dout, wOff, N, IN, OUT), arrays(dw, inp, dout), TiledMatmul.grid(IN, OUT), wOff, N, IN, OUT);
            return;
        }
        run("matmulBackwardWeight", (g, id) -> g.task(id, Matmul::matmulBackwardWeight, dw, inp, dout, wOff, N, IN, OUT), arrays(dw, inp, dout), wOff, N, IN, OUT);
    }

    @Override
    public void matmulForward(float[] out, float[] inp, float[] w, int wOff, int N, int IN, int OUT) {
        if (TILED) {
            KernelContext ctx = new KernelContext();
            runOnGrid("matmulForwardTiled", (g, id) -> g.task(id, TiledMatmul::matmulForward, ctx, out, inp, w, wOff, N, IN, OUT), arrays(out, inp, w), TiledMatmul.grid(N, OUT), wOff, N, IN, OUT);
            return;
        }
        run("matmulForward", (g, id) -> g.task(id, Matmul::matmulForward, out, inp, w, wOff, N, IN, OUT), arrays(out, inp, w), wOff, N, IN, OUT);
    }

    @Override
    public void mhcCoeffBackward(float[] dh, float[] drms, float[] workDz, float[] dhpre, float[] dhpost, float[] dzres, float[] hpre, float[] hpost, float[] h, float[] rms, float[] alpha, int N, int n) {
        run("mhcCoeffBackward", (g, id) -> g.task(id, Mhc::mhcCoeffBackward, dh, drms, workDz, dhpre, dhpost, dzres, hpre, hpost, h, rms, alpha, N, n), arrays(dh, drms, workDz, dhpre, dhpost, dzres, hpre, hpost, h, rms, alpha), N, n);
    }

    @Override
    public void mhcCoeffForward(float[] hpre, float[] hpost, float[] zres, float[] h, float[] rms, float[] alpha, float[] bias, int N, int n) {
        run("mhcCoeffForward", (g, id) -> g.task(id, Mhc::mhcCoeffForward, hpre, hpost, zres, h, rms, alpha, bias, N, n), arrays(hpre, hpost, zres, h, rms, alpha, bias), N, n);
    }

    @Override
    public void mhcCoeffParamBackward(float[] dalpha, float[] dbias, float[] workDz, float[] h, float[] rms, int N, int n) {
        run("mhcCoeffParamBackward", (g, id) -> g.task(id, Mhc::mhcCoeffParamBackward, dalpha, dbias, workDz, h, rms, N, n), arrays(dalpha, dbias, workDz, h, rms), N, n);
    }

    @Override
    public void rmsBackward(float[] dv, float[] drms, float[] v, float[] rms, int N, int K) {
        run("rmsBackward", (g, id) -> g.task(id, Mhc::rmsBackward, dv, drms, v, rms, N, K), arrays(dv, drms, v, rms), N, K);
    }

    @Override
    public void rmsForward(float[] rms, float[] v, int N, int K) {
        run("rmsForward", (g, id) -> g.task(id, Mhc::rmsForward, rms, v, N, K), arrays(rms, v), N, K);
    }

    /** The model takes MoE's packed form here: its sizes do not depend on the routing, so a pass can be captured. */
    @Override
    public boolean prefersFixedShapes() {
        return true;
    }

    @Override
    public void moePack(int[] order, int[] slotOf, int[] expertOf, int[] position, int[] offsets, int[] counts, int[] sel, int N, int E, int K) {
        run("moePack", (g, id) -> g.task(id, Moe::moePack, order, slotOf, expertOf, position, offsets, counts, sel, N, E, K), arrays(order, slotOf, expertOf, position, offsets, counts, sel), N, E, K);
    }

    @Override
    public void moeGatherPacked(float[] out, float[] a, int[] order, int R, int C) {
        run("moeGatherPacked", (g, id) -> g.task(id, Moe::moeGatherPacked, out, a, order, R, C), arrays(out, a, order), R, C);
    }

    @Override
    public void moeGatherBackwardPacked(float[] da, float[] dout, int[] position, int[] sel, int N, int E, int K, int C) {
        run("moeGatherBackwardPacked", (g, id) -> g.task(id, Moe::moeGatherBackwardPacked, da, dout, position, sel, N, E, K, C), arrays(da, dout, position, sel), N, E, K, C);
    }

    @Override
    public void moeCombinePacked(float[] y, float[] ye, float[] gates, int[] position, int[] sel, int N, int E, int K, int C) {
        run("moeCombinePacked", (g, id) -> g.task(id, Moe::moeCombinePacked, y, ye, gates, position, sel, N, E, K, C), arrays(y, ye, gates, position, sel), N, E, K, C);
    }

    @Override
    public void moeCombineBackwardPacked(float[] dye, float[] dgates, float[] dy, float[] ye, float[] gates, int[] order, int[] slotOf, int R, int C, int K) {
        run("moeCombineBackwardPacked", (g, id) -> g.task(id, Moe::moeCombineBackwardPacked, dye, dgates, dy, ye, gates, order, slotOf, R, C, K), arrays(dye, dgates, dy, ye, gates, order, slotOf), R, C, K);
    }

    @Override
    public void matmulForwardGrouped(float[] out, float[] inp, float[] w, int[] expertOf, int R, int IN, int OUT) {
        run("matmulForwardGrouped", (g, id) -> g.task(id, Matmul::matmulForwardGrouped, out, inp, w, expertOf, R, IN, OUT), arrays(out, inp, w, expertOf), R, IN, OUT);
    }

    @Override
    public void matmulBackwardInputGrouped(float[] dinp, float[] dout, float[] w, int[] expertOf, int R, int IN, int OUT) {
        run("matmulBackwardInputGrouped", (g, id) -> g.task(id, Matmul::matmulBackwardInputGrouped, dinp, dout, w, expertOf, R, IN, OUT), arrays(dinp, dout, w, expertOf), R, IN, OUT);
    }

    @Override
    public void matmulBackwardWeightGrouped(float[] dw, float[] inp, float[] dout, int[] offsets, int E, int IN, int OUT) {
        run("matmulBackwardWeightGrouped", (g, id) -> g.task(id, Matmul::matmulBackwardWeightGrouped, dw, inp, dout, offsets, E, IN, OUT), arrays(dw, inp, dout, offsets), E, IN, OUT);
    }

    @Override
    public void moeAddShared(float[] y, float[] ys, int N, int C) {
        run("moeAddShared", (g, id) -> g.task(id, Moe::moeAddShared, y, ys, N, C), arrays(y, ys), N, C);
    }

    @Override
    public void moeCombine(float[] y, float[] ye, float[] gates, int[] rows, int[] slots, int off, int cnt, int C, int K) {
        run("moeCombine", (g, id) -> g.task(id, Moe::moeCombine, y, ye, gates, rows, slots, off, cnt, C, K), arrays(y, ye, gates, rows, slots), off, cnt, C, K);
    }

    @Override
    public void moeCombineBackward(float[] dye, float[] dgates, float[] dy, float[] ye, float[] gates, int[] rows, int[] slots, int off, int cnt, int C, int K) {
        run("moeCombineBackward", (g, id) -> g.task(id, Moe::moeCombineBackward, dye, dgates, dy, ye, gates, rows, slots, off, cnt, C, K), arrays(dye, dgates, dy, ye, gates, rows, slots), off, cnt, C, K);
    }

    @Override
    public void moeDispatch(int[] rows, int[] slots, int[] counts, int[] sel, int N, int E, int K) {
        run("moeDispatch", (g, id) -> g.task(id, Moe::moeDispatch, rows, slots, counts, sel, N, E, K), arrays(rows, slots, counts, sel), N, E, K);
    }

    @Override
    public void moeGather(float[] out, float[] a, int[] rows, int off, int cnt, int C) {
        run("moeGather", (g, id) -> g.task(id, Moe::moeGather, out, a, rows, off, cnt, C), arrays(out, a, rows), off, cnt, C);
    }

    @Override
    public void moeGatherBackward(float[] da, float[] dout, int[] rows, int off, int cnt, int C) {
        run("moeGatherBackward", (g, id) -> g.task(id, Moe::moeGatherBackward, da, dout, rows, off, cnt, C), arrays(da, dout, rows), off, cnt, C);
    }

    @Override
    public void moeRouteBackward(float[] dlogits, float[] dgates, float[] scores, float[] gates, int[] sel, int N, int E, int K) {
        run("moeRouteBackward", (g, id) -> g.task(id, Moe::moeRouteBackward, dlogits, dgates, scores, gates, sel, N, E, K), arrays(dlogits, dgates, scores, gates, sel), N, E, K);
    }

    @Override
    public void moeRouteForward(int[] sel, float[] gates, float[] scores, float[] logits, float[] routerBias, int N, int E, int K) {
        run("moeRouteForward", (g, id) -> g.task(id, Moe::moeRouteForward, sel, gates, scores, logits, routerBias, N, E, K), arrays(sel, gates, scores, logits, routerBias), N, E, K);
    }

    @Override
    public void rmsnormBackward(float[] dx, float[] dout, float[] x, float[] w, float[] rstd, int N, int C) {
        run("rmsnormBackward", (g, id) -> g.task(id, RmsNorm::rmsnormBackward, dx, dout, x, w, rstd, N, C), arrays(dx, dout, x, w, rstd), N, C);
    }

    @Override
    public void rmsnormForward(float[] out, float[] rstd, float[] x, float[] w, int N, int C) {
        run("rmsnormForward", (g, id) -> g.task(id, RmsNorm::rmsnormForward, out, rstd, x, w, N, C), arrays(out, rstd, x, w), N, C);
    }

    @Override
    public void rmsnormWeightBackward(float[] dw, float[] dout, float[] x, float[] rstd, int N, int C) {
        run("rmsnormWeightBackward", (g, id) -> g.task(id, RmsNorm::rmsnormWeightBackward, dw, dout, x, rstd, N, C), arrays(dw, dout, x, rstd), N, C);
    }

    @Override
    public void ropeBackward(float[] dinp, float[] dout, float[] cos, float[] sin, int N, int T, int C, int H) {
        run("ropeBackward", (g, id) -> g.task(id, Rope::ropeBackward, dinp, dout, cos, sin, N, T, C, H), arrays(dinp, dout, cos, sin), N, T, C, H);
    }

    @Override
    public void ropeForward(float[] out, float[] inp, float[] cos, float[] sin, int N, int T, int C, int H) {
        run("ropeForward", (g, id) -> g.task(id, Rope::ropeForward, out, inp, cos, sin, N, T, C, H), arrays(out, inp, cos, sin), N, T, C, H);
    }

    @Override
    public void sinkhornBackward(float[] dz, float[] dout, float[] z, float[] work, int N, int n, int iters) {
        run("sinkhornBackward", (g, id) -> g.task(id, Sinkhorn::sinkhornBackward, dz, dout, z, work, N, n, iters), arrays(dz, dout, z, work), N, n, iters);
    }

    @Override
    public void sinkhornForward(float[] out, float[] z, int N, int n, int iters) {
        run("sinkhornForward", (g, id) -> g.task(id, Sinkhorn::sinkhornForward, out, z, N, n, iters), arrays(out, z), N, n, iters);
    }

    @Override
    public void aggregateBackwardCoeffs(float[] dhpre, float[] du, float[] x, int N, int n, int C) {
        run("aggregateBackwardCoeffs", (g, id) -> g.task(id, Streams::aggregateBackwardCoeffs, dhpre, du, x, N, n, C), arrays(dhpre, du, x), N, n, C);
    }

    @Override
    public void aggregateBackwardStreams(float[] dx, float[] du, float[] hpre, int N, int n, int C) {
        run("aggregateBackwardStreams", (g, id) -> g.task(id, Streams::aggregateBackwardStreams, dx, du, hpre, N, n, C), arrays(dx, du, hpre), N, n, C);
    }

    @Override
    public void aggregateForward(float[] u, float[] x, float[] hpre, int N, int n, int C) {
        run("aggregateForward", (g, id) -> g.task(id, Streams::aggregateForward, u, x, hpre, N, n, C), arrays(u, x, hpre), N, n, C);
    }

    @Override
    public void collapseBackward(float[] dx, float[] du, int N, int n, int C) {
        run("collapseBackward", (g, id) -> g.task(id, Streams::collapseBackward, dx, du, N, n, C), arrays(dx, du), N, n, C);
    }

    @Override
    public void collapseForward(float[] u, float[] x, int N, int n, int C) {
        run("collapseForward", (g, id) -> g.task(id, Streams::collapseForward, u, x, N, n, C), arrays(u, x), N, n, C);
    }

    @Override
    public void mixBackwardCoeffs(float[] dhres, float[] dhpost, float[] dxout, float[] x, float[] y, int N, int n, int C) {
        run("mixBackwardCoeffs", (g, id) -> g.task(id, Streams::mixBackwardCoeffs, dhres, dhpost, dxout, x, y, N, n, C), arrays(dhres, dhpost, dxout, x, y), N, n, C);
    }

    @Override
    public void mixBackwardOutput(float[] dy, float[] dxout, float[] hpost, int N, int n, int C) {
        run("mixBackwardOutput", (g, id) -> g.task(id, Streams::mixBackwardOutput, dy, dxout, hpost, N, n, C), arrays(dy, dxout, hpost), N, n, C);
    }

    @Override
    public void mixBackwardStreams(float[] dx, float[] dy, float[] dxout, float[] hres, float[] hpost, int N, int n, int C) {
        run("mixBackwardStreams", (g, id) -> g.task(id, Streams::mixBackwardStreams, dx, dy, dxout, hres, hpost, N, n, C), arrays(dx, dy, dxout, hres, hpost), N, n, C);
    }

    @Override
    public void mixForward(float[] xout, float[] x, float[] hres, float[] hpost, float[] y, int N, int n, int C) {
        run("mixForward", (g, id) -> g.task(id, Streams::mixForward, xout, x, hres, hpost, y, N, n, C), arrays(xout, x, hres, hpost, y), N, n, C);
    }

    @Override
    public void swigluBackward(float[] dh1, float[] dh3, float[] dout, float[] h1, float[] h3, int N, int F) {
        run("swigluBackward", (g, id) -> g.task(id, SwiGlu::swigluBackward, dh1, dh3, dout, h1, h3, N, F), arrays(dh1, dh3, dout, h1, h3), N, F);
    }

    @Override
    public void swigluForward(float[] out, float[] h1, float[] h3, int N, int F) {
        run("swigluForward", (g, id) -> g.task(id, SwiGlu::swigluForward, out, h1, h3, N, F), arrays(out, h1, h3), N, F);
    }
}
