package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * Zeroing a buffer as a kernel: where the model's buffers live on a device between kernels,
 * clearing one before a backward accumulates into it is itself a device operation.
 */
public final class Fill {
    private Fill() {
    }

    /** {@code a[0..size) = 0}. */
    public static void zero(float[] a, int size) {
        for (@Parallel int i = 0; i < size; i++) {
            a[i] = 0f;
        }
    }
}
