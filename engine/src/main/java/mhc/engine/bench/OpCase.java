package mhc.engine.bench;

import mhc.engine.model.Ops;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.LongFunction;

/**
 * One benchmarked operation of {@link Ops} at one shape: how to build its inputs (seeded, so
 * every backend sees the same numbers), which outputs to compare with the plain kernel, with what
 * tolerance, and how much work one call does (floating-point operations, or bytes moved for the
 * memory-bound ones; {@link #formula()} says how it is counted).
 */
public record OpCase(String name, Group group, String shape, double work, Unit unit, String formula,
                     Validator.Tolerance tolerance, LongFunction<Instance> factory) {

    public enum Group {
        FORWARD("forward"), BACKWARD("backward"), OPTIMIZER("optimizer");

        public final String label;

        Group(String label) {
            this.label = label;
        }
    }

    /** What {@link #work()} counts: FLOP (rate in GFLOP/s) or bytes moved (rate in GB/s). */
    public enum Unit {
        FLOP("GFLOP/s"), BYTE("GB/s");

        public final String rate;

        Unit(String rate) {
            this.rate = rate;
        }
    }

    /** The method of {@link Ops} this case times: its name up to the first space ("matmulForward C->F" times matmulForward). */
    public String method() {
        int space = name.indexOf(' ');
        return space < 0 ? name : name.substring(0, space);
    }

    /** Fresh inputs and outputs; the same seed gives the same numbers. */
    public Instance instance(long seed) {
        return factory.apply(seed);
    }

    /**
     * The arrays of one call. Outputs are registered by name: {@link #overwritten} ones (the
     * kernels' {@code =}) start as NaN (floats) or -1 (ints), so that an entry a backend forgets
     * to write fails the comparison; {@link #accumulated} ones (the kernels' {@code +=}) start at
     * zero in the reference run, which therefore yields the bare contribution, and at the same
     * nonzero values, set by {@link #setInitial}, in the run being checked.
     */
    public abstract static class Instance {
        private final LinkedHashMap<String, Object> outputs = new LinkedHashMap<>();
        private final LinkedHashMap<String, float[]> accumulated = new LinkedHashMap<>();

        /** Work that belongs to the backend under test but is not timed (e.g. its own forward state). */
        public void prepare(Ops ops) {
        }

        /** The timed call. */
        public abstract void run(Ops ops);

        /** The outputs to compare, by name (float[] or int[]). */
        public Map<String, Object> results() {
            return Collections.unmodifiableMap(outputs);
        }

        /** The outputs that accumulate, by name. */
        public Map<String, float[]> accumulated() {
            return Collections.unmodifiableMap(accumulated);
        }

        /** Sets an accumulated output's starting values. */
        public void setInitial(String name, float[] values) {
            System.arraycopy(values, 0, accumulated.get(name), 0, values.length);
        }

        protected final float[] overwritten(String name, int size) {
            float[] a = new float[size];
            Arrays.fill(a, Float.NaN);
            outputs.put(name, a);
            return a;
        }

        protected final int[] overwrittenInts(String name, int size) {
            int[] a = new int[size];
            Arrays.fill(a, -1);
            outputs.put(name, a);
            return a;
        }

        protected final float[] accumulated(String name, int size) {
            float[] a = new float[size];
            outputs.put(name, a);
            accumulated.put(name, a);
            return a;
        }

        /** An output the call reads and rewrites in place (a parameter and its optimizer moments). */
        protected final float[] updated(String name, float[] initial) {
            outputs.put(name, initial);
            return initial;
        }

        /** An output array the call writes but that is not compared (backend-specific state). */
        protected static float[] state(int size) {
            return new float[size];
        }
    }
}
