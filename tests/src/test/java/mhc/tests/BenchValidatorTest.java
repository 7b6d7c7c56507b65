package mhc.tests;

import mhc.engine.bench.Bench;
import mhc.engine.bench.BenchOps;
import mhc.engine.bench.OpCase;
import mhc.engine.bench.OpCheck;
import mhc.engine.bench.Shapes;
import mhc.engine.bench.Validator;
import mhc.engine.model.Ops;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The validator of {@code mhc bench}: it passes the plain kernels and catches a wrong backend. */
class BenchValidatorTest {
    /** Small shapes: B=2 T=16 C=32 H=2 n=4 F=48 V=256, MoE E=4 K=2 S=1 F=16, 20 Sinkhorn iterations. */
    static final Shapes SMALL = new Shapes(2, 16, 32, 2, 4, 48, 256, 4, 2, 1, 16, 20);
    static final long SEED = 7;

    /** Adds 1e-2 to one output of the forward matmul: the kind of slip a hand-vectorized tail loop makes. */
    static class OffByOneEntry extends Ops {
        @Override
        public void matmulForward(float[] out, float[] inp, float[] w, int wOff, int N, int IN, int OUT) {
            super.matmulForward(out, inp, w, wOff, N, IN, OUT);
            out[17] += 1e-2f;
        }
    }

    /** Overwrites the input gradient instead of adding to it. */
    static final class Overwrites extends Ops {
        @Override
        public void matmulBackwardInput(float[] dinp, float[] dout, float[] w, int wOff, int N, int IN, int OUT) {
            java.util.Arrays.fill(dinp, 0, N * IN, 0f);
            super.matmulBackwardInput(dinp, dout, w, wOff, N, IN, OUT);
        }
    }

    /** Leaves the last row of the RMSNorm output unwritten. */
    static final class SkipsLastRow extends Ops {
        @Override
        public void rmsnormForward(float[] out, float[] rstd, float[] x, float[] w, int N, int C) {
            float[] tmp = out.clone();
            super.rmsnormForward(out, rstd, x, w, N, C);
            System.arraycopy(tmp, (N - 1) * C, out, (N - 1) * C, C);
        }
    }

    static OpCase op(String name) {
        return BenchOps.all(SMALL).stream().filter(c -> c.name().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no op " + name));
    }

    static OpCheck.Result check(String name, Ops ops) {
        OpCase c = op(name);
        return OpCheck.validate(c, OpCheck.reference(c, new Ops(), SEED), ops, SEED);
    }

    /** Overrides nothing: every call runs {@link OffByOneEntry}'s or the plain kernel. */
    static final class InheritsAll extends OffByOneEntry {
    }

    @Test
    void aDeviceRunsTheKernelOfTheMostDerivedClassThatDeclaresTheMethod() {
        assertEquals(OffByOneEntry.class, Bench.kernelClass(InheritsAll.class, "matmulForward"));
        assertEquals(Ops.class, Bench.kernelClass(InheritsAll.class, "rmsnormForward"));
        assertEquals(Ops.class, Bench.kernelClass(Ops.class, "matmulForward"));
        assertNull(Bench.kernelClass(InheritsAll.class, "noSuchKernel"));
        // every case times a method of Ops, named by the first word of the case's name
        for (OpCase c : BenchOps.all(SMALL)) {
            assertEquals(Ops.class, Bench.kernelClass(Ops.class, c.method()), c.name() + " -> " + c.method());
        }
        assertEquals("matmulForward", op("matmulForward C->F").method());
        assertEquals("sinkhornForward", op("sinkhornForward").method());
    }

    @Test
    void everyOpPassesOnThePlainKernels() {
        List<OpCase> all = BenchOps.all(SMALL);
        Set<String> names = new HashSet<>();
        for (OpCase c : all) {
            assertTrue(names.add(c.name()), "op names are unique: " + c.name());
            assertTrue(c.work() > 0, c.name() + ": work");
            OpCheck.Result r = OpCheck.validate(c, OpCheck.reference(c, new Ops(), SEED), new Ops(), SEED);
            assertTrue(r.ok(), c.name() + " at " + c.shape() + ": " + r.failure());
        }
        for (String expected : List.of("matmulForward C->C", "matmulBackwardInput C->F", "matmulBackwardWeight F->C",
                "matmulForward C->V", "matmulForward nC->M", "rmsnormForward", "ropeBackward", "attentionForward",
                "attentionBackward", "swigluForward", "crossEntropyBackward", "embeddingForward", "aggregateForward",
                "mixBackward", "collapseBackward", "mhcPreForward", "mhcPreBackward", "hcPreForward", "hcPreBackward",
                "moeRouteForward", "moeDispatch", "moeGather", "moeCombineBackward", "adamwUpdate")) {
            assertTrue(names.contains(expected), "the op list has " + expected);
        }
    }

    @Test
    void aWrongEntryIsFoundWithItsIndexAndValues() {
        OpCheck.Result r = check("matmulForward C->C", new OffByOneEntry());
        assertFalse(r.ok(), "an output off by 1e-2 must fail");
        assertTrue(r.failure().contains("output 'out'") && r.failure().contains("worst at index 17")
                && r.failure().contains("1 of "), r.failure());
        // the other matmul shapes go through the same override
        assertFalse(check("matmulForward C->F", new OffByOneEntry()).ok());
        assertTrue(check("matmulBackwardInput C->C", new OffByOneEntry()).ok(), "backwards do not call matmulForward");
    }

    @Test
    void aBackwardThatOverwritesInsteadOfAccumulatingFails() {
        OpCheck.Result r = check("matmulBackwardInput C->C", new Overwrites());
        assertFalse(r.ok(), "the checked run starts from nonzero gradients, so overwriting them must fail");
        assertTrue(r.failure().contains("'dinp'"), r.failure());
        assertTrue(check("matmulBackwardWeight C->C", new Overwrites()).ok());
    }

    @Test
    void anUnwrittenOutputFails() {
        OpCheck.Result r = check("rmsnormForward", new SkipsLastRow());
        assertFalse(r.ok());
        assertTrue(r.failure().contains("NaN"), "outputs start as NaN: " + r.failure());
    }

    @Test
    void toleranceIsRelativeToTheLargestReference() {
        float[] ref = {1000f, 1e-3f, -2f};
        Validator.Tolerance t = Validator.Tolerance.STANDARD; // 1e-4 * max|ref| + 1e-4 * |ref|
        assertNull(Validator.compare("a", ref, new float[]{1000.05f, 1e-3f + 0.05f, -2f}, t), "within 0.1 = 1e-4 * 1000");
        Validator.Mismatch m = Validator.compare("a", ref, new float[]{1000f, 0.5f, -2f}, t);
        assertNotNull(m);
        assertEquals(1, m.index());
        assertEquals(1, m.bad());
        assertNotNull(Validator.compare("a", ref, new float[]{1000f, Float.NaN, -2f}, t), "NaN fails");
        assertNull(Validator.check("i", new int[]{1, 2}, new int[]{1, 2}).mismatch());
        assertEquals(1, Validator.check("i", new int[]{1, 2}, new int[]{1, 3}).mismatch().index());
    }
}
