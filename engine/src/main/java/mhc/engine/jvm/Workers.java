package mhc.engine.jvm;

import mhc.engine.model.HelperThreads;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * A fixed pool that runs {@code tasks} independent tasks on {@code threads} threads (the caller
 * is one of them), or ({@link #borrowing}) the caller and whichever threads of a
 * {@link HelperThreads} are idle. Which thread runs which task is left to chance; callers make
 * every task write disjoint memory and compute it the same way wherever it runs, so results
 * never depend on the thread count. One thread: a plain loop in the caller, no pool at all.
 */
public final class Workers implements AutoCloseable {
    /** The single-threaded instance: what a model replica inside the data-parallel StepRunner uses. */
    public static final Workers SINGLE = new Workers(1);

    private final int threads;
    private final ExecutorService pool;
    private final HelperThreads helpers; // borrowing: the caller plus whichever helpers are idle

    private Workers(HelperThreads helpers) {
        this.threads = 1;
        this.pool = null;
        this.helpers = helpers;
    }

    /**
     * One thread of its own, plus the threads idle in {@code helpers} at each call: a replica
     * of a training step, helped by the step's threads that have no sequence left.
     */
    public static Workers borrowing(HelperThreads helpers) {
        return new Workers(helpers);
    }

    public Workers(int threads) {
        this.helpers = null;
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        if (threads > 1) {
            // Idle threads end after a while: a model that is dropped without close() (a
            // replica's ops, say) does not keep its threads alive for the rest of the process.
            ThreadPoolExecutor p = new ThreadPoolExecutor(threads - 1, threads - 1, 30, TimeUnit.SECONDS,
                    new LinkedBlockingQueue<>(), r -> {
                Thread t = new Thread(r, "mhc-fast-worker");
                t.setDaemon(true);
                return t;
            });
            p.allowCoreThreadTimeOut(true);
            this.pool = p;
        } else {
            this.pool = null;
        }
    }

    /**
     * Threads a call can count on now, the caller included: callers split their work by it
     * (borrowing: 1 plus the helpers idle at this moment).
     */
    public int threads() {
        return helpers == null ? threads : 1 + helpers.idle();
    }

    /**
     * Whether calls should split into as few tasks as there are threads: with borrowed threads,
     * which may join late or not at all, every task beyond that costs its share of work done
     * twice (a GEMM packs its B operand once per row range) for a thread that may not be there.
     */
    public boolean fewTasks() {
        return helpers != null;
    }

    /** Runs {@code body(0) .. body(tasks-1)}, each exactly once, and returns when all are done. */
    public void run(int tasks, IntConsumer body) {
        if (helpers != null && tasks > 1) {
            helpers.run(tasks, body);
            return;
        }
        if (pool == null || tasks <= 1) {
            for (int t = 0; t < tasks; t++) {
                body.accept(t);
            }
            return;
        }
        AtomicInteger next = new AtomicInteger();
        Runnable worker = () -> {
            for (int t = next.getAndIncrement(); t < tasks; t = next.getAndIncrement()) {
                body.accept(t);
            }
        };
        int others = Math.min(threads, tasks) - 1;
        Future<?>[] fs = new Future<?>[others];
        for (int i = 0; i < others; i++) {
            fs[i] = pool.submit(worker);
        }
        RuntimeException failure = null;
        try {
            worker.run();
        } catch (RuntimeException e) {
            failure = e;
        }
        for (Future<?> f : fs) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            } catch (ExecutionException e) {
                if (failure == null) {
                    failure = e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
