package mhc.engine.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * CPU time of this process's Java threads, and the time a hypervisor stole from the machine
 * (Linux). On a shared virtual machine the wall-clock time of a step includes the time the host
 * ran other guests instead of this one; Linux counts that as "steal" in {@code /proc/stat} and
 * leaves it out of the threads' CPU time.
 */
final class CpuClock {
    private static final Path PROC_STAT = Path.of("/proc/stat");

    private CpuClock() {
    }

    /**
     * CPU nanoseconds of this process's live Java threads (the step's workers among them; the
     * JIT's and the collector's threads are not Java threads), or -1 where the JVM does not
     * measure thread CPU time. Per thread rather than the process's total, whose clock on Linux
     * ticks in 10 ms steps. A thread that ends between two readings takes its time with it;
     * the step's worker pool lives as long as its model.
     */
    static long threadNanos() {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        if (!mx.isThreadCpuTimeSupported() || !mx.isThreadCpuTimeEnabled()) {
            return -1;
        }
        long[] ids = mx.getAllThreadIds();
        long sum = 0;
        if (mx instanceof com.sun.management.ThreadMXBean sun) {
            for (long t : sun.getThreadCpuTime(ids)) {
                sum += Math.max(t, 0); // -1: ended meanwhile
            }
        } else {
            for (long id : ids) {
                sum += Math.max(mx.getThreadCpuTime(id), 0);
            }
        }
        return sum;
    }

    /**
     * The machine's CPU time counters (all cores, in clock ticks) at one moment: the total and
     * the stolen part. {@link #share()} on the difference of two readings (from
     * {@link #stealSince}) is the stolen share of the time in between.
     */
    record Steal(long total, long stolen) {
        double share() {
            return total > 0 ? (double) stolen / total : Double.NaN;
        }
    }

    /**
     * The counters now ({@code since == null}), or their growth since an earlier reading;
     * null where {@code /proc/stat} is not there or has no steal column.
     */
    static Steal stealSince(Steal since) {
        Steal now = read();
        if (now == null || since == null) {
            return now;
        }
        return new Steal(now.total - since.total, now.stolen - since.stolen);
    }

    private static Steal read() {
        try {
            List<String> lines = Files.readAllLines(PROC_STAT);
            for (String line : lines) {
                if (!line.startsWith("cpu ")) {
                    continue;
                }
                // cpu user nice system idle iowait irq softirq steal [guest guest_nice]
                String[] f = line.trim().split("\\s+");
                if (f.length < 9) {
                    return null;
                }
                long total = 0;
                for (int i = 1; i <= 8; i++) {
                    total += Long.parseLong(f[i]);
                }
                return new Steal(total, Long.parseLong(f[8]));
            }
            return null;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
