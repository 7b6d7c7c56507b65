package mhc.tests;

import mhc.engine.model.HelperThreads;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The step's idle threads lent to the calls of the replicas still running. */
class HelperThreadsTest {
    /** Threads of their own (the common pool may have only one on a 2-core machine). */
    private static final java.util.concurrent.ExecutorService POOL = java.util.concurrent.Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "helper-test");
        t.setDaemon(true);
        return t;
    });

    /** Waits until {@code n} threads are idle in help(), so that a call can count on them. */
    private static void awaitIdle(HelperThreads h, int n) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (h.idle() < n) {
            assertTrue(System.nanoTime() < deadline, "helpers did not become idle");
            Thread.sleep(1);
        }
    }

    /**
     * With two helpers waiting, every task runs exactly once, some of them on a helper (tasks
     * wait for each other until three threads are in, so the caller cannot take them all), and
     * the helpers leave when their condition holds.
     */
    @Test
    void tasksRunOnceEachOnTheCallerAndTheHelpers() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            HelperThreads h = new HelperThreads();
            AtomicBoolean done = new AtomicBoolean();
            CompletableFuture<?> a = CompletableFuture.runAsync(() -> h.help(done::get), POOL);
            CompletableFuture<?> b = CompletableFuture.runAsync(() -> h.help(done::get), POOL);
            awaitIdle(h, 2);
            int tasks = 50;
            AtomicIntegerArray runs = new AtomicIntegerArray(tasks);
            java.util.Set<Thread> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
            java.util.concurrent.CountDownLatch allIn = new java.util.concurrent.CountDownLatch(3);
            h.run(tasks, t -> {
                if (threads.add(Thread.currentThread())) {
                    allIn.countDown();
                }
                try {
                    allIn.await(5, TimeUnit.SECONDS); // the first tasks wait for all three threads
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                runs.incrementAndGet(t);
            });
            for (int t = 0; t < tasks; t++) {
                assertEquals(1, runs.get(t), "task " + t);
            }
            assertEquals(3, threads.size(), "the caller and both helpers took tasks");
            done.set(true);
            h.wake();
            a.get(10, TimeUnit.SECONDS);
            b.get(10, TimeUnit.SECONDS);
            assertEquals(0, h.idle());
        });
    }

    /** A task's failure, on a helper or on the caller, comes out of run() after every task has ended. */
    @Test
    void aFailingTaskFailsTheCallAfterAllTasksEnd() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            HelperThreads h = new HelperThreads();
            AtomicBoolean done = new AtomicBoolean();
            CompletableFuture<?> helper = CompletableFuture.runAsync(() -> h.help(done::get), POOL);
            awaitIdle(h, 1);
            AtomicIntegerArray runs = new AtomicIntegerArray(20);
            IllegalArgumentException planted = new IllegalArgumentException("planted");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> h.run(20, t -> {
                runs.incrementAndGet(t);
                if (t == 7) {
                    throw planted;
                }
            }));
            assertSame(planted, e);
            for (int t = 0; t < 20; t++) {
                assertEquals(1, runs.get(t), "task " + t + " still ran once");
            }
            done.set(true);
            h.wake();
            helper.get(10, TimeUnit.SECONDS);
        });
    }

    /** With nobody helping, the caller runs every task itself. */
    @Test
    void withoutHelpersTheCallerRunsEverything() {
        HelperThreads h = new HelperThreads();
        assertEquals(0, h.idle());
        AtomicIntegerArray runs = new AtomicIntegerArray(9);
        Thread caller = Thread.currentThread();
        h.run(9, t -> {
            assertSame(caller, Thread.currentThread());
            runs.incrementAndGet(t);
        });
        for (int t = 0; t < 9; t++) {
            assertEquals(1, runs.get(t));
        }
    }
}
