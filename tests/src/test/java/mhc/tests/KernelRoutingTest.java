package mhc.tests;

import mhc.kernels.Moe;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The integer side of MoE routing that no gradient sees (MODEL.md, "MoE FFN"): the K experts
 * with the largest {@code s_e + router_bias[e]}, ties to the lower e, in descending order; the
 * gates {@code s_e / sum_selected s}; and the per-expert row lists of {@code moeDispatch}.
 */
class KernelRoutingTest {

    private static int[] route(float[] logits, float[] bias, int N, int E, int K, float[] gates, float[] scores) {
        int[] sel = new int[N * K];
        Moe.moeRouteForward(sel, gates, scores, logits, bias, N, E, K);
        return sel;
    }

    @Test
    void tiesGoToTheLowerExpert() {
        int E = 4, K = 2;
        float[] zero = new float[E];
        // All affinities equal (sigmoid(0) = 0.5): the lowest experts win, in order.
        assertArrayEquals(new int[]{0, 1}, route(zero, zero, 1, E, K, new float[K], new float[E]),
                "all tied: experts 0, 1");
        // Experts 1 and 3 tie on top, 0 and 2 tie below.
        assertArrayEquals(new int[]{1, 3}, route(zero, new float[]{0, 0.25f, 0, 0.25f}, 1, E, K, new float[K],
                new float[E]), "tie between 1 and 3 on top");
        // One clear winner (3), then a tie between 0 and 2 for the second slot.
        assertArrayEquals(new int[]{3, 0}, route(zero, new float[]{0, -0.25f, 0, 0.5f}, 1, E, K, new float[K],
                new float[E]), "second slot: tie between 0 and 2");
    }

    @Test
    void selectionIsDescendingAndGatesNormalizeTheSelectedAffinities() {
        Random rnd = new Random(21);
        int N = 9, E = 7, K = 3;
        float[] logits = KernelHarness.gaussF(rnd, N * E, 2);
        float[] bias = KernelHarness.gaussF(rnd, E, 0.3);
        float[] gates = new float[N * K];
        float[] scores = new float[N * E];
        int[] sel = route(logits, bias, N, E, K, gates, scores);
        for (int r = 0; r < N; r++) {
            double[] val = new double[E];
            for (int e = 0; e < E; e++) {
                assertEquals(1 / (1 + Math.exp(-logits[r * E + e])), scores[r * E + e], 1e-6, "score sigmoid");
                val[e] = scores[r * E + e] + bias[e];
            }
            // The reference selection: repeatedly the largest remaining value, lower e on ties.
            boolean[] taken = new boolean[E];
            double sum = 0;
            for (int k = 0; k < K; k++) {
                int best = -1;
                for (int e = 0; e < E; e++) {
                    if (!taken[e] && (best < 0 || val[e] > val[best])) {
                        best = e;
                    }
                }
                taken[best] = true;
                assertEquals(best, sel[r * K + k], "token " + r + " slot " + k);
                sum += scores[r * E + best];
            }
            double gsum = 0;
            for (int k = 0; k < K; k++) {
                assertEquals(scores[r * E + sel[r * K + k]] / sum, gates[r * K + k], 1e-6, "gate " + r + "," + k);
                gsum += gates[r * K + k];
            }
            assertEquals(1.0, gsum, 1e-6, "gates of token " + r + " sum to 1");
        }
    }

    @Test
    void dispatchListsRowsInTokenOrder() {
        int N = 5, E = 4, K = 2;
        int[] sel = {2, 0, 0, 3, 2, 3, 1, 2, 0, 2};
        int[] rows = new int[E * N];
        int[] slots = new int[E * N];
        int[] counts = new int[E];
        Moe.moeDispatch(rows, slots, counts, sel, N, E, K);
        assertArrayEquals(new int[]{3, 1, 4, 2}, counts, "loads");
        int[][] wantRows = {{0, 1, 4}, {3}, {0, 2, 3, 4}, {1, 2}};
        int[][] wantSlots = {{1, 0, 0}, {0}, {0, 0, 1, 1}, {1, 1}};
        for (int e = 0; e < E; e++) {
            assertArrayEquals(wantRows[e], java.util.Arrays.copyOfRange(rows, e * N, e * N + counts[e]), "rows of " + e);
            assertArrayEquals(wantSlots[e], java.util.Arrays.copyOfRange(slots, e * N, e * N + counts[e]),
                    "slots of " + e);
        }
    }
}
