package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * One AdamW step on a flat tensor, in PyTorch's order: decoupled weight decay
 * {@code p *= 1 - lr wd}, then the moments {@code m = b1 m + (1-b1) g}, {@code v = b2 v + (1-b2) g^2}
 * and {@code p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)} with the bias corrections
 * {@code bc = 1 - b^t}. {@code gradScale} applies global-norm clipping without a pass of its own.
 *
 * <p>The scheduled form ({@link #adamwUpdateScheduled}) and the gradient-norm kernels
 * ({@link #sumOfSquares}, {@link #clipScale}) serve an optimizer step that runs where the
 * gradients are, on a device: the learning rate, bias corrections and clip scale change every
 * step, and a device kernel's scalar arguments are compiled into it, so they travel in a small
 * array ({@code hp}, laid out by the {@code HP_*} indices) instead.
 */
public final class AdamW {
    private AdamW() {
    }

    /** {@code hp[HP_LR]}: the learning rate of this step (set by the host). */
    public static final int HP_LR = 0;
    /** {@code hp[HP_BC1]}, {@code hp[HP_BC2]}: the bias corrections {@code 1 - b^t} (set by the host). */
    public static final int HP_BC1 = 1;
    public static final int HP_BC2 = 2;
    /** {@code hp[HP_SCALE]}: the clip scale (set by {@link #clipScale}). */
    public static final int HP_SCALE = 3;
    /** {@code hp[HP_APPLY]}: 1 to apply the step, 0 to leave everything as it is (set by {@link #clipScale}). */
    public static final int HP_APPLY = 4;
    public static final int HP_SIZE = 5;

    /** {@code stats[STAT_NORM]}: the global gradient norm; {@code stats[STAT_LOSS_SUM]}: the sum of the per-position losses. */
    public static final int STAT_NORM = 0;
    public static final int STAT_LOSS_SUM = 1;
    public static final int STAT_SIZE = 2;

    public static void adamwUpdate(float[] param, // (size)
                                   float[] grad,  // (size)
                                   float[] m,     // (size) first moment
                                   float[] v,     // (size) second moment
                                   float lr, float beta1, float beta2, float eps, float weightDecay,
                                   float gradScale, float bc1, float bc2, int size) {
        float stepSize = lr / bc1;
        float sqrtBc2 = (float) Math.sqrt(bc2);
        for (@Parallel int i = 0; i < size; i++) {
            float g = grad[i] * gradScale;
            float mi = beta1 * m[i] + (1f - beta1) * g;
            float vi = beta2 * v[i] + (1f - beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            float p = param[i] * (1f - lr * weightDecay);
            param[i] = p - stepSize * mi / ((float) Math.sqrt(vi) / sqrtBc2 + eps);
        }
    }

    /**
     * {@link #adamwUpdate} with the learning rate, bias corrections and clip scale read from
     * {@code hp}; nothing changes where {@code hp[HP_APPLY]} is 0 (a non-finite gradient norm).
     * The same arithmetic, so the same bits as {@link #adamwUpdate} given the same values.
     */
    public static void adamwUpdateScheduled(float[] param, float[] grad, float[] m, float[] v,
                                            float[] hp, // (HP_SIZE)
                                            float beta1, float beta2, float eps, float weightDecay, int size) {
        for (@Parallel int i = 0; i < size; i++) {
            if (hp[HP_APPLY] != 0f) {
                float lr = hp[HP_LR];
                float stepSize = lr / hp[HP_BC1];
                float sqrtBc2 = (float) Math.sqrt(hp[HP_BC2]);
                float g = grad[i] * hp[HP_SCALE];
                float mi = beta1 * m[i] + (1f - beta1) * g;
                float vi = beta2 * v[i] + (1f - beta2) * g * g;
                m[i] = mi;
                v[i] = vi;
                float p = param[i] * (1f - lr * weightDecay);
                param[i] = p - stepSize * mi / ((float) Math.sqrt(vi) / sqrtBc2 + eps);
            }
        }
    }

    /**
     * Partial sums of squares of one tensor: {@code partials[slot + p]} = the sum of {@code x[i]^2}
     * over the p-th of {@code parts} contiguous chunks, p in parallel. A tensor's chunks are
     * summed in order, in float; {@link #clipScale} adds the partials of all tensors in double.
     */
    public static void sumOfSquares(float[] partials, float[] x, int slot, int size, int parts) {
        int chunk = (size + parts - 1) / parts;
        for (@Parallel int p = 0; p < parts; p++) {
            int end = Math.min(size, (p + 1) * chunk);
            float s = 0f;
            for (int i = p * chunk; i < end; i++) {
                s += x[i] * x[i];
            }
            partials[slot + p] = s;
        }
    }

    /**
     * One thread: the global gradient norm from {@code count} partial sums (in order, in
     * double), the clip scale {@code min(1, clip / (norm + 1e-6))} and whether to apply the
     * step (the norm and the loss sum are finite) into {@code hp}, and the norm and the sum of the {@code N}
     * per-position losses into {@code stats}.
     */
    public static void clipScale(float[] stats, // (STAT_SIZE)
                                 float[] hp,    // (HP_SIZE)
                                 float[] partials, float[] losses, int count, int N, float clip) {
        double s = 0;
        for (int i = 0; i < count; i++) {
            s += partials[i];
        }
        double loss = 0;
        for (int r = 0; r < N; r++) {
            loss += losses[r];
        }
        double norm = Math.sqrt(s);
        float normOut = (float) norm;
        float lossOut = (float) loss;
        // applied when both are finite as the host reads them: NaN fails every comparison
        boolean finite = normOut <= Float.MAX_VALUE && lossOut <= Float.MAX_VALUE && lossOut >= -Float.MAX_VALUE;
        hp[HP_SCALE] = (float) Math.min(1.0, clip / (norm + 1e-6));
        hp[HP_APPLY] = finite ? 1f : 0f;
        stats[STAT_NORM] = normOut;
        stats[STAT_LOSS_SUM] = lossOut;
    }
}
