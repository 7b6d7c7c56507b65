package mhc.kernels;

import uk.ac.manchester.tornado.api.annotations.Parallel;

/** Softmax cross-entropy per position: {@code loss[r] = logsumexp(logits[r]) - logits[r][target[r]]}. */
public final class CrossEntropy {
    private CrossEntropy() {
    }

    public static void crossEntropyForward(float[] losses,  // (N)
                                           float[] probs,   // (N, V) softmax, kept for backward
                                           float[] logits,  // (N, V)
                                           int[] targets,   // (N)
                                           int N, int V) {
        for (@Parallel int r = 0; r < N; r++) {
            float max = Float.NEGATIVE_INFINITY;
            for (int v = 0; v < V; v++) {
                max = Math.max(max, logits[r * V + v]);
            }
            float sum = 0f;
            for (int v = 0; v < V; v++) {
                float e = (float) Math.exp(logits[r * V + v] - max);
                probs[r * V + v] = e;
                sum += e;
            }
            float inv = 1f / sum;
            for (int v = 0; v < V; v++) {
                probs[r * V + v] *= inv;
            }
            losses[r] = (float) (Math.log(sum) + max - logits[r * V + targets[r]]);
        }
    }

    /** Undoes the loss with weight {@code dloss} per position: {@code dlogits += dloss (probs - onehot(target))}. */
    public static void crossEntropyBackward(float[] dlogits, // (N, V)
                                            float[] probs,   // (N, V)
                                            int[] targets,   // (N)
                                            float dloss,     // d(total loss)/d(loss[r]), 1/N for a mean
                                            int N, int V) {
        for (@Parallel int r = 0; r < N; r++) {
            for (@Parallel int v = 0; v < V; v++) {
                float ind = v == targets[r] ? 1f : 0f;
                dlogits[r * V + v] += dloss * (probs[r * V + v] - ind);
            }
        }
    }
}
