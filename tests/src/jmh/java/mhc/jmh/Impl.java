package mhc.jmh;

import mhc.engine.jvm.FastOps;
import mhc.engine.jvm.FusedOps;
import mhc.engine.model.Ops;

import java.util.Random;

/**
 * The implementations compared: {@code plain} (the reference kernels), {@code fused} (the
 * fused scalar connection kernels, {@code FusedOps}) and {@code fast} (the Vector API path).
 */
final class Impl {
    private Impl() {
    }

    static Ops ops(String impl, int threads) {
        return switch (impl) {
            case "plain" -> {
                if (threads != 1) {
                    throw new IllegalArgumentException("the plain kernels are single-threaded: use threads=1");
                }
                yield new Ops();
            }
            case "fused" -> {
                if (threads != 1) {
                    throw new IllegalArgumentException("the fused kernels are single-threaded: use threads=1");
                }
                yield new FusedOps();
            }
            case "fast" -> new FastOps(threads);
            default -> throw new IllegalArgumentException("impl: plain, fused or fast, not " + impl);
        };
    }

    static float[] gauss(Random rnd, int size) {
        float[] a = new float[size];
        for (int i = 0; i < size; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }
}
