package mhc.tests;

import mhc.engine.Config;
import mhc.engine.model.Params;
import mhc.engine.train.OrderedGradientSum;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The step's chunk-ordered sum of gradients, whatever order the chunks finish in. */
class OrderedGradientSumTest {
    private static final Config CFG = Models.small("residual", "dense");
    private static final String NAME = "final_norm";

    private static Params set(float value) {
        Params p = new Params(CFG);
        p.get(NAME)[0] = value;
        return p;
    }

    /**
     * Chunks 1, 1e8, -1e8 in float: in chunk order the 1 is lost (1 + 1e8 rounds to 1e8) and the
     * sum is 0; added in the order they finish here (2, 1, 0) it would be 1.
     */
    @Test
    void addsInChunkOrderWhateverOrderTheChunksFinishIn() {
        Params total = new Params(CFG);
        OrderedGradientSum sum = new OrderedGradientSum(total, 3);
        Params s2 = set(-1e8f), s1 = set(1e8f), s0 = set(1f);
        sum.submit(2, s2);
        sum.submit(1, s1);
        assertEquals(0, sum.added(), "nothing is added before chunk 0");
        assertEquals(0f, total.get(NAME)[0]);
        assertEquals(1e8f, s1.get(NAME)[0], "a waiting set keeps its values");
        sum.submit(0, s0);
        assertEquals(3, sum.added());
        assertEquals(0f, total.get(NAME)[0], 0f, "the chunk-order sum of 1, 1e8, -1e8");
        assertEquals(1f, (-1e8f + 1e8f) + 1f, 0f, "the other order gives another value, so the test can tell them apart");
        for (Params s : new Params[] {s0, s1, s2}) {
            assertEquals(0f, s.get(NAME)[0], 0f, "an added set comes back zeroed");
        }
    }

    @Test
    void aThreadWaitsOnlyWhileBothItsSetsWait() throws Exception {
        Params total = new Params(CFG);
        OrderedGradientSum sum = new OrderedGradientSum(total, 3);
        Params a = set(1), b = set(2);
        sum.submit(1, a);
        assertNull(sum.freeSet(a, null), "first waits and there is no second: make one");
        assertSame(b, sum.freeSet(a, b));
        sum.submit(2, b);
        CompletableFuture<Params> free = CompletableFuture.supplyAsync(() -> sum.freeSet(a, b));
        assertThrows(TimeoutException.class, () -> free.get(200, TimeUnit.MILLISECONDS), "both sets wait: block");
        sum.submit(0, set(3));
        assertSame(a, free.get(10, TimeUnit.SECONDS), "chunk 0 came: all three added, both sets free");
        assertEquals(3, sum.added());
        assertEquals(6f, total.get(NAME)[0], 0f);
    }

    @Test
    void abortWakesAThreadWaitingForAFreeSet() throws Exception {
        OrderedGradientSum sum = new OrderedGradientSum(new Params(CFG), 3);
        Params a = set(1), b = set(2);
        sum.submit(1, a);
        sum.submit(2, b);
        CompletableFuture<Params> free = CompletableFuture.supplyAsync(() -> sum.freeSet(a, b));
        sum.abort();
        ExecutionException e = assertThrows(ExecutionException.class, () -> free.get(10, TimeUnit.SECONDS));
        assertInstanceOf(OrderedGradientSum.Aborted.class, e.getCause());
        assertEquals(0, sum.added());
    }

    @Test
    void aChunkSubmittedTwiceIsRejected() {
        OrderedGradientSum sum = new OrderedGradientSum(new Params(CFG), 2);
        sum.submit(1, set(1));
        assertThrows(IllegalArgumentException.class, () -> sum.submit(1, set(1)));
        assertThrows(IllegalArgumentException.class, () -> sum.submit(2, set(1)));
    }
}
