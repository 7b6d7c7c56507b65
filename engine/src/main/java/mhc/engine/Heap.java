package mhc.engine;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.lang.management.MemoryUsage;

/**
 * Whether the Java heap has room for an allocation that only makes things faster (packed
 * weights, a second set of gradients): such copies are made only while the heap, and its old
 * generation where the collector has one (where large, long-lived arrays end up, and which
 * fills before the whole heap does), stay under {@link #SHARE} of their maximum with them. So
 * a model that fits without them does not run out of memory because of them. The memory in use
 * counts garbage not yet collected, which errs on the side of not making the copy.
 */
public final class Heap {
    /** The share of the maximum that optional copies may bring the heap (and its old generation) to. */
    public static final double SHARE = 0.75;

    private static final MemoryPoolMXBean OLD = oldGeneration();

    private Heap() {
    }

    public static boolean hasRoomFor(long bytes) {
        Runtime rt = Runtime.getRuntime();
        long used = rt.totalMemory() - rt.freeMemory();
        if (used + bytes > (long) (SHARE * rt.maxMemory())) {
            return false;
        }
        if (OLD != null) {
            MemoryUsage u = OLD.getUsage();
            return u.getMax() <= 0 || u.getUsed() + bytes <= (long) (SHARE * u.getMax());
        }
        return true;
    }

    private static MemoryPoolMXBean oldGeneration() {
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) {
            String name = p.getName();
            if (p.getType() == MemoryType.HEAP && (name.contains("Old") || name.contains("Tenured"))) {
                return p;
            }
        }
        return null;
    }
}
