package mhc.tests;

import mhc.engine.Heap;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The room check behind the optional copies (packed weights, second gradient sets). */
class HeapTest {
    @Test
    void roomIsWithinTheShareOfTheMaximumHeap() {
        long max = Runtime.getRuntime().maxMemory();
        assertTrue(Heap.hasRoomFor(1024), "a kilobyte fits in a test JVM");
        assertFalse(Heap.hasRoomFor((long) (Heap.SHARE * max) + 1), "more than the share of the whole heap never fits");
        assertFalse(Heap.hasRoomFor(max), "the whole heap never fits");
    }
}
