package mhc.tests;

import org.junit.jupiter.api.Assertions;

import java.util.Arrays;
import java.util.Locale;
import java.util.Random;

/**
 * Small tools shared by the kernel tests: random inputs, the scalar test loss
 * {@code L = sum(out * R)}, a central-difference gradient check over every entry of an input,
 * and the check of the "backward accumulates" convention of {@code mhc.kernels}.
 */
final class KernelHarness {
    /** Central-difference step of the double-precision gradient checks. */
    static final double H = 1e-6;
    /** {@code |fd - analytic| <= ATOL + RTOL |fd|}; see {@link KernelGradientTest} for the reason. */
    static final double ATOL = 1e-7;
    static final double RTOL = 1e-6;

    private KernelHarness() {
    }

    /** The scalar function of the current contents of the input arrays that a check differentiates. */
    @FunctionalInterface
    interface Loss {
        double loss();
    }

    /**
     * One input of a kernel and the gradient array its backward accumulates into. With
     * {@code influential} the input must move the loss (so that the check cannot pass vacuously);
     * without it the expected gradient may be zero (a constant for the gradient, such as a router
     * bias under a fixed selection).
     */
    record Grad(String name, double[] x, double[] g, boolean influential) {
    }

    static Grad grad(String name, double[] x, double[] g) {
        return new Grad(name, x, g, true);
    }

    static Grad constant(String name, double[] x, double[] g) {
        return new Grad(name, x, g, false);
    }

    static double[] gauss(Random rnd, int size, double scale) {
        double[] a = new double[size];
        for (int i = 0; i < size; i++) {
            a[i] = scale * rnd.nextGaussian();
        }
        return a;
    }

    static double[] uniform(Random rnd, int size, double lo, double hi) {
        double[] a = new double[size];
        for (int i = 0; i < size; i++) {
            a[i] = lo + (hi - lo) * rnd.nextDouble();
        }
        return a;
    }

    /** Float inputs for the precision tests: gaussian, rounded to float (so exactly representable in both). */
    static float[] gaussF(Random rnd, int size, double scale) {
        float[] a = new float[size];
        for (int i = 0; i < size; i++) {
            a[i] = (float) (scale * rnd.nextGaussian());
        }
        return a;
    }

    static float[] uniformF(Random rnd, int size, double lo, double hi) {
        float[] a = new float[size];
        for (int i = 0; i < size; i++) {
            a[i] = (float) (lo + (hi - lo) * rnd.nextDouble());
        }
        return a;
    }

    static double dot(double[] a, double[] b) {
        Assertions.assertEquals(a.length, b.length, "dot: length");
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    static double maxAbs(double[] a) {
        double m = 0;
        for (double v : a) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    /**
     * Compares {@code analytic} with central differences of {@code loss} in every entry of
     * {@code x} ({@code x} is restored, and the loss is evaluated once more at the unperturbed
     * point so that whatever the forward keeps for the backward is current again).
     */
    static void gradCheck(String what, Loss loss, double[] x, double[] analytic, boolean influential) {
        Assertions.assertEquals(x.length, analytic.length, what + ": gradient length");
        double[] fd = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double orig = x[i];
            x[i] = orig + H;
            double lp = loss.loss();
            x[i] = orig - H;
            double lm = loss.loss();
            x[i] = orig;
            fd[i] = (lp - lm) / (2 * H);
        }
        loss.loss();
        Check.close(what + " (reference: central difference, h=" + H + ")", fd, analytic, ATOL, RTOL);
        if (influential) {
            Assertions.assertTrue(maxAbs(fd) > 1e-4, what + ": the input does not move the loss (max |fd| "
                    + maxAbs(fd) + "), the check would be vacuous");
        }
    }

    static void gradCheck(String what, Loss loss, double[] x, double[] analytic) {
        gradCheck(what, loss, x, analytic, true);
    }

    /**
     * The whole check of one backward family: evaluates the loss (the forward), runs
     * {@code backward} (which must call the backward kernels with {@code dout = R}) into zeroed
     * gradient arrays, compares every gradient with central differences, then checks the
     * accumulation convention.
     */
    static void verify(String family, Loss loss, Runnable backward, Grad... grads) {
        for (Grad g : grads) {
            Arrays.fill(g.g(), 0);
        }
        loss.loss();
        backward.run();
        for (Grad g : grads) {
            gradCheck(family + ": d L / d " + g.name(), loss, g.x(), g.g(), g.influential());
        }
        assertAccumulates(family, loss, backward, grads);
    }

    /**
     * "Every backward accumulates (+=) into every gradient it writes": run into zeroed arrays
     * once, then once more without zeroing, and every gradient must have doubled (scratch
     * buffers, which a backward overwrites, are not in {@code grads} and must not leak into them).
     */
    static void assertAccumulates(String family, Loss loss, Runnable backward, Grad... grads) {
        for (Grad g : grads) {
            Arrays.fill(g.g(), 0);
        }
        loss.loss();
        backward.run();
        double[][] once = new double[grads.length][];
        double nonzero = 0;
        for (int k = 0; k < grads.length; k++) {
            once[k] = grads[k].g().clone();
            nonzero = Math.max(nonzero, maxAbs(once[k]));
        }
        Assertions.assertTrue(nonzero > 0, family + ": all gradients are zero");
        backward.run();
        for (int k = 0; k < grads.length; k++) {
            double[] twice = new double[once[k].length];
            for (int i = 0; i < twice.length; i++) {
                twice[i] = 2 * once[k][i];
            }
            Check.close(String.format(Locale.ROOT, "%s: backward called twice must double d L / d %s (+= convention)",
                    family, grads[k].name()), twice, grads[k].g(), 0, 1e-12);
        }
    }
}
