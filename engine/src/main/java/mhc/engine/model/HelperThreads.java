package mhc.engine.model;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.IntConsumer;

/**
 * Threads that have run out of work of their own, lent to calls that can split theirs: the
 * threads of a training step whose replicas have no sequence left help the replicas still
 * computing one. Without them, the last sequences of a step ran on fewer threads than the machine
 * has: gpt-small's 8 sequences on 2 threads left one thread waiting for about half a sequence
 * per step (JFR: parks of 36-218 ms, most near 100 ms, in steps of about 750 ms).
 *
 * <p>A call asks how many threads are {@link #idle} and, when some are, splits its work into
 * tasks as it would for threads of its own, then {@link #run}s them: it takes tasks itself and
 * the idle threads in {@link #help} take the others. Every task computes the same way on any
 * thread, so the results never depend on who helped.
 */
public final class HelperThreads {
    private final List<Job> jobs = new ArrayList<>(); // jobs with tasks left; guarded by this
    private int idle;                                 // threads in help() and not in a task; guarded by this

    /** Threads waiting to help right now (a snapshot: one may start a task or leave at any time). */
    public synchronized int idle() {
        return idle;
    }

    /**
     * Runs {@code body(0) .. body(tasks-1)}, each exactly once, on the calling thread and any
     * helpers that join; returns when all are done, throwing the first failure.
     */
    public void run(int tasks, IntConsumer body) {
        Job job = new Job(tasks, body);
        if (tasks > 1) {
            synchronized (this) {
                jobs.add(job);
                notifyAll();
            }
        }
        job.work();
        if (tasks > 1) {
            synchronized (this) {
                jobs.remove(job); // all taken: helpers that come later need not look at it
            }
        }
        job.awaitDone();
    }

    /**
     * Takes tasks of other threads' {@link #run} calls until {@code done} is true. {@code done}
     * is checked whenever no task is waiting and after each {@link #wake}: the owner of the
     * condition calls {@link #wake} when it may have become true.
     */
    public void help(BooleanSupplier done) {
        synchronized (this) {
            idle++;
        }
        try {
            while (true) {
                Job job;
                synchronized (this) {
                    while ((job = jobWithTasks()) == null) {
                        if (done.getAsBoolean()) {
                            return;
                        }
                        try {
                            wait();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            return;
                        }
                    }
                    idle--;
                }
                try {
                    job.work();
                } finally {
                    synchronized (this) {
                        idle++;
                    }
                }
            }
        } finally {
            synchronized (this) {
                idle--;
            }
        }
    }

    /** Makes the helpers check their {@code done} condition again. */
    public synchronized void wake() {
        notifyAll();
    }

    private Job jobWithTasks() {
        for (Job j : jobs) {
            if (j.hasTasks()) {
                return j;
            }
        }
        return null;
    }

    /** One {@link #run} call: its tasks, taken by number, and how many have finished. */
    private static final class Job {
        private final int tasks;
        private final IntConsumer body;
        private final AtomicInteger next = new AtomicInteger();
        private int finished;      // guarded by this
        private Throwable failure; // the first; guarded by this

        Job(int tasks, IntConsumer body) {
            this.tasks = tasks;
            this.body = body;
        }

        boolean hasTasks() {
            return next.get() < tasks;
        }

        void work() {
            for (int t = next.getAndIncrement(); t < tasks; t = next.getAndIncrement()) {
                Throwable failed = null;
                try {
                    body.accept(t);
                } catch (RuntimeException | Error e) {
                    failed = e;
                }
                synchronized (this) {
                    if (failed != null && failure == null) {
                        failure = failed;
                    }
                    if (++finished == tasks) {
                        notifyAll();
                    }
                }
            }
        }

        synchronized void awaitDone() {
            boolean interrupted = false;
            while (finished < tasks) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true; // the helpers still write into the caller's arrays: wait for them
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
            if (failure instanceof RuntimeException re) {
                throw re;
            }
            if (failure instanceof Error err) {
                throw err;
            }
        }
    }
}
