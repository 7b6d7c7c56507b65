package mhc.engine.data;

/**
 * Batches of byte windows from a text: {@code B} rows of {@code T+1} consecutive bytes, as ints
 * 0..255 in row-major order [B, T+1] (inputs are positions 0..T-1 of a row, targets 1..T).
 *
 * <p>Training batches ({@link #next()}) start at uniformly random offsets in
 * {@code [0, data.length - T - 1]}, drawn with SplitMix64, whose whole state is one
 * {@code long}: {@link #state()} after k batches, given to {@link #restore(long)}, reproduces
 * batch k+1 onwards exactly (the same seed gives the same batches on any machine). Bounded draws
 * use Lemire's multiply-and-reject method, so every start is equally likely.
 *
 * <p>Evaluation batches ({@link #evalBatch}) are fixed windows, evenly spaced over the whole
 * text, that do not depend on any generator.
 *
 * <p>The data array is shared, not copied. Not thread-safe.
 */
public final class BatchSampler {

    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;

    private final byte[] data;
    private final int B;
    private final int T;
    private final int starts;   // number of possible window starts: data.length - T
    private long state;

    /**
     * @param data text bytes; needs at least {@code T+1} of them (check user input first with
     *             {@link Corpus#requireWindow(int)})
     * @param B    rows per batch, at least 1
     * @param T    sequence length, at least 1; a row holds T+1 bytes
     * @param seed any value; equal seeds give equal batches
     */
    public BatchSampler(byte[] data, int B, int T, long seed) {
        checkShape(data, B, T);
        this.data = data;
        this.B = B;
        this.T = T;
        this.starts = data.length - T;
        this.state = seed;
    }

    /** B random windows of T+1 consecutive bytes (uniform start in [0, data.length - T - 1]), as ints 0..255, row-major [B, T+1]. */
    public int[] next() {
        int T1 = T + 1;
        int[] out = new int[B * T1];
        for (int r = 0; r < B; r++) {
            int start = nextInt(starts);
            copyWindow(data, start, out, r * T1, T1);
        }
        return out;
    }

    /** The generator state after the last next(): restoring it reproduces the following batches exactly. */
    public long state() {
        return state;
    }

    /** Sets the generator state to one returned by {@link #state()}. */
    public void restore(long state) {
        this.state = state;
    }

    /** Rows per batch. */
    public int rows() {
        return B;
    }

    /** Sequence length T (a row holds T+1 bytes). */
    public int length() {
        return T;
    }

    /**
     * Fixed, evenly spaced windows covering the data for evaluation: batch i of {@code count};
     * deterministic, independent of any RNG. Windows never overlap when the data is long enough.
     *
     * <p>The {@code W = B * count} windows, numbered {@code j = i * B + r} for row r of batch i,
     * start at {@code floor(j * (data.length - T - 1) / (W - 1))} (0 when W = 1): the first
     * starts at the beginning of the data and the last ends at its end. When
     * {@code data.length >= W * (T+1)} the spacing is at least T+1, so no two windows share a byte.
     */
    public static int[] evalBatch(byte[] data, int B, int T, int i, int count) {
        checkShape(data, B, T);
        if (count < 1 || i < 0 || i >= count) {
            throw new IllegalArgumentException("evaluation batch " + i + " of " + count + " does not exist");
        }
        long windows = (long) B * count;
        if (windows > 0x1_0000_0000L) {   // keeps j * maxStart below 2^32 * 2^31 = 2^63
            throw new IllegalArgumentException(windows + " evaluation windows is more than 2^32");
        }
        long maxStart = data.length - T - 1L;
        int T1 = T + 1;
        int[] out = new int[B * T1];
        for (int r = 0; r < B; r++) {
            long j = (long) i * B + r;
            long start = windows == 1 ? 0 : j * maxStart / (windows - 1);
            copyWindow(data, (int) start, out, r * T1, T1);
        }
        return out;
    }

    // ---------------------------------------------------------------- internals

    private static void checkShape(byte[] data, int B, int T) {
        if (B < 1 || T < 1) {
            throw new IllegalArgumentException("batch shape B=" + B + ", T=" + T + ": both must be at least 1");
        }
        if ((long) B * (T + 1L) > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("batch shape B=" + B + ", T=" + T + " is too large for one array");
        }
        if (data.length < T + 1L) {
            throw new IllegalArgumentException(data.length + " bytes of data hold no window of T+1 = " + (T + 1L) + " bytes");
        }
    }

    private static void copyWindow(byte[] data, int start, int[] out, int at, int len) {
        for (int k = 0; k < len; k++) {
            out[at + k] = data[start + k] & 0xFF;
        }
    }

    /** Uniform int in [0, bound) for 1 <= bound <= 2^31 - 1 (Lemire: multiply, reject the biased low part). */
    private int nextInt(int bound) {
        long n = bound;
        long m = (nextLong() >>> 32) * n;              // 32-bit draw times n: fits in 63 bits
        long low = m & 0xFFFFFFFFL;
        if (low < n) {
            long threshold = (0x1_0000_0000L - n) % n;  // 2^32 mod n
            while (low < threshold) {
                m = (nextLong() >>> 32) * n;
                low = m & 0xFFFFFFFFL;
            }
        }
        return (int) (m >>> 32);
    }

    private long nextLong() {
        state += GOLDEN_GAMMA;
        return splitMix64(state);
    }

    /** SplitMix64's output function (Steele, Lea and Flood 2014) for the state after its increment. */
    private static long splitMix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
