package mhc.engine.jvm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Causal multi-head attention, tiled in the manner of FlashAttention-2: the forward walks the
 * keys in blocks of {@link #BC} for each block of {@link #BR} queries with an online softmax
 * (running max and sum per query row), so at most one BR x BC block of scores exists at a time,
 * and keeps only the per-row log-sum-exp {@code lse = max + log(sum)} for the backward: the
 * attention state is B*H*T floats instead of the plain kernel's B*H*T*T probabilities. The
 * backward recomputes each block's probabilities {@code P = exp(S - lse)} from q and k, with
 * {@code delta_t = dout_t · out_t} standing in for the plain kernel's {@code sum_s att ds}.
 *
 * <p>Semantics are the plain kernel's ({@code mhc.kernels.Attention}): same inputs (q and k with
 * RoPE applied), {@code out} overwritten, dq, dk, dv added to. One task per (batch row, head),
 * each writing its own columns: tasks are independent and computed in a fixed order inside, so
 * results do not depend on the thread count.
 *
 * <p>Layout: per task the head's q, k, dout and v are gathered into contiguous rows of
 * {@code Dp} floats (D rounded up to a whole vector, zero-padded), and k and v also transposed
 * ({@code D x Tp}, zero-padded), so that each of the five block products is a broadcast-FMA loop
 * over contiguous vectors: scores {@code S = Q Kᵀ} and {@code dP = dO Vᵀ} vectorize along the
 * keys, {@code O += P V}, {@code dQ += dS K}, {@code dK += dSᵀ Q}, {@code dV += Pᵀ dO} along the
 * head dimension. Products stop at the last key vector a block's queries can see, so the causal
 * upper triangle costs only the part inside the diagonal blocks.
 *
 * <p>Block sizes: a key block of 256 covers gpt-small's whole sequence, so each query row does
 * one softmax pass and no rescaling; 32 query rows keep a block of scores at 32 KiB (L1).
 */
final class FastAttention {
    private static final VectorSpecies<Float> SP = VectorMath.SP;
    private static final int VL = VectorMath.VL;
    /** Keys per block (a multiple of the vector length and of BR). */
    static final int BC = 256;
    /** Queries per block; divides BC, so a key block never starts inside a query block. */
    static final int BR = 32;

    private FastAttention() {
    }

    /** Work arrays of one thread, grown as needed. */
    private static final class Buf {
        float[] q = new float[0], k = new float[0], v = new float[0], dO = new float[0];
        float[] kT = new float[0], vT = new float[0];
        float[] dq = new float[0], dk = new float[0], dv = new float[0], o = new float[0];
        final float[] s = new float[BR * BC], p = new float[BR * BC];
        final float[] m = new float[BR], l = new float[BR];
        float[] delta = new float[0];
        final float[] tmp = new float[VL];

        void ensure(int T, int Dp, int Tp, int D) {
            if (q.length < T * Dp) {
                q = new float[T * Dp];
                k = new float[T * Dp];
                v = new float[T * Dp];
                dO = new float[T * Dp];
                dq = new float[T * Dp];
            }
            if (delta.length < T) {
                delta = new float[T];
            }
            if (kT.length < D * Tp) {
                kT = new float[D * Tp];
                vT = new float[D * Tp];
            }
            if (dk.length < BC * Dp) {
                o = new float[BR * Dp];
                dk = new float[BC * Dp];
                dv = new float[BC * Dp];
            }
        }
    }

    private static final ThreadLocal<Buf> BUFS = ThreadLocal.withInitial(Buf::new);

    static int stateSize(int B, int T, int H) {
        return B * H * T;
    }

    /**
     * Row length of the transposed k and v: T rounded up to whole vectors, and to an odd number
     * of them, so that the D rows of the transpose do not all fall into the same few L1 sets (a
     * 1 KiB stride, T = 256, made the transposing gather 5x slower).
     */
    private static int transposedRow(int T) {
        int Tp = roundUp(T, VL);
        return (Tp / VL) % 2 == 0 ? Tp + VL : Tp;
    }

    // ------------------------------------------------------------------ forward

    /** {@code out = softmax(q kᵀ / sqrt(D), causal) v} per head; {@code lse} (B, H, T) for the backward. */
    static void forward(Workers workers, float[] out, float[] lse, float[] q, float[] k, float[] v,
                        int B, int T, int C, int H) {
        workers.run(B * H, task -> forwardHead(out, lse, q, k, v, task / H, task % H, T, C, H, BUFS.get()));
    }

    private static void forwardHead(float[] out, float[] lse, float[] q, float[] k, float[] v,
                                    int b, int h, int T, int C, int H, Buf buf) {
        int D = C / H;
        int Dp = roundUp(D, VL), Tp = transposedRow(T), nvD = Dp / VL;
        float scale = (float) (1.0 / Math.sqrt(D));
        buf.ensure(T, Dp, Tp, D);
        int base = b * T * C + h * D;
        gatherRows(buf.q, q, base, T, C, D, Dp);
        gatherRows(buf.v, v, base, T, C, D, Dp);
        gatherTransposed(buf.kT, k, base, T, C, D, Tp);
        float[] s = buf.s, o = buf.o, m = buf.m, l = buf.l;
        for (int qb = 0; qb < T; qb += BR) {
            int rows = Math.min(BR, T - qb);
            Arrays.fill(o, 0, rows * Dp, 0f);
            Arrays.fill(m, Float.NEGATIVE_INFINITY);
            Arrays.fill(l, 0f);
            int kEnd = qb + rows; // keys 0 .. kEnd-1 are visible to some row of this block
            for (int kb = 0; kb < kEnd; kb += BC) {
                int cols = Math.min(BC, kEnd - kb);
                int nv = (cols + VL - 1) / VL;
                mulAdd(s, 0, BC, rows, nv, buf.q, qb * Dp, Dp, 1, D, buf.kT, kb, Tp, false);
                for (int i = 0; i < rows; i++) {
                    int visible = Math.min(cols, qb + i - kb + 1); // keys kb .. t; >= 1 as BR divides BC
                    int row = i * BC;
                    float mNew = Math.max(m[i], scaleMaskMax(s, row, scale, visible, nv));
                    float sum = expShiftSum(s, row, mNew, visible, nv, buf.tmp);
                    if (m[i] == Float.NEGATIVE_INFINITY) {
                        l[i] = sum; // first block of the row: nothing to rescale (o is 0)
                    } else {
                        float alpha = VectorMath.exp(m[i] - mNew);
                        l[i] = l[i] * alpha + sum;
                        scale(o, i * Dp, Dp, alpha);
                    }
                    m[i] = mNew;
                }
                mulAdd(o, 0, Dp, rows, nvD, s, 0, BC, 1, cols, buf.v, kb * Dp, Dp, true);
            }
            for (int i = 0; i < rows; i++) {
                int t = qb + i;
                scale(o, i * Dp, Dp, 1f / l[i]);
                System.arraycopy(o, i * Dp, out, base + t * C, D);
                lse[(b * H + h) * T + t] = m[i] + (float) Math.log(l[i]);
            }
        }
    }

    // ------------------------------------------------------------------ backward

    /** Adds the gradients of q, k and v given {@code dout}, the forward's {@code out} and its {@code lse}. */
    static void backward(Workers workers, float[] dq, float[] dk, float[] dv, float[] dout, float[] lse,
                         float[] q, float[] k, float[] v, float[] out, int B, int T, int C, int H) {
        workers.run(B * H, task -> backwardHead(dq, dk, dv, dout, lse, q, k, v, out, task / H, task % H, T, C, H, BUFS.get()));
    }

    private static void backwardHead(float[] dq, float[] dk, float[] dv, float[] dout, float[] lse,
                                     float[] q, float[] k, float[] v, float[] out,
                                     int b, int h, int T, int C, int H, Buf buf) {
        int D = C / H;
        int Dp = roundUp(D, VL), Tp = transposedRow(T), nvD = Dp / VL;
        float scale = (float) (1.0 / Math.sqrt(D));
        buf.ensure(T, Dp, Tp, D);
        int base = b * T * C + h * D;
        gatherRows(buf.q, q, base, T, C, D, Dp);
        gatherRows(buf.k, k, base, T, C, D, Dp);
        gatherRows(buf.dO, dout, base, T, C, D, Dp);
        gatherTransposed(buf.kT, k, base, T, C, D, Tp);
        gatherTransposed(buf.vT, v, base, T, C, D, Tp);
        float[] delta = buf.delta;
        deltas(delta, dout, out, base, T, C, D);
        int lseOff = (b * H + h) * T;
        float[] p = buf.p, ds = buf.s, dQ = buf.dq, dK = buf.dk, dV = buf.dv;
        Arrays.fill(dQ, 0, T * Dp, 0f);
        for (int kb = 0; kb < T; kb += BC) {
            int cols = Math.min(BC, T - kb);
            Arrays.fill(dK, 0, cols * Dp, 0f);
            Arrays.fill(dV, 0, cols * Dp, 0f);
            for (int qb = kb; qb < T; qb += BR) { // queries before kb see none of these keys
                int rows = Math.min(BR, T - qb);
                int seen = Math.min(cols, qb + rows - kb); // keys of this block the last row sees
                int nv = (seen + VL - 1) / VL;
                mulAdd(p, 0, BC, rows, nv, buf.q, qb * Dp, Dp, 1, D, buf.kT, kb, Tp, false);
                mulAdd(ds, 0, BC, rows, nv, buf.dO, qb * Dp, Dp, 1, D, buf.vT, kb, Tp, false);
                for (int i = 0; i < rows; i++) {
                    int t = qb + i;
                    scoreGradients(p, ds, i * BC, Math.min(seen, t - kb + 1), nv, scale, lse[lseOff + t], delta[t]);
                }
                // dV[j] += sum_i P[i][j] dO[i];  dK[j] += sum_i dS[i][j] Q[i];  dQ[i] += sum_j dS[i][j] K[j]
                mulAdd(dV, 0, Dp, seen, nvD, p, 0, 1, BC, rows, buf.dO, qb * Dp, Dp, true);
                mulAdd(dK, 0, Dp, seen, nvD, ds, 0, 1, BC, rows, buf.q, qb * Dp, Dp, true);
                mulAdd(dQ, qb * Dp, Dp, rows, nvD, ds, 0, BC, 1, seen, buf.k, kb * Dp, Dp, true);
            }
            for (int j = 0; j < cols; j++) {
                addRow(dk, base + (kb + j) * C, dK, j * Dp, D);
                addRow(dv, base + (kb + j) * C, dV, j * Dp, D);
            }
        }
        for (int t = 0; t < T; t++) {
            addRow(dq, base + t * C, dQ, t * Dp, D);
        }
    }

    /**
     * {@code delta[t] = dout_t · out_t} over the head's D columns, each one FMA chain over d in
     * order. Four rows' chains advance together: one chain alone waits on each FMA's latency
     * (4 cycles on Zen 3), about 20 us per gpt-small head; the same chains, so the same bits.
     */
    private static void deltas(float[] delta, float[] dout, float[] out, int base, int T, int C, int D) {
        int t = 0;
        for (; t + 4 <= T; t += 4) {
            int o0 = base + t * C, o1 = o0 + C, o2 = o1 + C, o3 = o2 + C;
            float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f;
            for (int d = 0; d < D; d++) {
                a0 = Math.fma(dout[o0 + d], out[o0 + d], a0);
                a1 = Math.fma(dout[o1 + d], out[o1 + d], a1);
                a2 = Math.fma(dout[o2 + d], out[o2 + d], a2);
                a3 = Math.fma(dout[o3 + d], out[o3 + d], a3);
            }
            delta[t] = a0;
            delta[t + 1] = a1;
            delta[t + 2] = a2;
            delta[t + 3] = a3;
        }
        for (; t < T; t++) {
            int o = base + t * C;
            float acc = 0f;
            for (int d = 0; d < D; d++) {
                acc = Math.fma(dout[o + d], out[o + d], acc);
            }
            delta[t] = acc;
        }
    }

    // ------------------------------------------------------------------ row steps
    // Kept as small methods over arrays: a vector never crosses a call that C2 might decline to
    // inline (inside the large per-head methods it hit the inlining node limit, and a vector
    // passed to a call that is not inlined is boxed, a heap allocation per call).

    /**
     * The first {@code nv} vectors of a row of scores times {@code scale}, keys from
     * {@code visible} on set to -infinity; returns the row's max.
     */
    private static float scaleMaskMax(float[] s, int row, float scale, int visible, int nv) {
        FloatVector mx = FloatVector.broadcast(SP, Float.NEGATIVE_INFINITY);
        int full = visible / VL * VL;
        int j = 0;
        for (; j < full; j += VL) {
            FloatVector x = FloatVector.fromArray(SP, s, row + j).mul(scale);
            x.intoArray(s, row + j);
            mx = mx.max(x);
        }
        for (; j < nv * VL; j += VL) { // the partial vector on the diagonal, then any past it
            FloatVector x = FloatVector.fromArray(SP, s, row + j).mul(scale);
            x = x.blend(Float.NEGATIVE_INFINITY, SP.indexInRange(j, visible).not());
            x.intoArray(s, row + j);
            mx = mx.max(x);
        }
        return mx.reduceLanes(VectorOperators.MAX); // exact in any order
    }

    /**
     * {@code s = exp(s - shift)} over the first {@code nv} vectors of a row (masked keys give 0);
     * returns the sum over the visible keys, lanes added in order.
     */
    private static float expShiftSum(float[] s, int row, float shift, int visible, int nv, float[] tmp) {
        for (int j = 0; j < nv * VL; j += VL) {
            FloatVector.fromArray(SP, s, row + j).sub(shift).intoArray(s, row + j);
        }
        VectorMath.expInPlace(s, row, nv * VL);
        FloatVector acc = FloatVector.zero(SP);
        for (int j = 0; j < nv * VL; j += VL) {
            acc = acc.add(FloatVector.fromArray(SP, s, row + j));
        }
        acc.intoArray(tmp, 0);
        return VectorMath.sumLanes(tmp);
    }

    private static void scale(float[] a, int off, int n, float f) {
        for (int d = 0; d < n; d += VL) {
            FloatVector.fromArray(SP, a, off + d).mul(f).intoArray(a, off + d);
        }
    }

    /** {@code dst[dOff + d] += src[sOff + d]} for d < n. */
    private static void addRow(float[] dst, int dOff, float[] src, int sOff, int n) {
        int d = 0;
        for (int bound = SP.loopBound(n); d < bound; d += VL) {
            FloatVector.fromArray(SP, dst, dOff + d).add(FloatVector.fromArray(SP, src, sOff + d)).intoArray(dst, dOff + d);
        }
        for (; d < n; d++) {
            dst[dOff + d] += src[sOff + d];
        }
    }

    /**
     * One query row of a block in the backward, over its first {@code nv} vectors: {@code p}
     * holds the raw scores q·k and becomes {@code P = exp(scale s - lse)} (0 from key
     * {@code visible} on); {@code ds} holds {@code dP = dout·v} and becomes
     * {@code dS = P (dP - delta) scale}.
     */
    private static void scoreGradients(float[] p, float[] ds, int row, int visible, int nv, float scale, float lse, float delta) {
        for (int j = 0; j < nv * VL; j += VL) {
            FloatVector.fromArray(SP, p, row + j).mul(scale).sub(lse).intoArray(p, row + j);
        }
        VectorMath.expInPlace(p, row, nv * VL);
        int full = visible / VL * VL;
        int j = 0;
        for (; j < full; j += VL) {
            FloatVector pr = FloatVector.fromArray(SP, p, row + j);
            pr.mul(FloatVector.fromArray(SP, ds, row + j).sub(delta)).mul(scale).intoArray(ds, row + j);
        }
        for (; j < nv * VL; j += VL) {
            FloatVector pr = FloatVector.fromArray(SP, p, row + j).blend(0f, SP.indexInRange(j, visible).not());
            pr.intoArray(p, row + j);
            pr.mul(FloatVector.fromArray(SP, ds, row + j).sub(delta)).mul(scale).intoArray(ds, row + j);
        }
    }

    // ------------------------------------------------------------------ gathers and the block product

    /** Head columns of (T, C) rows into T rows of Dp floats, zero-padded past D. */
    private static void gatherRows(float[] dst, float[] src, int base, int T, int C, int D, int Dp) {
        for (int t = 0; t < T; t++) {
            System.arraycopy(src, base + t * C, dst, t * Dp, D);
            if (Dp > D) {
                Arrays.fill(dst, t * Dp + D, t * Dp + Dp, 0f);
            }
        }
    }

    /**
     * Head columns of (T, C) rows transposed into D rows of Tp floats, zero-padded past T. VL
     * rows' elements of one column at a time, by a gather with the row stride C (vgatherdps):
     * one gpt-small head (T = 256, D = 64) in about 11 us on Zen 3 against 22 for scalar
     * copies, which write each element to another row of the transpose.
     */
    private static void gatherTransposed(float[] dst, float[] src, int base, int T, int C, int D, int Tp) {
        int full = T / VL * VL;
        int[] idx = FastGemm.gatherIndex(C);
        for (int t = 0; t < full; t += VL) {
            int s = base + t * C;
            for (int d = 0; d < D; d++) {
                FloatVector.fromArray(SP, src, s + d, idx, 0).intoArray(dst, d * Tp + t);
            }
        }
        for (int t = full; t < T; t++) {
            int s = base + t * C;
            for (int d = 0; d < D; d++) {
                dst[d * Tp + t] = src[s + d];
            }
        }
        if (Tp > T) {
            for (int d = 0; d < D; d++) {
                Arrays.fill(dst, d * Tp + T, d * Tp + Tp, 0f);
            }
        }
    }

    /**
     * {@code out[r*ldo + x] (+)= sum_{k<depth} a[aOff + r*ars + k*acs] * bm[bOff + k*ldb + x]} for
     * r < rows and x < nv*VL: each element one FMA chain over k in order, starting from 0, then
     * (with {@code acc}) added to out. Register blocks of 4 rows x 4 vectors
     * ({@link #WIDE_BLOCKS}), then 4 x 2, 4 x 1 and 1 x 1.
     *
     * <p>Out is added after the last k, as in FastGemm, not loaded as the chains' start: the
     * chains would wait for those loads (out's rows lie in L1 or L2, and some products here are
     * only 32 deep). One head of T = C = 256 on Zen 3 (AVX2), old and new alternated in one JVM,
     * five runs of 31 rounds: forward 1.06-1.13x and backward 1.06-1.11x as fast (paired medians).
     */
    static void mulAdd(float[] out, int oOff, int ldo, int rows, int nv, float[] a, int aOff, int ars, int acs,
                       int depth, float[] bm, int bOff, int ldb, boolean acc) {
        if (!WIDE_BLOCKS && ars == 1 && acs == BC && nv % 2 == 0) {
            // A read transposed from a block of scores (the backward's P^T dO and dS^T Q): rows
            // outer, so each row group's column of scores (32 lines, one per k) serves every
            // column block while it is in L1, instead of the whole 32 KiB block being read again
            // per column block. One gpt-small head's backward 0-6% faster on AVX2 (four runs,
            // alternated in one JVM); each element's chain is unchanged, so the same bits.
            int r = 0;
            for (; r + 4 <= rows; r += 4) {
                for (int x = 0; x < nv; x += 2) {
                    block4x2Transposed(out, oOff + r * ldo + x * VL, ldo, a, aOff + r, depth, bm, bOff + x * VL, ldb, acc);
                }
            }
            for (; r < rows; r++) {
                for (int x = 0; x < nv; x++) {
                    block1x1(out, oOff + r * ldo + x * VL, a, aOff + r, acs, depth, bm, bOff + x * VL, ldb, acc);
                }
            }
            return;
        }
        int x = 0;
        for (; WIDE_BLOCKS && x + 4 <= nv; x += 4) {
            int r = 0;
            for (; r + 4 <= rows; r += 4) {
                block4x4(out, oOff + r * ldo + x * VL, ldo, a, aOff + r * ars, ars, acs, depth, bm, bOff + x * VL, ldb, acc);
            }
            for (; r < rows; r++) {
                for (int xv = x; xv < x + 4; xv++) {
                    block1x1(out, oOff + r * ldo + xv * VL, a, aOff + r * ars, acs, depth, bm, bOff + xv * VL, ldb, acc);
                }
            }
        }
        for (; x + 2 <= nv; x += 2) {
            int r = 0;
            for (; r + 4 <= rows; r += 4) {
                if (ars == 1 && acs == BC) {
                    block4x2Transposed(out, oOff + r * ldo + x * VL, ldo, a, aOff + r * ars, depth, bm, bOff + x * VL, ldb, acc);
                } else if (acs == 1) {
                    block4x2Rows(out, oOff + r * ldo + x * VL, ldo, a, aOff + r * ars, ars, depth, bm, bOff + x * VL, ldb, acc);
                } else { // other strides (no caller uses them): the same FMA chains, a vector at a time
                    for (int xv = x; xv < x + 2; xv++) {
                        block4x1(out, oOff + r * ldo + xv * VL, ldo, a, aOff + r * ars, ars, acs, depth, bm, bOff + xv * VL, ldb, acc);
                    }
                }
            }
            for (; r < rows; r++) {
                for (int xv = x; xv < x + 2; xv++) {
                    block1x1(out, oOff + r * ldo + xv * VL, a, aOff + r * ars, acs, depth, bm, bOff + xv * VL, ldb, acc);
                }
            }
        }
        for (; x < nv; x++) {
            int r = 0;
            for (; r + 4 <= rows; r += 4) {
                block4x1(out, oOff + r * ldo + x * VL, ldo, a, aOff + r * ars, ars, acs, depth, bm, bOff + x * VL, ldb, acc);
            }
            for (; r < rows; r++) {
                block1x1(out, oOff + r * ldo + x * VL, a, aOff + r * ars, acs, depth, bm, bOff + x * VL, ldb, acc);
            }
        }
    }

    /**
     * Whether {@link #mulAdd} uses 4 x 4 blocks: their 16 accumulators and 4 loads of B fit in
     * 32 vector registers (AVX-512); with 16 (AVX2) C2 spills them, as it does FastGemm's
     * 6 x 16 tile, so there the 4 x 2 blocks (8 accumulators) do all full blocks: at one head
     * of T = C = 256 on Zen 3 the forward took 1.23 ms instead of 1.53 and the backward 3.0
     * instead of 3.6 (best of 12, three of four alternated runs). The blocking never changes an
     * element's FMA chain, so the results are the same bits.
     */
    static final boolean WIDE_BLOCKS = VL >= 16;

    private static void block4x4(float[] out, int o, int ldo, float[] a, int ao, int ars, int acs, int depth,
                                 float[] bm, int bo, int ldb, boolean acc) {
        FloatVector z = FloatVector.zero(SP);
        FloatVector c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
        FloatVector c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
        for (int k = 0; k < depth; k++) {
            int b = bo + k * ldb;
            FloatVector b0 = FloatVector.fromArray(SP, bm, b);
            FloatVector b1 = FloatVector.fromArray(SP, bm, b + VL);
            FloatVector b2 = FloatVector.fromArray(SP, bm, b + 2 * VL);
            FloatVector b3 = FloatVector.fromArray(SP, bm, b + 3 * VL);
            int ak = ao + k * acs;
            FloatVector x = FloatVector.broadcast(SP, a[ak]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            c02 = x.fma(b2, c02);
            c03 = x.fma(b3, c03);
            x = FloatVector.broadcast(SP, a[ak + ars]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            c12 = x.fma(b2, c12);
            c13 = x.fma(b3, c13);
            x = FloatVector.broadcast(SP, a[ak + 2 * ars]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            c22 = x.fma(b2, c22);
            c23 = x.fma(b3, c23);
            x = FloatVector.broadcast(SP, a[ak + 3 * ars]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            c32 = x.fma(b2, c32);
            c33 = x.fma(b3, c33);
        }
        if (acc) {
            c00 = c00.add(FloatVector.fromArray(SP, out, o));
            c01 = c01.add(FloatVector.fromArray(SP, out, o + VL));
            c02 = c02.add(FloatVector.fromArray(SP, out, o + 2 * VL));
            c03 = c03.add(FloatVector.fromArray(SP, out, o + 3 * VL));
            c10 = c10.add(FloatVector.fromArray(SP, out, o + ldo));
            c11 = c11.add(FloatVector.fromArray(SP, out, o + ldo + VL));
            c12 = c12.add(FloatVector.fromArray(SP, out, o + ldo + 2 * VL));
            c13 = c13.add(FloatVector.fromArray(SP, out, o + ldo + 3 * VL));
            c20 = c20.add(FloatVector.fromArray(SP, out, o + 2 * ldo));
            c21 = c21.add(FloatVector.fromArray(SP, out, o + 2 * ldo + VL));
            c22 = c22.add(FloatVector.fromArray(SP, out, o + 2 * ldo + 2 * VL));
            c23 = c23.add(FloatVector.fromArray(SP, out, o + 2 * ldo + 3 * VL));
            c30 = c30.add(FloatVector.fromArray(SP, out, o + 3 * ldo));
            c31 = c31.add(FloatVector.fromArray(SP, out, o + 3 * ldo + VL));
            c32 = c32.add(FloatVector.fromArray(SP, out, o + 3 * ldo + 2 * VL));
            c33 = c33.add(FloatVector.fromArray(SP, out, o + 3 * ldo + 3 * VL));
        }
        c00.intoArray(out, o);
        c01.intoArray(out, o + VL);
        c02.intoArray(out, o + 2 * VL);
        c03.intoArray(out, o + 3 * VL);
        c10.intoArray(out, o + ldo);
        c11.intoArray(out, o + ldo + VL);
        c12.intoArray(out, o + ldo + 2 * VL);
        c13.intoArray(out, o + ldo + 3 * VL);
        c20.intoArray(out, o + 2 * ldo);
        c21.intoArray(out, o + 2 * ldo + VL);
        c22.intoArray(out, o + 2 * ldo + 2 * VL);
        c23.intoArray(out, o + 2 * ldo + 3 * VL);
        c30.intoArray(out, o + 3 * ldo);
        c31.intoArray(out, o + 3 * ldo + VL);
        c32.intoArray(out, o + 3 * ldo + 2 * VL);
        c33.intoArray(out, o + 3 * ldo + 3 * VL);
    }

    /**
     * A 4 x 2 register block (4 rows of A, 2 vectors of B: 8 accumulators) where A's rows are
     * contiguous in k ({@code acs == 1}: the scores times V, dS times K, Q times K^T): each row's
     * index is k plus a fixed base, so C2 checks A's loads once per call instead of on every
     * step (with a stride known only at run time it cannot). Attention forward and backward of
     * one gpt-small head 3-4% faster on AVX2 than with the general strides, alternated in one
     * JVM; the same FMA chains, so the same bits. (A B operand repacked to a constant stride as
     * well gave nothing measurable.)
     */
    private static void block4x2Rows(float[] out, int o, int ldo, float[] a, int ao, int ars, int depth,
                                     float[] bm, int bo, int ldb, boolean acc) {
        FloatVector z = FloatVector.zero(SP);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        int r0 = ao, r1 = ao + ars, r2 = ao + 2 * ars, r3 = ao + 3 * ars;
        int b = bo;
        for (int k = 0; k < depth; k++) {
            FloatVector b0 = FloatVector.fromArray(SP, bm, b);
            FloatVector b1 = FloatVector.fromArray(SP, bm, b + VL);
            FloatVector x = FloatVector.broadcast(SP, a[r0 + k]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(SP, a[r1 + k]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(SP, a[r2 + k]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(SP, a[r3 + k]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            b += ldb;
        }
        if (acc) {
            c00 = c00.add(FloatVector.fromArray(SP, out, o));
            c01 = c01.add(FloatVector.fromArray(SP, out, o + VL));
            c10 = c10.add(FloatVector.fromArray(SP, out, o + ldo));
            c11 = c11.add(FloatVector.fromArray(SP, out, o + ldo + VL));
            c20 = c20.add(FloatVector.fromArray(SP, out, o + 2 * ldo));
            c21 = c21.add(FloatVector.fromArray(SP, out, o + 2 * ldo + VL));
            c30 = c30.add(FloatVector.fromArray(SP, out, o + 3 * ldo));
            c31 = c31.add(FloatVector.fromArray(SP, out, o + 3 * ldo + VL));
        }
        c00.intoArray(out, o);
        c01.intoArray(out, o + VL);
        c10.intoArray(out, o + ldo);
        c11.intoArray(out, o + ldo + VL);
        c20.intoArray(out, o + 2 * ldo);
        c21.intoArray(out, o + 2 * ldo + VL);
        c30.intoArray(out, o + 3 * ldo);
        c31.intoArray(out, o + 3 * ldo + VL);
    }

    /**
     * {@link #block4x2Rows} for A read transposed from a block of scores ({@code ars == 1, acs ==
     * BC}: the backward's P^T dO and dS^T Q): A's index is a constant multiple of k, so C2 checks
     * its loads once per call. Attention's backward of one gpt-small head 9% faster on AVX2
     * (alternated in one JVM); the same bits.
     */
    private static void block4x2Transposed(float[] out, int o, int ldo, float[] a, int ao, int depth,
                                     float[] bm, int bo, int ldb, boolean acc) {
        FloatVector z = FloatVector.zero(SP);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        int b = bo;
        for (int k = 0; k < depth; k++) {
            FloatVector b0 = FloatVector.fromArray(SP, bm, b);
            FloatVector b1 = FloatVector.fromArray(SP, bm, b + VL);
            FloatVector x = FloatVector.broadcast(SP, a[ao + BC * k]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(SP, a[ao + 1 + BC * k]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(SP, a[ao + 2 + BC * k]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(SP, a[ao + 3 + BC * k]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            b += ldb;
        }
        if (acc) {
            c00 = c00.add(FloatVector.fromArray(SP, out, o));
            c01 = c01.add(FloatVector.fromArray(SP, out, o + VL));
            c10 = c10.add(FloatVector.fromArray(SP, out, o + ldo));
            c11 = c11.add(FloatVector.fromArray(SP, out, o + ldo + VL));
            c20 = c20.add(FloatVector.fromArray(SP, out, o + 2 * ldo));
            c21 = c21.add(FloatVector.fromArray(SP, out, o + 2 * ldo + VL));
            c30 = c30.add(FloatVector.fromArray(SP, out, o + 3 * ldo));
            c31 = c31.add(FloatVector.fromArray(SP, out, o + 3 * ldo + VL));
        }
        c00.intoArray(out, o);
        c01.intoArray(out, o + VL);
        c10.intoArray(out, o + ldo);
        c11.intoArray(out, o + ldo + VL);
        c20.intoArray(out, o + 2 * ldo);
        c21.intoArray(out, o + 2 * ldo + VL);
        c30.intoArray(out, o + 3 * ldo);
        c31.intoArray(out, o + 3 * ldo + VL);
    }

    private static void block4x1(float[] out, int o, int ldo, float[] a, int ao, int ars, int acs, int depth,
                                 float[] bm, int bo, int ldb, boolean acc) {
        FloatVector z = FloatVector.zero(SP);
        FloatVector c0 = z, c1 = z, c2 = z, c3 = z;
        for (int k = 0; k < depth; k++) {
            FloatVector b0 = FloatVector.fromArray(SP, bm, bo + k * ldb);
            int ak = ao + k * acs;
            c0 = FloatVector.broadcast(SP, a[ak]).fma(b0, c0);
            c1 = FloatVector.broadcast(SP, a[ak + ars]).fma(b0, c1);
            c2 = FloatVector.broadcast(SP, a[ak + 2 * ars]).fma(b0, c2);
            c3 = FloatVector.broadcast(SP, a[ak + 3 * ars]).fma(b0, c3);
        }
        if (acc) {
            c0 = c0.add(FloatVector.fromArray(SP, out, o));
            c1 = c1.add(FloatVector.fromArray(SP, out, o + ldo));
            c2 = c2.add(FloatVector.fromArray(SP, out, o + 2 * ldo));
            c3 = c3.add(FloatVector.fromArray(SP, out, o + 3 * ldo));
        }
        c0.intoArray(out, o);
        c1.intoArray(out, o + ldo);
        c2.intoArray(out, o + 2 * ldo);
        c3.intoArray(out, o + 3 * ldo);
    }

    private static void block1x1(float[] out, int o, float[] a, int ao, int acs, int depth,
                                 float[] bm, int bo, int ldb, boolean acc) {
        FloatVector c0 = FloatVector.zero(SP);
        for (int k = 0; k < depth; k++) {
            c0 = FloatVector.broadcast(SP, a[ao + k * acs]).fma(FloatVector.fromArray(SP, bm, bo + k * ldb), c0);
        }
        if (acc) {
            c0 = c0.add(FloatVector.fromArray(SP, out, o));
        }
        c0.intoArray(out, o);
    }

    private static int roundUp(int n, int m) {
        return (n + m - 1) / m * m;
    }
}
