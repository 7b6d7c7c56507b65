package mhc.engine.bench;

import mhc.engine.model.Ops;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Validation of one operation on one backend against the plain kernel, before it is timed.
 *
 * <pre>{@code
 * OpCheck.Reference ref = OpCheck.reference(op, new Ops(), seed);     // the plain kernel, once
 * OpCheck.Result r = OpCheck.validate(op, ref, fastOps, seed);        // same inputs, compared
 * if (!r.ok()) System.out.println(r.failure());
 * }</pre>
 *
 * Outputs a kernel overwrites are compared as they are. Outputs it accumulates into are
 * compared after a run that starts from nonzero buffers: the reference run starts from zero and
 * gives the bare contribution {@code c}; the checked run starts from {@code init}, random values
 * of the size of {@code c} (its root mean square), and must end at {@code init + c}. A backend
 * that overwrites instead of adding, adds twice, or adds the wrong amount fails.
 */
public final class OpCheck {
    private OpCheck() {
    }

    /** The plain kernel's run: the instance (reused to time the reference), the starting buffers and the expected outputs. */
    public record Reference(OpCase.Instance instance, Map<String, float[]> initial, Map<String, Object> expected) {
    }

    /** The checked run: whether it passed, {@code max|got - ref| / max|ref|} over the outputs, and what failed. */
    public record Result(boolean ok, double relError, String failure, OpCase.Instance instance) {
    }

    public static Reference reference(OpCase op, Ops plain, long seed) {
        OpCase.Instance a = op.instance(seed);
        a.prepare(plain);
        a.run(plain);
        Map<String, float[]> initial = new LinkedHashMap<>();
        Map<String, Object> expected = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : a.results().entrySet()) {
            String name = e.getKey();
            Object v = e.getValue();
            float[] contribution = a.accumulated().get(name);
            if (contribution != null) {
                float[] init = startingValues(contribution, seed, name);
                float[] want = new float[init.length];
                for (int i = 0; i < want.length; i++) {
                    want[i] = (float) ((double) init[i] + contribution[i]);
                }
                initial.put(name, init);
                expected.put(name, want);
            } else if (v instanceof float[] f) {
                expected.put(name, f.clone());
            } else {
                expected.put(name, ((int[]) v).clone());
            }
        }
        return new Reference(a, initial, expected);
    }

    /** Runs {@code op} on {@code ops} with the reference's inputs and compares every output. */
    public static Result validate(OpCase op, Reference ref, Ops ops, long seed) {
        OpCase.Instance b = op.instance(seed);
        b.prepare(ops);
        for (Map.Entry<String, float[]> e : ref.initial().entrySet()) {
            b.setInitial(e.getKey(), e.getValue());
        }
        b.run(ops);
        double worstRel = 0;
        Map<String, Object> got = b.results();
        for (Map.Entry<String, Object> e : ref.expected().entrySet()) {
            Object g = got.get(e.getKey());
            Validator.Result r = e.getValue() instanceof float[] want
                    ? Validator.check(e.getKey(), want, (float[]) g, op.tolerance())
                    : Validator.check(e.getKey(), (int[]) e.getValue(), (int[]) g);
            if (!r.ok()) {
                return new Result(false, r.relError(), r.mismatch().describe(), b);
            }
            worstRel = Math.max(worstRel, r.relError());
        }
        return new Result(true, worstRel, null, b);
    }

    /** Random starting values of the size of the contribution (its RMS; 1 if it is zero). */
    private static float[] startingValues(float[] contribution, long seed, String name) {
        double ss = 0;
        for (float c : contribution) {
            ss += (double) c * c;
        }
        double rms = Math.sqrt(ss / Math.max(1, contribution.length));
        double scale = rms > 0 && Double.isFinite(rms) ? rms : 1;
        SplittableRandom r = new SplittableRandom(seed * 31 + name.hashCode());
        float[] init = new float[contribution.length];
        for (int i = 0; i < init.length; i++) {
            init[i] = (float) (scale * r.nextGaussian());
        }
        return init;
    }
}
