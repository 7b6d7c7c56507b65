package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/**
 * One AdamW step on a flat tensor, in PyTorch's order: decoupled weight decay
 * {@code p *= 1 - lr wd}, then the moments {@code m = b1 m + (1-b1) g}, {@code v = b2 v + (1-b2) g^2}
 * and {@code p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)} with the bias corrections
 * {@code bc = 1 - b^t}. {@code gradScale} applies global-norm clipping without a pass of its own.
 */
public final class AdamW {
    private AdamW() {
    }

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
}
