package mhc.engine.jvm;

import mhc.engine.Backend;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The two pieces of vector math the fast kernels share, written so that results are the same
 * bit for bit in every JIT tier and run.
 *
 * <p>Why not the Vector API's own: {@code lanewise(EXP)} is an SVML call in C2-compiled code but
 * {@code Math.exp} per lane in the interpreter and C1, and the two differ in the last bit; and
 * {@code reduceLanes(ADD)} on floats has an unspecified order (C2 may reduce as a tree, the
 * fallback sums in lane order). Either would make a run's numbers depend on when the JIT compiled
 * what. Here exp is a polynomial of exactly rounded operations (add, multiply, fma, bit shifts),
 * and lane sums go through memory in lane order; a scalar twin of exp gives the same bits for
 * tails. (Lane max, being exact, may use {@code reduceLanes(MAX)}.)
 */
final class VectorMath {
    /**
     * The vector shape of every fast kernel: the machine's preferred one, or a narrower one with
     * {@code -Dmhc.vector.bits=128|256} (the layouts of AVX2 and of 128-bit machines such as
     * NEON can then be tested on a wider machine). A width above the preferred one is taken only
     * with {@code -Dmhc.vector.emulate=true}, since the Vector API runs it in plain Java: the
     * tests use it for AVX-512's layouts on narrower machines.
     */
    static final VectorSpecies<Float> SP = species(Backend.requestedVectorBits());
    static final int VL = SP.length();

    /**
     * The machine's preferred species, or the one of {@code bits} (0: not asked) where that is
     * narrower, or wider with {@link Backend#emulateWiderVectors()}.
     */
    private static VectorSpecies<Float> species(int bits) {
        VectorSpecies<Float> preferred = FloatVector.SPECIES_PREFERRED;
        boolean take = bits != 0 && (bits < preferred.vectorBitSize() || Backend.emulateWiderVectors());
        return take ? VectorSpecies.of(float.class, VectorShape.forBitSize(bits)) : preferred;
    }

    private VectorMath() {
    }

    // Cephes' expf: exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 in two parts, and a
    // degree-7 polynomial for exp(r) on |r| <= ln2/2: relative error about 1 ulp (2e-7).
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;
    /** 1.5 * 2^23: adding it rounds to an integer that then sits in the low mantissa bits. */
    private static final float ROUND = 12582912f;
    /** Below this, exp is under the smallest normal float: the result is 0 (as for -infinity). */
    private static final float LO = -87.33654f;
    /** Clamp above: exp(88) = 1.65e38 still fits (the overflow case only meets 1/(1+exp) here). */
    private static final float HI = 88f;

    /**
     * {@code a[i] = e^a[i]} for the {@code len} entries from {@code off} ({@code len} a multiple
     * of VL); 0 below -87.3 (so -infinity gives 0), NaN stays NaN.
     *
     * <p>Over an array, not a vector, and with no call inside: a vector passed to or returned
     * from a call that C2 does not inline is boxed on the heap. That happened in the training
     * step (a vector exp called from attention's large per-head backward, past C2's inlining
     * node limit: an allocation per call and a slow path, which changed with the JIT's choices
     * from run to run). This method either inlines whole or stays a call over arrays.
     */
    static void expInPlace(float[] a, int off, int len) {
        for (int i = off, end = off + len; i < end; i += VL) {
            FloatVector x = FloatVector.fromArray(SP, a, i);
            FloatVector xc = x.max(LO).min(HI);
            FloatVector t = xc.fma(LOG2E, ROUND);
            FloatVector n = t.sub(ROUND);
            FloatVector r = n.fma(FloatVector.broadcast(SP, -LN2_HI), xc);
            r = n.fma(FloatVector.broadcast(SP, -LN2_LO), r);
            FloatVector p = r.fma(P0, P1);
            p = p.fma(r, FloatVector.broadcast(SP, P2));
            p = p.fma(r, FloatVector.broadcast(SP, P3));
            p = p.fma(r, FloatVector.broadcast(SP, P4));
            p = p.fma(r, FloatVector.broadcast(SP, P5));
            FloatVector r2 = r.mul(r);
            p = p.fma(r2, r.add(1f));
            IntVector bits = ((IntVector) t.reinterpretAsInts()).add(127).lanewise(VectorOperators.LSHL, 23);
            FloatVector e = p.mul((FloatVector) bits.reinterpretAsFloats());
            e.blend(0f, x.lt(LO)).intoArray(a, i);
        }
    }

    /** The scalar twin of {@link #expInPlace}: the same operations, the same bits. */
    static float exp(float x) {
        float xc = Math.min(Math.max(x, LO), HI);
        float t = Math.fma(xc, LOG2E, ROUND);
        float n = t - ROUND;
        float r = Math.fma(n, -LN2_HI, xc);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        float r2 = r * r;
        p = Math.fma(p, r2, r + 1f);
        float e = p * Float.intBitsToFloat((Float.floatToRawIntBits(t) + 127) << 23);
        return x < LO ? 0f : e;
    }

    /**
     * Sum of the VL lanes a vector left in {@code tmp} (by {@code intoArray(tmp, 0)}), in lane
     * order. Takes the array, not the vector: a vector passed to a method that C2 does not
     * inline is boxed on the heap, and this is called from large loops.
     */
    static float sumLanes(float[] tmp) {
        float s = 0f;
        for (int i = 0; i < VL; i++) {
            s += tmp[i];
        }
        return s;
    }
}
