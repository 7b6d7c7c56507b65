package mhc.engine.train;

import mhc.engine.model.Params;

/**
 * The gradients of a step's chunks on their way into its total, added in chunk order whatever
 * order the chunks finish in, so the sum has the same bits for any number of threads. A
 * finished chunk's set of gradients waits here until its turn; the thread that submits the
 * chunk whose turn it is adds it and every waiting chunk after it (outside the lock, so other
 * threads go on computing). A thread that has two sets ({@link #freeSet}) waits only while both
 * are still waiting to be added. When a chunk fails, {@link #abort} wakes the threads waiting
 * for a free set, which then stop with {@link Aborted}.
 *
 * <p>A set comes back all zeros once it has been added (so a thread can add its next chunk's
 * gradients into it as they are); a set still waiting when the sum was aborted keeps its values.
 */
public final class OrderedGradientSum {
    private final Params total;
    private final Params[] waiting; // by chunk: its gradients, until added; guarded by this
    private int added;              // chunks in the total
    private boolean adding;         // a thread is adding waiting[added], waiting[added+1], ...
    private boolean aborted;

    /** A sum of {@code chunks} chunks into {@code total} (added to what it holds). */
    public OrderedGradientSum(Params total, int chunks) {
        this.total = total;
        this.waiting = new Params[chunks];
    }

    /**
     * One of a thread's two sets that is not waiting to be added ({@code first} preferred),
     * blocking while both are; null when {@code second} is null and {@code first} is waiting
     * (the caller makes its second set then).
     */
    public synchronized Params freeSet(Params first, Params second) {
        while (true) {
            if (aborted) {
                throw new Aborted();
            }
            if (!isWaiting(first)) {
                return first;
            }
            if (second == null || !isWaiting(second)) {
                return second;
            }
            try {
                wait();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
        }
    }

    private boolean isWaiting(Params set) {
        for (int c = added; c < waiting.length; c++) {
            if (waiting[c] == set) {
                return true;
            }
        }
        return false;
    }

    /**
     * Chunk {@code chunk}'s gradients are in {@code set}: adds them, and the waiting chunks after
     * it, if its turn has come; otherwise they wait for it and this returns at once.
     */
    public void submit(int chunk, Params set) {
        synchronized (this) {
            if (chunk < added || chunk >= waiting.length || waiting[chunk] != null) {
                throw new IllegalArgumentException("chunk " + chunk + " submitted twice or out of range");
            }
            waiting[chunk] = set;
            if (adding || chunk != added) {
                return; // the thread that is adding, or that submits chunk `added`, takes it
            }
            adding = true;
        }
        while (true) {
            Params next;
            synchronized (this) {
                if (added == waiting.length || waiting[added] == null) {
                    adding = false;
                    return;
                }
                next = waiting[added];
            }
            addInto(total, next);
            synchronized (this) {
                waiting[added] = null;
                added++;
                notifyAll();
            }
        }
    }

    /** Chunks added to the total so far. */
    public synchronized int added() {
        return added;
    }

    /** A chunk failed: threads waiting in {@link #freeSet} (now or later) throw {@link Aborted}. */
    public synchronized void abort() {
        aborted = true;
        notifyAll();
    }

    /** What a thread waiting behind a failed chunk throws; the step reports the failure itself. */
    public static final class Aborted extends IllegalStateException {
        Aborted() {
            super("another chunk of the step failed");
        }
    }

    /**
     * {@code total += part}, and {@code part} cleared on the way: its lines are in cache just
     * then, where zeroing it before its next chunk would read all of it from memory again (a
     * gpt-small set is 21 MB; that pass was 0.8% of an mhc step on 2 cores).
     */
    private static void addInto(Params total, Params part) {
        for (String name : total.names()) {
            float[] t = total.get(name);
            float[] p = part.get(name);
            for (int i = 0; i < t.length; i++) {
                t[i] += p[i];
                p[i] = 0f;
            }
        }
    }
}
