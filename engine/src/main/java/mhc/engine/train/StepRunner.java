package mhc.engine.train;

import mhc.engine.Backend;
import mhc.engine.Config;
import mhc.engine.Heap;
import mhc.engine.model.Gains;
import mhc.engine.model.HelperThreads;
import mhc.engine.model.Model;
import mhc.engine.model.Ops;
import mhc.engine.model.Params;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Forward and backward of a batch on the JVM, split across threads by sequence. Each row of
 * the batch is one chunk; a thread takes the next chunk, runs it on its own model replica
 * (shared parameters, its own activations and gradients), and the chunks' gradients are added
 * to the total <i>in chunk order</i>. So the sums, and every number of a run, are the same for
 * any thread count: a chunk is always one row, and the order of the additions is fixed.
 *
 * <p>Each replica has up to two sets of gradients: a chunk whose turn to be added has not come
 * (the chunk before it still runs on another thread) waits in its set while the thread goes on
 * with the next chunk in the other ({@link OrderedGradientSum}). With one set per replica, a
 * thread waited for every slower chunk before its own: on a shared 2-core machine 20-100 ms per
 * wait, several times per gpt-small step. A thread with no chunk left helps the replicas still
 * computing with the tasks of their calls ({@link HelperThreads}), instead of waiting for the
 * step's last chunk.
 *
 * <p>On a device backend that captures passes (TornadoVM), {@link #trainOnDevice}
 * runs a whole training step instead: the batch as one replayed pass on a model of its own,
 * with the optimizer update in the same pass, so parameters, gradients and moments stay on the
 * device; the device parallelizes inside each kernel.
 */
public final class StepRunner implements AutoCloseable {
    private final Params params;
    private final Config cfg;
    private final int threads;
    private final Model[] replicas;
    private final Ops[] replicaOps;
    private final Params[] spares; // each replica's second set of gradients, made when first needed
    // Between steps every set is all zeros (the sum clears a set as it adds it), so a chunk's
    // backward adds into its set without a zeroing pass; a failed step may leave values in a
    // set that was never added, and the next step clears them first.
    private boolean setsDirty;
    // A thread whose replica has no sequence left helps the others with their calls (see run).
    private final HelperThreads helpers = new HelperThreads();
    private final ExecutorService pool;
    private final Backend backend;
    private Model devicePass; // trainOnDevice's model: its own buffers, so other passes never resize them

    /** What one step computed besides the gradients. */
    public record Result(double loss, int[][] loads, Gains gains, String nonFinite) {
    }

    /** On the default backend. */
    public StepRunner(Params params, int threads) {
        this(params, threads, Backend.defaultBackend());
    }

    public StepRunner(Params params, int threads, Backend backend) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1");
        }
        this.params = params;
        this.cfg = params.config();
        this.threads = threads;
        this.backend = backend;
        // One replica per sequence of a batch at most; threads beyond the batch size go inside
        // the replicas' calls (the fast path splits GEMM tiles, attention heads and mHC's blocks
        // of tokens over them), so a machine with more cores than sequences still uses them
        // all. Either way each sequence is computed the same way, so the numbers do not change.
        int n = Math.min(threads, Math.max(1, cfg.batchSize()));
        this.replicas = new Model[n];
        this.replicaOps = new Ops[n];
        this.spares = new Params[n];
        for (int i = 0; i < n; i++) {
            int inner = threads / n + (i < threads % n ? 1 : 0);
            replicaOps[i] = inner > 1 ? backend.newOps(inner) : backend.newOps();
            if (i > 0) {
                replicaOps[i].shareHeldParameters(replicaOps[0]); // e.g. the fast path's packed weights, once for all
            }
            if (inner == 1 && n > 1) {
                replicaOps[i].lendHelpers(helpers);
            }
            replicas[i] = new Model(params, replicaOps[i]);
        }
        this.pool = n > 1 ? Executors.newFixedThreadPool(n, r -> {
            Thread t = new Thread(r, "mhc-worker");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    public int threads() {
        return threads;
    }

    /**
     * Mean loss over the batch's B*T positions and, into {@code grads} (overwritten), its
     * gradient. With {@code withGains}, the Amax gains averaged over all tokens.
     */
    public Result step(int[] batch, int B, int T, Params grads, boolean withGains) {
        grads.zero();
        if (setsDirty) {
            for (int i = 0; i < replicas.length; i++) {
                replicas[i].grads().zero();
                if (spares[i] != null) {
                    spares[i].zero();
                }
            }
        }
        int total = B * T;
        int L2 = cfg.sublayers();
        double[] chunkLoss = new double[B];
        int[][][] chunkLoads = new int[B][][];
        Gains[] chunkGains = new Gains[B];
        String[] nonFinite = new String[B];
        AtomicInteger next = new AtomicInteger();
        OrderedGradientSum sum = new OrderedGradientSum(grads, B);
        setsDirty = true; // until every chunk is added
        run(worker -> {
            Model m = replicas[worker];
            int[] row = new int[T + 1];
            try {
                for (int c = next.getAndIncrement(); c < B; c = next.getAndIncrement()) {
                    System.arraycopy(batch, c * (T + 1), row, 0, T + 1);
                    m.forward(row, 1, T);
                    nonFinite[c] = Double.isFinite(m.loss()) ? null : m.firstNonFinite();
                    chunkLoss[c] = m.lossSum();
                    if (withGains) {
                        chunkGains[c] = m.gains();
                    }
                    if (cfg.isMoe()) {
                        chunkLoads[c] = new int[L2][];
                        for (int l = 1; l < L2; l += 2) {
                            chunkLoads[c][l] = m.expertLoads(l);
                        }
                    }
                    Params set = sum.freeSet(m.grads(), spares[worker]);
                    if (set == null) { // the first set still waits to be added: a second, if the heap has room
                        set = Heap.hasRoomFor(4L * grads.count()) ? (spares[worker] = new Params(cfg))
                                : sum.freeSet(m.grads(), m.grads());
                    }
                    m.backwardAdding(total, set); // the set is all zeros (see setsDirty)
                    sum.submit(c, set);
                }
            } catch (RuntimeException | Error e) {
                sum.abort(); // a thread waiting for a free set must not wait for a chunk that never comes
                throw e;
            }
        });
        setsDirty = false; // every chunk was added, which cleared its set
        double loss = 0;
        String firstBad = null;
        for (int c = 0; c < B; c++) {
            loss += chunkLoss[c];
            if (firstBad == null && nonFinite[c] != null) {
                firstBad = nonFinite[c];
            }
        }
        int[][] loads = null;
        if (cfg.isMoe()) {
            loads = new int[L2][];
            for (int l = 1; l < L2; l += 2) {
                loads[l] = new int[cfg.experts()];
                for (int c = 0; c < B; c++) {
                    for (int e = 0; e < cfg.experts(); e++) {
                        loads[l][e] += chunkLoads[c][l][e];
                    }
                }
            }
        }
        return new Result(loss / total, loads, withGains ? average(chunkGains) : null, firstBad);
    }

    /** Whether {@link #trainOnDevice} can run: a backend that captures passes. */
    public boolean trainsOnDevice() {
        return replicas[0].capturesPasses();
    }

    /**
     * One training step as one captured pass on the device: forward and backward of the whole
     * batch, then {@code update} (gradient norm, clipping, AdamW). Recorded on the first call,
     * replayed after. The parameters and moments stay on the device until {@link #pullFromDevice}.
     */
    public void trainOnDevice(int[] batch, int B, int T, Optimizer.DeviceUpdate update) {
        if (devicePass == null) {
            devicePass = new Model(params, backend.newOps());
        }
        devicePass.trainPass(batch, B, T, B * T, update);
    }

    /** MoE: the expert loads of the last {@link #trainOnDevice} ({@code [l][e]}, odd l), else null. */
    public int[][] deviceLoads() {
        if (!cfg.isMoe() || devicePass == null) {
            return null;
        }
        int[][] loads = new int[cfg.sublayers()][];
        for (int l = 1; l < cfg.sublayers(); l += 2) {
            loads[l] = devicePass.expertLoads(l);
        }
        return loads;
    }

    /** Copies the parameters and moments that {@link #trainOnDevice} updated back to the host. */
    public void pullFromDevice() {
        if (devicePass != null) {
            devicePass.pullResident();
        }
    }

    /** The host changed the parameters or moments: the next {@link #trainOnDevice} copies them in again. */
    public void hostChanged() {
        if (devicePass != null) {
            devicePass.residentChanged();
        }
    }

    /** Mean loss of a batch, forward only. */
    public double loss(int[] batch, int B, int T) {
        double[] chunkLoss = new double[B];
        AtomicInteger next = new AtomicInteger();
        run(worker -> {
            Model m = replicas[worker];
            int[] row = new int[T + 1];
            for (int c = next.getAndIncrement(); c < B; c = next.getAndIncrement()) {
                System.arraycopy(batch, c * (T + 1), row, 0, T + 1);
                m.forward(row, 1, T);
                chunkLoss[c] = m.lossSum();
            }
        });
        double loss = 0;
        for (double l : chunkLoss) {
            loss += l;
        }
        return loss / (B * (double) T);
    }

    private interface Work {
        void run(int worker);
    }

    /**
     * Runs {@code work} on every replica, each on its own thread, with the parameters held
     * fixed for the replica's operations while it runs ({@link Ops#holdParameters}: they do not
     * change during a step, so a backend may reuse what it derives from them, such as packed
     * weights, across the replica's sequences).
     */
    private void run(Work work) {
        AtomicInteger running = new AtomicInteger(replicas.length);
        Work held = worker -> {
            replicaOps[worker].holdParameters();
            try {
                try {
                    work.run(worker);
                } finally {
                    if (running.decrementAndGet() == 0) {
                        helpers.wake(); // the helpers' condition below
                    }
                }
                // no sequence left for this thread: it takes tasks of the replicas still running
                // (their calls split when a helper is idle), until none is
                helpers.help(() -> running.get() == 0);
            } finally {
                replicaOps[worker].releaseParameters();
            }
        };
        if (pool == null) {
            held.run(0);
            return;
        }
        List<Future<?>> fs = new ArrayList<>();
        for (int w = 0; w < replicas.length; w++) {
            int worker = w;
            fs.add(pool.submit(() -> held.run(worker)));
        }
        Throwable failure = null; // the first cause, not a chunk that stopped because of it
        for (Future<?> f : fs) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            } catch (ExecutionException e) {
                if (failure == null || failure instanceof OrderedGradientSum.Aborted) {
                    failure = e.getCause();
                }
            }
        }
        if (failure instanceof RuntimeException re) {
            throw re;
        }
        if (failure instanceof Error err) {
            throw err;
        }
        if (failure != null) {
            throw new IllegalStateException(failure);
        }
    }

    private static Gains average(Gains[] gs) {
        int L2 = gs[0].forward().length;
        double[] f = new double[L2], b = new double[L2], cf = new double[L2], cb = new double[L2];
        for (Gains g : gs) {
            for (int l = 0; l < L2; l++) {
                f[l] += g.forward()[l] / gs.length;
                b[l] += g.backward()[l] / gs.length;
                cf[l] += g.compositeForward()[l] / gs.length;
                cb[l] += g.compositeBackward()[l] / gs.length;
            }
        }
        return new Gains(f, b, cf, cb);
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
        for (Ops ops : replicaOps) {
            ops.close();
        }
    }
}
