package mhc.tests;

import mhc.engine.data.BatchSampler;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link BatchSampler}: shapes, byte values, reproducibility, resuming, and evaluation windows. */
class BatchSamplerTest {

    /** Random bytes over the full range 0..255, so signed bytes would show up as negative tokens. */
    private static byte[] randomBytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static final byte[] DATA = randomBytes(10_000, 42);

    @Test
    void shapeAndRange() {
        BatchSampler s = new BatchSampler(DATA, 4, 32, 7);
        boolean high = false;
        for (int k = 0; k < 20; k++) {
            int[] b = s.next();
            assertEquals(4 * 33, b.length);
            for (int v : b) {
                assertTrue(v >= 0 && v <= 255, "token " + v);
                high |= v >= 128;
            }
        }
        assertTrue(high, "bytes >= 0x80 must come out as 128..255");
    }

    @Test
    void rowsAreWindowsOfTheData() {
        int T = 16;
        BatchSampler s = new BatchSampler(DATA, 8, T, 3);
        for (int k = 0; k < 10; k++) {
            int[] b = s.next();
            for (int r = 0; r < 8; r++) {
                int[] row = Arrays.copyOfRange(b, r * (T + 1), (r + 1) * (T + 1));
                assertTrue(startOf(DATA, row) >= 0, "row " + r + " of batch " + k + " is not a substring of the data");
            }
        }
    }

    @Test
    void sameSeedSameBatchesOtherSeedOtherBatches() {
        BatchSampler a = new BatchSampler(DATA, 4, 8, 123);
        BatchSampler b = new BatchSampler(DATA, 4, 8, 123);
        BatchSampler c = new BatchSampler(DATA, 4, 8, 124);
        boolean differ = false;
        for (int k = 0; k < 10; k++) {
            int[] x = a.next();
            assertArrayEquals(x, b.next());
            differ |= !Arrays.equals(x, c.next());
        }
        assertTrue(differ, "seeds 123 and 124 gave the same batches");
        assertEquals(a.state(), b.state());
    }

    @Test
    void restoreReproducesTheFollowingBatches() {
        BatchSampler s = new BatchSampler(DATA, 3, 10, -5);
        for (int k = 0; k < 7; k++) {
            s.next();
        }
        long state = s.state();
        List<int[]> after = new ArrayList<>();
        for (int k = 0; k < 5; k++) {
            after.add(s.next());
        }
        // a fresh sampler with another seed, restored, continues exactly where the first one was
        BatchSampler t = new BatchSampler(DATA, 3, 10, 999);
        t.next();
        t.restore(state);
        for (int k = 0; k < 5; k++) {
            assertArrayEquals(after.get(k), t.next(), "batch " + (8 + k));
        }
        assertEquals(s.state(), t.state());
        // and the first one can rewind too
        s.restore(state);
        assertArrayEquals(after.get(0), s.next());
    }

    @Test
    void startsAreUniformAndReachBothEnds() {
        // 20 distinct bytes (high ones too): a window's first byte names its start
        byte[] data = new byte[20];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (236 + i);
        }
        int T = 3, starts = data.length - T;   // 17 possible starts: 0..16
        BatchSampler s = new BatchSampler(data, 10, T, 2024);
        int[] hits = new int[starts];
        int draws = 0;
        for (int k = 0; k < 1700; k++) {
            int[] b = s.next();
            for (int r = 0; r < 10; r++) {
                int start = b[r * (T + 1)] - 236;
                assertTrue(start >= 0 && start < starts, "start " + start);
                for (int j = 0; j <= T; j++) {
                    assertEquals(236 + start + j, b[r * (T + 1) + j]);
                }
                hits[start]++;
                draws++;
            }
        }
        double expected = (double) draws / starts, chi2 = 0;
        for (int h : hits) {
            chi2 += (h - expected) * (h - expected) / expected;
        }
        // 16 degrees of freedom: P(chi2 > 45) < 1e-4
        assertTrue(chi2 < 45, "starts are not uniform: " + Arrays.toString(hits) + ", chi2 " + chi2);
        assertTrue(hits[0] > 0 && hits[starts - 1] > 0);
    }

    @Test
    void generatorIsSplitMix64WithLemireBounds() {
        // SplitMix64 from state 0 first gives 0xE220A8397B1DCDAF; its high 32 bits 0xE220A839 times 17,
        // shifted right by 32, is 15: pins the batches a seed gives, so resumed runs stay reproducible.
        byte[] data = new byte[20];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) i;
        }
        BatchSampler s = new BatchSampler(data, 1, 3, 0);
        assertArrayEquals(new int[]{15, 16, 17, 18}, s.next());
        assertEquals(0x9E3779B97F4A7C15L, s.state());
    }

    @Test
    void dataOfExactlyOneWindow() {
        byte[] data = {1, 2, 3, (byte) 200};
        assertArrayEquals(new int[]{1, 2, 3, 200, 1, 2, 3, 200}, new BatchSampler(data, 2, 3, 1).next());
        assertArrayEquals(new int[]{1, 2, 3, 200}, BatchSampler.evalBatch(data, 1, 3, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> new BatchSampler(data, 2, 4, 1));
        assertThrows(IllegalArgumentException.class, () -> BatchSampler.evalBatch(data, 1, 4, 0, 1));
    }

    @Test
    void evalBatchesAreFixedEvenlySpacedAndDisjoint() {
        int B = 4, T = 31, count = 10, T1 = T + 1;
        List<Integer> starts = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[] b = BatchSampler.evalBatch(DATA, B, T, i, count);
            assertEquals(B * T1, b.length);
            assertArrayEquals(b, BatchSampler.evalBatch(DATA, B, T, i, count), "not deterministic");
            for (int r = 0; r < B; r++) {
                int[] row = Arrays.copyOfRange(b, r * T1, (r + 1) * T1);
                for (int v : row) {
                    assertTrue(v >= 0 && v <= 255);
                }
                int start = startOf(DATA, row);
                assertTrue(start >= 0, "row is not a window of the data");
                starts.add(start);
            }
        }
        assertEquals(0, starts.get(0), "the first window starts the data");
        assertEquals(DATA.length - T1, starts.get(starts.size() - 1), "the last window ends the data");
        int minGap = Integer.MAX_VALUE, maxGap = 0;
        for (int k = 1; k < starts.size(); k++) {
            int gap = starts.get(k) - starts.get(k - 1);
            minGap = Math.min(minGap, gap);
            maxGap = Math.max(maxGap, gap);
        }
        assertTrue(minGap >= T1, "windows overlap: gap " + minGap);
        assertTrue(maxGap - minGap <= 1, "not evenly spaced: gaps " + minGap + ".." + maxGap);
    }

    @Test
    void evalWindowsAreDisjointWhenTheDataIsJustLongEnough() {
        int B = 3, T = 7, count = 5, T1 = T + 1;
        byte[] data = randomBytes(B * count * T1, 9);   // exactly enough bytes for 15 windows
        int prevEnd = 0;
        for (int i = 0; i < count; i++) {
            int[] b = BatchSampler.evalBatch(data, B, T, i, count);
            for (int r = 0; r < B; r++) {
                int[] row = Arrays.copyOfRange(b, r * T1, (r + 1) * T1);
                int[] expected = new int[T1];
                for (int j = 0; j < T1; j++) {
                    expected[j] = data[prevEnd + j] & 0xFF;
                }
                assertArrayEquals(expected, row, "window " + (i * B + r) + " should tile the data");
                prevEnd += T1;
            }
        }
    }

    @Test
    void evalWindowsOverlapOnlyWhenTheyMust() {
        byte[] data = randomBytes(50, 1);
        int[] a = BatchSampler.evalBatch(data, 8, 15, 0, 2);   // 16 windows of 16 bytes in 50 bytes
        int[] b = BatchSampler.evalBatch(data, 8, 15, 1, 2);
        assertEquals(8 * 16, a.length);
        assertFalse(Arrays.equals(a, b));
        assertThrows(IllegalArgumentException.class, () -> BatchSampler.evalBatch(data, 8, 15, 2, 2));
    }

    /** Offset where row (as ints 0..255) occurs in data, or -1. */
    private static int startOf(byte[] data, int[] row) {
        outer:
        for (int s = 0; s + row.length <= data.length; s++) {
            for (int j = 0; j < row.length; j++) {
                if ((data[s + j] & 0xFF) != row[j]) {
                    continue outer;
                }
            }
            return s;
        }
        return -1;
    }
}
