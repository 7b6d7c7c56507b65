package mhc.engine.jvm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * A packed, blocked single-precision GEMM on the Vector API, and the three products of a
 * linear map {@code out = inp · W} (MODEL.md stores W as {@code [IN, OUT]}) on top of it.
 *
 * <p>Layout (Goto/BLIS): C (M x N) is cut into macro tiles of at most {@link #NC} columns by
 * row ranges (on one thread, all rows; see {@link #gemm}), one task each. A task walks K in
 * blocks of {@link #KC}: it packs the KC x nc block of B into column panels of {@link #NR}
 * (k-major, {@code bp[k*NR + j]}) and then, for each {@link #MC} rows of its range, the
 * mc x KC block of A into row panels of {@link #MR} ({@code ap[k*MR + i]}), zero-padding the
 * edges, and runs the MR x NR micro-kernel over every (panel of B, panel of A) pair, B panel
 * outer, so the B panel (KC x NR: 256 x 32 floats = 32 KiB with AVX-512) stays in L1 while
 * the A panels stream from L2.
 * The micro-kernel keeps the MR x NR tile of C in registers: MR*NR/VL = 24 accumulators of
 * the 32 AVX-512 registers, 2 loads of B and MR broadcasts of A per k for 24 FMAs. Packing
 * hides the transposes of the backward products: any stride pattern of A and B packs to the same
 * layout.
 *
 * <p>The micro-kernels start their accumulators at zero and add C (accumulate, or a K block
 * after the first) only after the last k. Starting the FMA chains from C instead made every
 * chain wait for C's loads, which miss the caches in large products (C's rows lie a whole row
 * of C apart, a pattern the hardware prefetchers do not follow), and on AVX2 eight chains of
 * 4-cycle FMAs are exactly what keeps both FMA units busy, so the wait was never made up.
 * Measured on AVX2 (Zen 3, one thread, old and new alternated in one JVM, paired medians of
 * 21 rounds): input gradients 1.28x at 1024^3 and 1.33-1.35x at gpt-small's shapes (256 x 256
 * x 688, 256 x 688 x 256, 256 x 256 x 768), weight gradients 1.33x and 1.11-1.36x, forwards
 * 0.98-1.06x. The AVX-512 kernels work the same way, for one summation order at every width
 * (not measured there).
 *
 * <p>Determinism: every element of C is, per K block of {@link #KC} in increasing order, one
 * FMA chain over the block's k in increasing order from 0, then added to C (or stored, for the
 * first block of an overwrite). That does not depend on the macro tiling, the edge handling or
 * the thread that runs the tile: results are bit-identical for any thread count. They do depend
 * on KC, which is fixed per vector width. The scalar fallback (interpreter, C1) of
 * {@code FloatVector.fma} is {@code Math.fma}, so it is also the same in every JIT tier.
 *
 * <p>Numerics against the plain kernel: the plain kernel sums {@code s = sum_k a b} with
 * separate multiply and add and then {@code C += s}; here the products are fused and each K
 * block is such a sum. With K <= KC both are float sums of the same terms in the same order;
 * they differ by rounding only.
 */
public final class FastGemm {
    static final VectorSpecies<Float> SP = VectorMath.SP;
    static final int VL = SP.length();
    /**
     * Rows of the micro-tile: 12 where there are 32 vector registers (AVX-512: 24 accumulators),
     * else 4 (AVX2's 16 registers: 8 accumulators). Measured on AVX2 (Zen 3, Temurin 25), the
     * micro-kernel alone on data in L1: 4 x 16 and 3 x 24 reach 90-97 GFLOP/s of the core's
     * ~100, while every shape with 10 or more accumulators (6 x 16, 5 x 16, 4 x 24) stays at
     * 35-44 with C2 (about 15 cycles per k: accumulators spilled and reloaded), so the textbook
     * 6 x 16 AVX2 tile is the slow one here.
     */
    static final int MR = VL >= 16 ? 12 : 4;
    /** Columns of the micro-tile: two vectors. */
    static final int NR = 2 * VL;
    /**
     * Depth of a K block. With AVX-512, 256: the B panel KC x NR (32 KiB) stays in the 48 KiB
     * L1 (measured best of 192/256/384/512 there). With 8 lanes, 512: measured on AVX2 (Zen 3,
     * 32 KiB L1, 512 KiB L2), with the configurations alternated inside one JVM, 1024^3 ran at
     * 79 GFLOP/s against 76 with 256 (input gradient 78 against 75); the model's products,
     * whose K is at most 688, were within 1%. Fewer K blocks mean fewer micro-kernel calls and
     * fewer loads and stores of C, which outweighs the B panel (32 KiB) filling the L1.
     * Public for the tests: a product over more than KC values of k adds one partial sum per
     * K block to C, so its bits depend on KC.
     */
    public static final int KC = VL >= 16 ? 256 : 512;
    /**
     * Rows of a macro tile's row block (multiple of MR): the packed A block MC x KC lives in L2.
     * 288 with AVX-512 (288 KiB). 96 with 8 lanes (192 KiB, 37% of Zen 3's L2, which also holds
     * the B panels as they stream): measured with KC, as above, 96 against 288 rows.
     */
    static final int MC = VL >= 16 ? 288 : 96;
    /** Columns of a macro tile (multiple of NR): the packed B block KC x NC (1 MiB) lives in L2/L3. */
    static final int NC = 32 * NR;

    private FastGemm() {
    }

    /** Packing buffers of one thread. */
    private static final class Buffers {
        final float[] a = new float[MC * KC];
        final float[] b = new float[NC * KC];
        final float[] tile = new float[MR * NR];
    }

    private static final ThreadLocal<Buffers> BUFFERS = ThreadLocal.withInitial(Buffers::new);

    // ------------------------------------------------------------------ the three products

    /** {@code out[r][o] = sum_i inp[r][i] w[wOff + i*OUT + o]} (overwrites out). */
    public static void matmulForward(Workers workers, float[] out, float[] inp, float[] w, int wOff, int N, int IN, int OUT) {
        matmulForward(workers, null, out, inp, w, wOff, N, IN, OUT);
    }

    /** {@link #matmulForward} with W's packed form taken from, or kept in, {@code packs} (may be null). */
    static void matmulForward(Workers workers, WeightPacks packs, float[] out, float[] inp, float[] w, int wOff,
                              int N, int IN, int OUT) {
        gemm(workers, N, OUT, IN, inp, 0, IN, 1, w, wOff, OUT, 1, out, 0, OUT, false, packs);
    }

    /** {@code dinp[r][i] += sum_o dout[r][o] w[wOff + i*OUT + o]}: B is W transposed. */
    public static void matmulBackwardInput(Workers workers, float[] dinp, float[] dout, float[] w, int wOff, int N, int IN, int OUT) {
        matmulBackwardInput(workers, null, dinp, dout, w, wOff, N, IN, OUT);
    }

    /** {@link #matmulBackwardInput} with W^T's packed form taken from, or kept in, {@code packs} (may be null). */
    static void matmulBackwardInput(Workers workers, WeightPacks packs, float[] dinp, float[] dout, float[] w, int wOff,
                                    int N, int IN, int OUT) {
        gemm(workers, N, IN, OUT, dout, 0, OUT, 1, w, wOff, 1, OUT, dinp, 0, IN, true, packs);
    }

    /**
     * {@code dw[wOff + i*OUT + o] += sum_r inp[r][i] dout[r][o]}: A is inp transposed. With few
     * outputs (OUT <= NR, such as mHC's projection to n*n+2n coefficients) the product is taken
     * transposed, {@code dw^T += dout^T · inp}: inp is then packed as B, row by row and
     * contiguously, instead of being read as a transposed A with one row of inp per step of k,
     * and the OUT rows fill whole micro-tiles where OUT columns would fill part of one. Every
     * element is computed as in the direct product (the same K blocks over the rows, each one's
     * sum added to dw's value), so the result is the same bits.
     */
    public static void matmulBackwardWeight(Workers workers, float[] dw, float[] inp, float[] dout, int wOff, int N, int IN, int OUT) {
        if (OUT <= NR && IN > NR) {
            float[] dwT = TRANSPOSED.get();
            if (dwT.length < IN * OUT) {
                dwT = new float[IN * OUT];
                TRANSPOSED.set(dwT);
            }
            for (int i = 0; i < IN; i++) {
                for (int o = 0; o < OUT; o++) {
                    dwT[o * IN + i] = dw[wOff + i * OUT + o];
                }
            }
            gemm(workers, OUT, IN, N, dout, 0, 1, OUT, inp, 0, IN, 1, dwT, 0, IN, true);
            for (int i = 0; i < IN; i++) {
                for (int o = 0; o < OUT; o++) {
                    dw[wOff + i * OUT + o] = dwT[o * IN + i];
                }
            }
            return;
        }
        gemm(workers, IN, OUT, N, inp, 0, 1, IN, dout, 0, OUT, 1, dw, wOff, OUT, true);
    }

    /** The transposed weight gradient of {@link #matmulBackwardWeight}, one buffer per calling thread. */
    private static final ThreadLocal<float[]> TRANSPOSED = ThreadLocal.withInitial(() -> new float[0]);

    // ------------------------------------------------------------------ row groups (fused kernels)

    /** Floats of {@link #packPanels}' output for a K x cols matrix. */
    public static int panelsSize(int K, int cols) {
        return tiles(cols, NR) * NR * K;
    }

    /**
     * B (K x cols, element (k, j) at {@code b[off + k*brs + j*bcs]}) packed whole into column
     * panels of NR for {@link #rowsTimesPanels}: panel q at {@code q*NR*K}, zero-padded.
     */
    public static void packPanels(float[] bp, float[] b, int off, int brs, int bcs, int K, int cols) {
        packB(bp, 0, b, off, brs, bcs, K, cols);
    }

    /**
     * {@code C (+)= A · B} for a group of {@code rows <= GROUP} rows: A (rows x kc) row-major in
     * place at {@code a[ao + i*lda + k]}, B packed by {@link #packPanels} with depth kc, C
     * (rows x cols) at {@code c[co + i*ldc + j]}. For the fused kernels, which work on a group of
     * tokens while it is in cache; each element is one FMA chain over the kc values of k from 0,
     * then added to C ({@code load}) or stored: as {@link #gemm} computes it where K <= KC, the
     * same bits. {@code aPad} (MR*kc) and {@code tile} (MR*NR) are scratch. The rows run MR at a
     * time.
     */
    public static void rowsTimesPanels(int rows, int kc, float[] a, int ao, int lda, float[] bp, int cols,
                                       float[] c, int co, int ldc, boolean load, float[] aPad, float[] tile) {
        for (int i0 = 0; i0 < rows; i0 += MR) {
            rowBlockTimesPanels(Math.min(MR, rows - i0), kc, a, ao + i0 * lda, lda, bp, cols, c, co + i0 * ldc, ldc,
                    load, aPad, tile);
        }
    }

    /** {@link #rowsTimesPanels} for {@code rows <= MR}: one micro-kernel row block. */
    private static void rowBlockTimesPanels(int rows, int kc, float[] a, int ao, int lda, float[] bp, int cols,
                                            float[] c, int co, int ldc, boolean load, float[] aPad, float[] tile) {
        if (rows < MR) {
            java.util.Arrays.fill(aPad, 0, MR * kc, 0f);
            for (int i = 0; i < rows; i++) {
                System.arraycopy(a, ao + i * lda, aPad, i * kc, kc);
            }
            a = aPad;
            ao = 0;
            lda = kc;
        }
        for (int jr = 0; jr < cols; jr += NR) {
            int w = Math.min(NR, cols - jr);
            if (rows == MR && w == NR) {
                kernelRows(kc, a, ao, lda, bp, jr * kc, c, co + jr, ldc, load);
                continue;
            }
            if (load) {
                java.util.Arrays.fill(tile, 0f);
                for (int i = 0; i < rows; i++) {
                    System.arraycopy(c, co + i * ldc + jr, tile, i * NR, w);
                }
            }
            kernelRows(kc, a, ao, lda, bp, jr * kc, tile, 0, NR, load);
            for (int i = 0; i < rows; i++) {
                System.arraycopy(tile, i * NR, c, co + i * ldc + jr, w);
            }
        }
    }

    /**
     * {@code C = A · B} with B (kc x 3VL) row-major in place ({@code b[k*3VL + j]}: mHC's phi at
     * n = 4 with 8 lanes, whose M = 24 coefficients are three vectors), A's rows in place as in
     * {@link #rowsTimesPanels}. Three rows at a time: 9 accumulators, which C2 keeps in AVX2's
     * 16 registers (measured on data in L1, 3 x 24 runs as fast as 4 x 16), and no column of
     * padding, where {@link #rowsTimesPanels} would compute a second panel of 16 columns for
     * the last 8. Each element is one FMA chain over k from 0, as in {@link #gemm} where
     * K <= KC (the same bits).
     */
    public static void rowsTimesThreeVectors(int rows, int kc, float[] a, int ao, int lda, float[] b,
                                             float[] c, int co, int ldc) {
        for (int i = 0; i < rows; i += 3) {
            // a last group of one or two rows repeats its last row (computed twice, stored twice)
            int i1 = Math.min(i + 1, rows - 1), i2 = Math.min(i + 2, rows - 1);
            kernel3Rows3Vectors(kc, a, ao + i * lda, ao + i1 * lda, ao + i2 * lda, b,
                    c, co + i * ldc, co + i1 * ldc, co + i2 * ldc);
        }
    }

    private static void kernel3Rows3Vectors(int kc, float[] a, int r0, int r1, int r2, float[] b,
                                            float[] c, int c0, int c1, int c2) {
        FloatVector z = FloatVector.zero(SP);
        FloatVector s00 = z, s01 = z, s02 = z, s10 = z, s11 = z, s12 = z, s20 = z, s21 = z, s22 = z;
        for (int k = 0; k < kc; k++) {
            int bo = 3 * VL * k;
            FloatVector b0 = FloatVector.fromArray(SP, b, bo);
            FloatVector b1 = FloatVector.fromArray(SP, b, bo + VL);
            FloatVector b2 = FloatVector.fromArray(SP, b, bo + 2 * VL);
            FloatVector x = FloatVector.broadcast(SP, a[r0 + k]);
            s00 = x.fma(b0, s00);
            s01 = x.fma(b1, s01);
            s02 = x.fma(b2, s02);
            x = FloatVector.broadcast(SP, a[r1 + k]);
            s10 = x.fma(b0, s10);
            s11 = x.fma(b1, s11);
            s12 = x.fma(b2, s12);
            x = FloatVector.broadcast(SP, a[r2 + k]);
            s20 = x.fma(b0, s20);
            s21 = x.fma(b1, s21);
            s22 = x.fma(b2, s22);
        }
        s00.intoArray(c, c0);
        s01.intoArray(c, c0 + VL);
        s02.intoArray(c, c0 + 2 * VL);
        s10.intoArray(c, c1);
        s11.intoArray(c, c1 + VL);
        s12.intoArray(c, c1 + 2 * VL);
        s20.intoArray(c, c2);
        s21.intoArray(c, c2 + VL);
        s22.intoArray(c, c2 + 2 * VL);
    }

    /**
     * {@code C += A^T · B} for A (rows x m) at {@code a[ao + k*lda + i]} and B (rows x cols) at
     * {@code b[bo + k*ldb + j]}, C (m x cols) at {@code c[co + i*ldc + j]}, with m a multiple of MR
     * (the caller pads A with zero columns): a product over a few rows (a group of tokens),
     * each element computed as {@link #gemm} computes it (per K block of rows, a chain from 0 added
     * to C). mHC's projection gradient
     * {@code dphi^T += dh^T · x} per group of tokens while their rows are in cache.
     *
     * <p>Both operands are packed first (this thread's buffers), so the micro-kernel runs with
     * constant strides, and C2 checks its bounds once per call instead of on every load (the
     * strides of A and B read in place are only known at run time). The copy is small beside
     * the product: rows x cols floats of B for rows x m x cols FMAs. Measured on AVX2 with mHC's
     * whole backward ({@code FastMhc.backward}, 256 tokens, n = 4, alternated in one JVM):
     * about even at C = 256, 7% faster at C = 1024.
     */
    public static void addTransposedProduct(int rows, int m, int cols, float[] a, int ao, int lda,
                                            float[] b, int bo, int ldb, float[] c, int co, int ldc) {
        Buffers buf = BUFFERS.get();
        for (int p0 = 0; p0 < rows; p0 += KC) {
            int kc = Math.min(KC, rows - p0);
            for (int j0 = 0; j0 < cols; j0 += NC) {
                int nc = Math.min(NC, cols - j0);
                packB(buf.b, 0, b, bo + p0 * ldb + j0, ldb, 1, kc, nc);
                for (int i1 = 0; i1 < m; i1 += MC) {
                    int mc = Math.min(MC, m - i1);
                    // A^T (mc x kc) into row panels of MR: element (i, k) at a[ao + (p0 + k)*lda + i1 + i]
                    packA(buf.a, a, ao + p0 * lda + i1, 1, lda, mc, kc);
                    for (int jr = 0; jr < nc; jr += NR) {
                        int w = Math.min(NR, nc - jr);
                        for (int i0 = 0; i0 < mc; i0 += MR) {
                            int cc = co + (i1 + i0) * ldc + j0 + jr;
                            if (w == NR) {
                                kernel(kc, buf.a, i0 * kc, buf.b, jr * kc, c, cc, ldc, true);
                            } else {
                                edgeTile(kc, buf.a, i0 * kc, buf.b, jr * kc, c, cc, ldc, true, MR, w, buf.tile);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * Rows of a group for {@link #rowsTimesPanels}, as the fused kernels call it: a multiple of
     * MR and at most one vector of lanes (FastMhc runs a group's coefficients as one vector of
     * tokens): 12 with 16 lanes, 8 with 8, 4 with 4.
     */
    public static final int GROUP = VL >= 16 ? 12 : VL >= 8 ? 8 : 4;

    // ------------------------------------------------------------------ the GEMM

    /**
     * {@code C = A·B} ({@code accumulate}: {@code C += A·B}) with C (M x N) at {@code c[cOff + i*ldc + j]},
     * A (M x K) at {@code a[aOff + i*ars + k*acs]} and B (K x N) at {@code b[bOff + k*brs + j*bcs]}.
     * Macro tiles run as tasks on {@code workers}.
     */
    public static void gemm(Workers workers, int M, int N, int K,
                            float[] a, int aOff, int ars, int acs,
                            float[] b, int bOff, int brs, int bcs,
                            float[] c, int cOff, int ldc, boolean accumulate) {
        gemm(workers, M, N, K, a, aOff, ars, acs, b, bOff, brs, bcs, c, cOff, ldc, accumulate, null);
    }

    /**
     * {@link #gemm} where B, while {@code packs} holds (not null and holding), is packed once and
     * kept there for later calls with the same B: a weight, unchanged during a training step,
     * that each sequence's products would otherwise pack again.
     */
    static void gemm(Workers workers, int M, int N, int K,
                     float[] a, int aOff, int ars, int acs,
                     float[] b, int bOff, int brs, int bcs,
                     float[] c, int cOff, int ldc, boolean accumulate, WeightPacks packs) {
        if (M <= 0 || N <= 0) {
            return;
        }
        if (K <= 0) {
            if (!accumulate) {
                for (int i = 0; i < M; i++) {
                    java.util.Arrays.fill(c, cOff + i * ldc, cOff + i * ldc + N, 0f);
                }
            }
            return;
        }
        int threads = workers.threads();
        // Tasks: column tiles of nc by row ranges of tileRows (a multiple of MR, walked by
        // macroTile in blocks of MC, with each K block of B packed once per task). One thread:
        // one range of all rows. Several: about 4 tasks per thread (load balance on a shared
        // host) from as few row ranges as give that, since each range packs its columns of B
        // again; columns are split further only where there are too few rows. Measured on 2
        // threads (AVX2) against MC-row tiles, each packing B: 1024^3 forward 8% faster, input
        // gradient 25%. The tiling changes which thread computes an element, never how. With
        // borrowed threads (Workers.fewTasks), one range per thread: each further range packs B
        // again for a helper that may not come (4 per thread took 4-5% more CPU per step).
        int nt = tiles(N, NC);
        int perThread = workers.fewTasks() ? 1 : 4;
        int ranges = threads == 1 ? 1 : (perThread * threads + nt - 1) / nt;
        while (ranges > tiles(M, MR) && nt < tiles(N, NR)) {
            nt = Math.min(2 * nt, tiles(N, NR));
            ranges = (perThread * threads + nt - 1) / nt;
        }
        // column tiles of equal width (688 columns: 352 + 336, not 512 + 176)
        int nc = roundUp((N + nt - 1) / nt, NR);
        nt = tiles(N, nc);
        int tileRows = roundUp((M + ranges - 1) / ranges, MR);
        int mt = tiles(M, tileRows);
        int tileCols = nc, columnTiles = nt;
        float[] packed = packs == null ? null : packs.packed(b, bOff, brs, bcs, K, N, nc);
        workers.run(mt * nt, task -> {
            int i0 = (task / columnTiles) * tileRows;
            int tile = task % columnTiles;
            int j0 = tile * tileCols;
            macroTile(Math.min(tileRows, M - i0), Math.min(tileCols, N - j0), K,
                    a, aOff + i0 * ars, ars, acs, b, bOff + j0 * bcs, brs, bcs,
                    c, cOff + i0 * ldc + j0, ldc, accumulate, BUFFERS.get(),
                    packed, tile * K * roundUp(tileCols, NR));
        });
    }

    /**
     * B (K x N) packed as {@link #gemm} packs it for column tiles of nc: tile t's K blocks one
     * after another from {@code t * K * roundUp(nc, NR)}, each as {@link #packB} writes it.
     * {@code out} must hold {@link #packedSize}.
     */
    static void packAll(float[] out, float[] b, int bOff, int brs, int bcs, int K, int N, int nc) {
        for (int t = 0, j0 = 0; j0 < N; t++, j0 += nc) {
            int w = Math.min(nc, N - j0);
            int base = t * K * roundUp(nc, NR);
            for (int p0 = 0; p0 < K; p0 += KC) {
                int kc = Math.min(KC, K - p0);
                packB(out, base + p0 * roundUp(w, NR), b, bOff + j0 * bcs + p0 * brs, brs, bcs, kc, w);
            }
        }
    }

    /** Floats of {@link #packAll}'s output. */
    static int packedSize(int K, int N, int nc) {
        return tiles(N, nc) * K * roundUp(nc, NR);
    }

    private static int tiles(int n, int block) {
        return (n + block - 1) / block;
    }

    private static int roundUp(int n, int m) {
        return (n + m - 1) / m * m;
    }

    /**
     * One macro tile: C (rows x nc) at c[cOff], A and B offsets already at its first row and
     * column. Per K block, B is packed once and the rows run in blocks of {@link #MC}, each
     * packed in turn: the Goto/BLIS loop order, where the packed B block is shared by all row
     * blocks.
     */
    private static void macroTile(int rows, int nc, int K,
                                  float[] a, int aOff, int ars, int acs,
                                  float[] b, int bOff, int brs, int bcs,
                                  float[] c, int cOff, int ldc, boolean accumulate, Buffers buf,
                                  float[] packed, int packedOff) {
        float[] bp = packed != null ? packed : buf.b;
        // One column panel (a skinny product such as mHC's projection to n*n+2n coefficients):
        // each element of A is used once, so packing it would cost as much as the products.
        // Full row panels then read A where it is; only the last partial panel is packed.
        boolean direct = nc <= NR && (ars == 1 || acs == 1);
        for (int p0 = 0; p0 < K; p0 += KC) {
            int kc = Math.min(KC, K - p0);
            int bpo = 0;
            if (packed == null) {
                packB(bp, 0, b, bOff + p0 * brs, brs, bcs, kc, nc);
            } else {
                bpo = packedOff + p0 * roundUp(nc, NR);
            }
            boolean load = accumulate || p0 > 0;
            for (int i0 = 0; i0 < rows; i0 += MC) {
                rowBlock(Math.min(MC, rows - i0), nc, kc, p0, direct, load, a, aOff + i0 * ars, ars, acs,
                        c, cOff + i0 * ldc, ldc, buf, bp, bpo);
            }
        }
    }

    /** Rows {@code mc <= MC} of a macro tile against the packed K block of B that starts at depth p0. */
    private static void rowBlock(int mc, int nc, int kc, int p0, boolean direct, boolean load,
                                 float[] a, int aOff, int ars, int acs, float[] c, int cOff, int ldc, Buffers buf,
                                 float[] bp, int bpo) {
        float[] ap = buf.a;
        if (direct) {
            int full = mc / MR * MR;
            for (int ir = 0; ir < full; ir += MR) {
                int ao = aOff + ir * ars + p0 * acs;
                int co = cOff + ir * ldc;
                if (nc == NR) {
                    directKernel(kc, a, ao, ars, acs, bp, bpo, c, co, ldc, load);
                } else {
                    directEdge(kc, a, ao, ars, acs, bp, bpo, c, co, ldc, load, nc, buf.tile);
                }
            }
            if (full < mc) {
                packA(ap, a, aOff + full * ars + p0 * acs, ars, acs, mc - full, kc);
                edgeTile(kc, ap, 0, bp, bpo, c, cOff + full * ldc, ldc, load, mc - full, nc, buf.tile);
            }
            return;
        }
        packA(ap, a, aOff + p0 * acs, ars, acs, mc, kc);
        for (int jr = 0; jr < nc; jr += NR) {
            int cols = Math.min(NR, nc - jr);
            int bo = bpo + jr * kc; // panel jr/NR starts at (jr/NR) * NR * kc
            for (int ir = 0; ir < mc; ir += MR) {
                int rows = Math.min(MR, mc - ir);
                int ao = ir * kc;
                int co = cOff + ir * ldc + jr;
                if (rows == MR && cols == NR) {
                    kernel(kc, ap, ao, bp, bo, c, co, ldc, load);
                } else {
                    edgeTile(kc, ap, ao, bp, bo, c, co, ldc, load, rows, cols, buf.tile);
                }
            }
        }
    }

    /** A full row panel of unpacked A: {@link #kernelSteps} when A is stored transposed, else {@link #kernelRows}. */
    private static void directKernel(int kc, float[] a, int ao, int ars, int acs, float[] bp, int bo, float[] c, int co,
                                     int ldc, boolean load) {
        if (ars == 1) {
            kernelSteps(kc, a, ao, acs, bp, bo, NR, c, co, ldc, load);
        } else {
            kernelRows(kc, a, ao, ars, bp, bo, c, co, ldc, load);
        }
    }

    /** {@link #directKernel} for a panel narrower than NR: on a copy of the tile, as {@link #edgeTile}. */
    private static void directEdge(int kc, float[] a, int ao, int ars, int acs, float[] bp, int bo, float[] c, int co,
                                   int ldc, boolean load, int cols, float[] tile) {
        if (load) {
            java.util.Arrays.fill(tile, 0f);
            for (int i = 0; i < MR; i++) {
                System.arraycopy(c, co + i * ldc, tile, i * NR, cols);
            }
        }
        directKernel(kc, a, ao, ars, acs, bp, bo, tile, 0, NR, load);
        for (int i = 0; i < MR; i++) {
            System.arraycopy(tile, i * NR, c, co + i * ldc, cols);
        }
    }

    /** A partial micro-tile: computed in full on a copy (the packed panels are zero-padded), then the valid part copied back. */
    private static void edgeTile(int kc, float[] ap, int ao, float[] bp, int bo, float[] c, int co, int ldc,
                                 boolean load, int rows, int cols, float[] tile) {
        if (load) {
            java.util.Arrays.fill(tile, 0f);
            for (int i = 0; i < rows; i++) {
                System.arraycopy(c, co + i * ldc, tile, i * NR, cols);
            }
        }
        kernel(kc, ap, ao, bp, bo, tile, 0, NR, load);
        for (int i = 0; i < rows; i++) {
            System.arraycopy(tile, i * NR, c, co + i * ldc, cols);
        }
    }

    /**
     * A (mc x kc, element (i,k) at a[off + i*ars + k*acs]) into row panels of MR: panel p holds
     * rows p*MR.. as {@code ap[p*MR*kc + k*MR + i]}; rows past mc are zero.
     */
    private static void packA(float[] ap, float[] a, int off, int ars, int acs, int mc, int kc) {
        if (ars == 1) {
            packATransposed(ap, a, off, acs, mc, kc);
            return;
        }
        for (int p = 0; p < mc; p += MR) {
            int rows = Math.min(MR, mc - p);
            int base = p * kc;
            int src = off + p * ars;
            if (rows < MR) {
                java.util.Arrays.fill(ap, base, base + kc * MR, 0f);
            }
            if (acs == 1 && rows == 4 && MR == 4) {
                // rows of A contiguous in k (the forward and the input gradient), four rows
                // written out: each load's index is a fixed row start plus k, so C2 checks
                // the bounds once per call. The forward and input-gradient products of gpt-small
                // (256 tokens, one thread) 1-3% faster on AVX2, alternated in one JVM.
                int r0 = src, r1 = src + ars, r2 = src + 2 * ars, r3 = src + 3 * ars;
                for (int k = 0; k < kc; k++) {
                    int d = base + 4 * k;
                    ap[d] = a[r0 + k];
                    ap[d + 1] = a[r1 + k];
                    ap[d + 2] = a[r2 + k];
                    ap[d + 3] = a[r3 + k];
                }
            } else if (acs == 1) {
                // rows of A contiguous in k with MR = 12 (AVX-512) or a partial panel: row by
                // row, each row read in order and written MR floats apart into the panel (kc * MR
                // floats, in L1). With k outside and the rows inside (the form below), a panel's
                // copy took 2-2.5x the time (scalar copies timed alone on AVX2, MR = 12), and on
                // a 16-core AVX-512 server this packing took 6.1% of a gpt-small mhc step on two
                // cores (JFR).
                for (int i = 0; i < rows; i++) {
                    int r = src + i * ars, d = base + i;
                    for (int k = 0; k < kc; k++) {
                        ap[d + k * MR] = a[r + k];
                    }
                }
            } else {
                for (int k = 0; k < kc; k++) {
                    int s = src + k * acs;
                    int d = base + k * MR;
                    for (int i = 0; i < rows; i++) {
                        ap[d + i] = a[s + i * ars];
                    }
                }
            }
        }
    }

    /**
     * {@link #packA} for A transposed in memory (the weight gradient: element (i,k) at
     * {@code a[off + i + k*acs]}), where row k of A^T is contiguous: four rows k at a time
     * outside, the full panels inside, so each row's mc floats are read in order once and each
     * panel gets its 4 * MR floats of those rows in one run; then the rows left over, and the
     * last partial panel, zero-padded.
     * With MR = 4 and 8 lanes, {@link #packATransposedHalves} moves whole vectors instead.
     * Measured in gpt-small mhc training steps on AVX2 (JFR with -XX:+DebugNonSafepoints, the
     * share of the steady state's samples in this packing): the MR floats as 128-bit vectors
     * panel by panel, as before, 3.0%, and 7.4% in another run of the same build where C2 had
     * compiled those copies without the Vector API's intrinsic (the allocation of every vector
     * showed at 280 MB/s: whether it happens depends on what the JIT saw first); these scalar
     * copies 1.7%; the halves 1.2%. Gathering each panel's four rows (vgatherdps) was several
     * times slower. The same bits in all.
     */
    private static void packATransposed(float[] ap, float[] a, int off, int acs, int mc, int kc) {
        int full = mc / MR * MR;
        int scalarFrom = 0; // the first panel the scalar copies below fill
        if (MR == 4 && VL == 8) {
            scalarFrom = packATransposedHalves(ap, a, off, acs, full, kc);
        }
        int k0 = 0;
        for (; k0 + 4 <= kc; k0 += 4) {
            // four rows at a time: each panel gets 4 * MR consecutive floats (whole cache lines at
            // MR = 4), where one row at a time wrote 16 bytes into each of mc / MR lines that are
            // kc * MR floats apart (the same L1 set at kc = 512) and lost them before the next row
            int s0 = off + k0 * acs, s1 = s0 + acs, s2 = s1 + acs, s3 = s2 + acs;
            for (int p = scalarFrom; p < full; p += MR) {
                int d = p * kc + k0 * MR;
                for (int i = 0; i < MR; i++) {
                    ap[d + i] = a[s0 + p + i];
                }
                for (int i = 0; i < MR; i++) {
                    ap[d + MR + i] = a[s1 + p + i];
                }
                for (int i = 0; i < MR; i++) {
                    ap[d + 2 * MR + i] = a[s2 + p + i];
                }
                for (int i = 0; i < MR; i++) {
                    ap[d + 3 * MR + i] = a[s3 + p + i];
                }
            }
        }
        for (; k0 < kc; k0++) {
            int s = off + k0 * acs;
            for (int p = 0; p < full; p += MR) {
                int d = p * kc + k0 * MR;
                for (int i = 0; i < MR; i++) {
                    ap[d + i] = a[s + p + i];
                }
            }
        }
        if (full < mc) {
            int base = full * kc;
            java.util.Arrays.fill(ap, base, base + kc * MR, 0f);
            for (int k = 0; k < kc; k++) {
                System.arraycopy(a, off + full + k * acs, ap, base + k * MR, mc - full);
            }
        }
    }

    // packATransposedHalves' constants, made only where it runs (8 lanes): no other species
    // reaches the Vector API's shared code, where mixing species can cost C2 its intrinsics
    private static final VectorShuffle<Float> SWAP_HALVES = VL == 8 ? VectorShuffle.fromValues(SP, 4, 5, 6, 7, 0, 1, 2, 3) : null;
    private static final VectorMask<Float> HIGH_HALF =
            VL == 8 ? VectorMask.fromValues(SP, false, false, false, false, true, true, true, true) : null;

    /**
     * {@link #packATransposed}'s four rows at a time with MR = 4 and 8 lanes: for each pair of
     * panels, one vector per row covers both, and the rows' halves are swapped and blended into
     * each panel's 16 floats (r0.lo r1.lo r2.lo r3.lo, then the high halves for the next panel):
     * 4 loads, 4 lane swaps, 4 blends and 4 stores per 32 floats instead of 32 scalar copies.
     * Fills the pairs of panels for the rows k of whole groups of four; returns the first panel
     * it leaves to the scalar copies (an odd last panel). The rows past the groups of four are
     * the caller's, in every panel.
     */
    private static int packATransposedHalves(float[] ap, float[] a, int off, int acs, int full, int kc) {
        int pairs = full / 8 * 8;
        for (int k0 = 0; k0 + 4 <= kc; k0 += 4) {
            int s0 = off + k0 * acs, s1 = s0 + acs, s2 = s1 + acs, s3 = s2 + acs;
            for (int p = 0; p < pairs; p += 8) {
                FloatVector r0 = FloatVector.fromArray(SP, a, s0 + p);
                FloatVector r1 = FloatVector.fromArray(SP, a, s1 + p);
                FloatVector r2 = FloatVector.fromArray(SP, a, s2 + p);
                FloatVector r3 = FloatVector.fromArray(SP, a, s3 + p);
                FloatVector w0 = r0.rearrange(SWAP_HALVES), w1 = r1.rearrange(SWAP_HALVES);
                FloatVector w2 = r2.rearrange(SWAP_HALVES), w3 = r3.rearrange(SWAP_HALVES);
                int d = p * kc + k0 * 4, e = d + 4 * kc; // panel p, panel p + 4
                r0.blend(w1, HIGH_HALF).intoArray(ap, d);      // r0.lo r1.lo
                r2.blend(w3, HIGH_HALF).intoArray(ap, d + 8);  // r2.lo r3.lo
                w0.blend(r1, HIGH_HALF).intoArray(ap, e);      // r0.hi r1.hi
                w2.blend(r3, HIGH_HALF).intoArray(ap, e + 8);  // r2.hi r3.hi
            }
        }
        return pairs;
    }

    /**
     * B (kc x nc, element (k,j) at b[off + k*brs + j*bcs]) into column panels of NR from
     * {@code bp[dst]}: panel q holds columns q*NR.. as {@code bp[dst + q*NR*kc + k*NR + j]};
     * columns past nc are zero.
     */
    private static void packB(float[] bp, int dst, float[] b, int off, int brs, int bcs, int kc, int nc) {
        for (int q = 0; q < nc; q += NR) {
            int cols = Math.min(NR, nc - q);
            int base = dst + q * kc;
            int src = off + q * bcs;
            if (bcs == 1) {
                if (cols == NR) {
                    for (int k = 0; k < kc; k++) {
                        int s = src + k * brs, d = base + k * NR;
                        FloatVector.fromArray(SP, b, s).intoArray(bp, d);
                        FloatVector.fromArray(SP, b, s + VL).intoArray(bp, d + VL);
                    }
                } else {
                    // masked loads: the columns past nc come in as zeros (the padding)
                    VectorMask<Float> m0 = SP.indexInRange(0, cols), m1 = SP.indexInRange(VL, cols);
                    for (int k = 0; k < kc; k++) {
                        int s = src + k * brs, d = base + k * NR;
                        FloatVector.fromArray(SP, b, s, m0).intoArray(bp, d);
                        FloatVector.fromArray(SP, b, s + VL, m1).intoArray(bp, d + VL);
                    }
                }
            } else if (cols == NR && brs == 1) {
                // B transposed in memory (the input gradient reads W^T): each packed row k
                // takes one element from each of NR rows of W. A gather loads VL of them at
                // once (vgatherdps), about twice as fast as scalar copies.
                int[] idx = gatherIndex(bcs);
                for (int k = 0; k < kc; k++) {
                    int s = src + k, d = base + k * NR;
                    FloatVector.fromArray(SP, b, s, idx, 0).intoArray(bp, d);
                    FloatVector.fromArray(SP, b, s + VL * bcs, idx, 0).intoArray(bp, d + VL);
                }
            } else {
                for (int k = 0; k < kc; k++) {
                    int s = src + k * brs;
                    int d = base + k * NR;
                    for (int j = 0; j < cols; j++) {
                        bp[d + j] = b[s + j * bcs];
                    }
                    for (int j = cols; j < NR; j++) {
                        bp[d + j] = 0f;
                    }
                }
            }
        }
    }

    private static final ThreadLocal<int[]> GATHER = ThreadLocal.withInitial(() -> new int[VL]);

    /** {@code 0, stride, 2*stride, ...}: the lane offsets of a strided gather (one array per thread). */
    static int[] gatherIndex(int stride) {
        int[] idx = GATHER.get();
        if (idx[1] != stride) {
            for (int i = 0; i < VL; i++) {
                idx[i] = i * stride;
            }
        }
        return idx;
    }

    /** The micro-kernel on packed panels. */
    private static void kernel(int kc, float[] ap, int ao, float[] bp, int bo, float[] c, int co, int ldc, boolean load) {
        if (MR == 12) {
            kernel12(kc, ap, ao, MR, bp, bo, NR, c, co, ldc, load);
        } else {
            kernel4Packed(kc, ap, ao, bp, bo, c, co, ldc, load);
        }
    }

    /** The MR x NR micro-kernel for the machine's register count, A's MR values per k contiguous ({@link #kernel12}). */
    private static void kernelSteps(int kc, float[] ap, int ao, int step, float[] bp, int bo, int bstep, float[] c, int co,
                                    int ldc, boolean load) {
        if (MR == 12) {
            kernel12(kc, ap, ao, step, bp, bo, bstep, c, co, ldc, load);
        } else {
            kernel4(kc, ap, ao, step, bp, bo, bstep, c, co, ldc, load);
        }
    }

    /** The MR x NR micro-kernel reading A's MR rows in place ({@link #kernel12Rows}). */
    private static void kernelRows(int kc, float[] a, int ao, int lda, float[] bp, int bo, float[] c, int co, int ldc,
                                   boolean load) {
        if (MR == 12) {
            kernel12Rows(kc, a, ao, lda, bp, bo, c, co, ldc, load);
        } else {
            kernel4Rows(kc, a, ao, lda, bp, bo, c, co, ldc, load);
        }
    }

    /**
     * C[12 x 2VL] (+)= Ap · Bp over kc: 24 accumulators, written out by hand so that C2 keeps
     * them in registers (arrays of vectors are not scalarized reliably). The 12 values of A for
     * one k are contiguous at {@code ap[ao..ao+12)}, the next k's {@code step} further: 12 for a
     * packed panel, the row length for an A stored transposed and read in place. Likewise the
     * 2VL values of B for one k, {@code bstep} apart: NR for a packed panel, the row length for a
     * row-major B read in place.
     */
    private static void kernel12(int kc, float[] ap, int ao, int step, float[] bp, int bo, int bstep, float[] c, int co, int ldc,
                                 boolean load) {
        FloatVector z = FloatVector.zero(SP);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        FloatVector c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
        FloatVector c80 = z, c81 = z, c90 = z, c91 = z, ca0 = z, ca1 = z, cb0 = z, cb1 = z;
        for (int k = 0; k < kc; k++) {
            FloatVector b0 = FloatVector.fromArray(SP, bp, bo);
            FloatVector b1 = FloatVector.fromArray(SP, bp, bo + VL);
            FloatVector x;
            x = FloatVector.broadcast(SP, ap[ao]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(SP, ap[ao + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(SP, ap[ao + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(SP, ap[ao + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(SP, ap[ao + 4]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(SP, ap[ao + 5]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
            x = FloatVector.broadcast(SP, ap[ao + 6]);
            c60 = x.fma(b0, c60);
            c61 = x.fma(b1, c61);
            x = FloatVector.broadcast(SP, ap[ao + 7]);
            c70 = x.fma(b0, c70);
            c71 = x.fma(b1, c71);
            x = FloatVector.broadcast(SP, ap[ao + 8]);
            c80 = x.fma(b0, c80);
            c81 = x.fma(b1, c81);
            x = FloatVector.broadcast(SP, ap[ao + 9]);
            c90 = x.fma(b0, c90);
            c91 = x.fma(b1, c91);
            x = FloatVector.broadcast(SP, ap[ao + 10]);
            ca0 = x.fma(b0, ca0);
            ca1 = x.fma(b1, ca1);
            x = FloatVector.broadcast(SP, ap[ao + 11]);
            cb0 = x.fma(b0, cb0);
            cb1 = x.fma(b1, cb1);
            ao += step;
            bo += bstep;
        }
        if (load) {
            c00 = c00.add(FloatVector.fromArray(SP, c, co));
            c01 = c01.add(FloatVector.fromArray(SP, c, co + VL));
            c10 = c10.add(FloatVector.fromArray(SP, c, co + ldc));
            c11 = c11.add(FloatVector.fromArray(SP, c, co + ldc + VL));
            c20 = c20.add(FloatVector.fromArray(SP, c, co + 2 * ldc));
            c21 = c21.add(FloatVector.fromArray(SP, c, co + 2 * ldc + VL));
            c30 = c30.add(FloatVector.fromArray(SP, c, co + 3 * ldc));
            c31 = c31.add(FloatVector.fromArray(SP, c, co + 3 * ldc + VL));
            c40 = c40.add(FloatVector.fromArray(SP, c, co + 4 * ldc));
            c41 = c41.add(FloatVector.fromArray(SP, c, co + 4 * ldc + VL));
            c50 = c50.add(FloatVector.fromArray(SP, c, co + 5 * ldc));
            c51 = c51.add(FloatVector.fromArray(SP, c, co + 5 * ldc + VL));
            c60 = c60.add(FloatVector.fromArray(SP, c, co + 6 * ldc));
            c61 = c61.add(FloatVector.fromArray(SP, c, co + 6 * ldc + VL));
            c70 = c70.add(FloatVector.fromArray(SP, c, co + 7 * ldc));
            c71 = c71.add(FloatVector.fromArray(SP, c, co + 7 * ldc + VL));
            c80 = c80.add(FloatVector.fromArray(SP, c, co + 8 * ldc));
            c81 = c81.add(FloatVector.fromArray(SP, c, co + 8 * ldc + VL));
            c90 = c90.add(FloatVector.fromArray(SP, c, co + 9 * ldc));
            c91 = c91.add(FloatVector.fromArray(SP, c, co + 9 * ldc + VL));
            ca0 = ca0.add(FloatVector.fromArray(SP, c, co + 10 * ldc));
            ca1 = ca1.add(FloatVector.fromArray(SP, c, co + 10 * ldc + VL));
            cb0 = cb0.add(FloatVector.fromArray(SP, c, co + 11 * ldc));
            cb1 = cb1.add(FloatVector.fromArray(SP, c, co + 11 * ldc + VL));
        }
        c00.intoArray(c, co);
        c01.intoArray(c, co + VL);
        c10.intoArray(c, co + ldc);
        c11.intoArray(c, co + ldc + VL);
        c20.intoArray(c, co + 2 * ldc);
        c21.intoArray(c, co + 2 * ldc + VL);
        c30.intoArray(c, co + 3 * ldc);
        c31.intoArray(c, co + 3 * ldc + VL);
        c40.intoArray(c, co + 4 * ldc);
        c41.intoArray(c, co + 4 * ldc + VL);
        c50.intoArray(c, co + 5 * ldc);
        c51.intoArray(c, co + 5 * ldc + VL);
        c60.intoArray(c, co + 6 * ldc);
        c61.intoArray(c, co + 6 * ldc + VL);
        c70.intoArray(c, co + 7 * ldc);
        c71.intoArray(c, co + 7 * ldc + VL);
        c80.intoArray(c, co + 8 * ldc);
        c81.intoArray(c, co + 8 * ldc + VL);
        c90.intoArray(c, co + 9 * ldc);
        c91.intoArray(c, co + 9 * ldc + VL);
        ca0.intoArray(c, co + 10 * ldc);
        ca1.intoArray(c, co + 10 * ldc + VL);
        cb0.intoArray(c, co + 11 * ldc);
        cb1.intoArray(c, co + 11 * ldc + VL);
    }

    /**
     * {@link #kernel12} reading A in place, row-major: the value for row i and step k is
     * {@code a[ao + i*lda + k]} (twelve rows read side by side instead of one packed panel).
     */
    private static void kernel12Rows(int kc, float[] a, int ao, int lda, float[] bp, int bo, float[] c, int co, int ldc,
                                     boolean load) {
        FloatVector z = FloatVector.zero(SP);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        FloatVector c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
        FloatVector c80 = z, c81 = z, c90 = z, c91 = z, ca0 = z, ca1 = z, cb0 = z, cb1 = z;
        int r0 = ao + 0 * lda;
        int r1 = ao + 1 * lda;
        int r2 = ao + 2 * lda;
        int r3 = ao + 3 * lda;
        int r4 = ao + 4 * lda;
        int r5 = ao + 5 * lda;
        int r6 = ao + 6 * lda;
        int r7 = ao + 7 * lda;
        int r8 = ao + 8 * lda;
        int r9 = ao + 9 * lda;
        int ra = ao + 10 * lda;
        int rb = ao + 11 * lda;
        for (int k = 0; k < kc; k++) {
            FloatVector b0 = FloatVector.fromArray(SP, bp, bo);
            FloatVector b1 = FloatVector.fromArray(SP, bp, bo + VL);
            FloatVector x;
            x = FloatVector.broadcast(SP, a[r0 + k]);
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
            x = FloatVector.broadcast(SP, a[r4 + k]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(SP, a[r5 + k]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
            x = FloatVector.broadcast(SP, a[r6 + k]);
            c60 = x.fma(b0, c60);
            c61 = x.fma(b1, c61);
            x = FloatVector.broadcast(SP, a[r7 + k]);
            c70 = x.fma(b0, c70);
            c71 = x.fma(b1, c71);
            x = FloatVector.broadcast(SP, a[r8 + k]);
            c80 = x.fma(b0, c80);
            c81 = x.fma(b1, c81);
            x = FloatVector.broadcast(SP, a[r9 + k]);
            c90 = x.fma(b0, c90);
            c91 = x.fma(b1, c91);
            x = FloatVector.broadcast(SP, a[ra + k]);
            ca0 = x.fma(b0, ca0);
            ca1 = x.fma(b1, ca1);
            x = FloatVector.broadcast(SP, a[rb + k]);
            cb0 = x.fma(b0, cb0);
            cb1 = x.fma(b1, cb1);
            bo += 2 * VL;
        }
        if (load) {
            c00 = c00.add(FloatVector.fromArray(SP, c, co));
            c01 = c01.add(FloatVector.fromArray(SP, c, co + VL));
            c10 = c10.add(FloatVector.fromArray(SP, c, co + ldc));
            c11 = c11.add(FloatVector.fromArray(SP, c, co + ldc + VL));
            c20 = c20.add(FloatVector.fromArray(SP, c, co + 2 * ldc));
            c21 = c21.add(FloatVector.fromArray(SP, c, co + 2 * ldc + VL));
            c30 = c30.add(FloatVector.fromArray(SP, c, co + 3 * ldc));
            c31 = c31.add(FloatVector.fromArray(SP, c, co + 3 * ldc + VL));
            c40 = c40.add(FloatVector.fromArray(SP, c, co + 4 * ldc));
            c41 = c41.add(FloatVector.fromArray(SP, c, co + 4 * ldc + VL));
            c50 = c50.add(FloatVector.fromArray(SP, c, co + 5 * ldc));
            c51 = c51.add(FloatVector.fromArray(SP, c, co + 5 * ldc + VL));
            c60 = c60.add(FloatVector.fromArray(SP, c, co + 6 * ldc));
            c61 = c61.add(FloatVector.fromArray(SP, c, co + 6 * ldc + VL));
            c70 = c70.add(FloatVector.fromArray(SP, c, co + 7 * ldc));
            c71 = c71.add(FloatVector.fromArray(SP, c, co + 7 * ldc + VL));
            c80 = c80.add(FloatVector.fromArray(SP, c, co + 8 * ldc));
            c81 = c81.add(FloatVector.fromArray(SP, c, co + 8 * ldc + VL));
            c90 = c90.add(FloatVector.fromArray(SP, c, co + 9 * ldc));
            c91 = c91.add(FloatVector.fromArray(SP, c, co + 9 * ldc + VL));
            ca0 = ca0.add(FloatVector.fromArray(SP, c, co + 10 * ldc));
            ca1 = ca1.add(FloatVector.fromArray(SP, c, co + 10 * ldc + VL));
            cb0 = cb0.add(FloatVector.fromArray(SP, c, co + 11 * ldc));
            cb1 = cb1.add(FloatVector.fromArray(SP, c, co + 11 * ldc + VL));
        }
        c00.intoArray(c, co);
        c01.intoArray(c, co + VL);
        c10.intoArray(c, co + ldc);
        c11.intoArray(c, co + ldc + VL);
        c20.intoArray(c, co + 2 * ldc);
        c21.intoArray(c, co + 2 * ldc + VL);
        c30.intoArray(c, co + 3 * ldc);
        c31.intoArray(c, co + 3 * ldc + VL);
        c40.intoArray(c, co + 4 * ldc);
        c41.intoArray(c, co + 4 * ldc + VL);
        c50.intoArray(c, co + 5 * ldc);
        c51.intoArray(c, co + 5 * ldc + VL);
        c60.intoArray(c, co + 6 * ldc);
        c61.intoArray(c, co + 6 * ldc + VL);
        c70.intoArray(c, co + 7 * ldc);
        c71.intoArray(c, co + 7 * ldc + VL);
        c80.intoArray(c, co + 8 * ldc);
        c81.intoArray(c, co + 8 * ldc + VL);
        c90.intoArray(c, co + 9 * ldc);
        c91.intoArray(c, co + 9 * ldc + VL);
        ca0.intoArray(c, co + 10 * ldc);
        ca1.intoArray(c, co + 10 * ldc + VL);
        cb0.intoArray(c, co + 11 * ldc);
        cb1.intoArray(c, co + 11 * ldc + VL);
    }

    /**
     * {@link #kernel4} on packed panels, every address a constant multiple of k: C2 then proves
     * the loads in bounds once per call instead of checking each one (with a step that is only
     * known at run time it cannot), which on AVX2 is a large share of a k step's 8 FMAs.
     */
    private static void kernel4Packed(int kc, float[] ap, int ao, float[] bp, int bo, float[] c, int co, int ldc,
                                      boolean load) {
        FloatVector z = FloatVector.zero(SP);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        for (int k = 0; k < kc; k++) {
            int a = ao + 4 * k, b = bo + NR * k;
            FloatVector b0 = FloatVector.fromArray(SP, bp, b);
            FloatVector b1 = FloatVector.fromArray(SP, bp, b + VL);
            FloatVector x;
            x = FloatVector.broadcast(SP, ap[a]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(SP, ap[a + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(SP, ap[a + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(SP, ap[a + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
        }
        if (load) {
            c00 = c00.add(FloatVector.fromArray(SP, c, co));
            c01 = c01.add(FloatVector.fromArray(SP, c, co + VL));
            c10 = c10.add(FloatVector.fromArray(SP, c, co + ldc));
            c11 = c11.add(FloatVector.fromArray(SP, c, co + ldc + VL));
            c20 = c20.add(FloatVector.fromArray(SP, c, co + 2 * ldc));
            c21 = c21.add(FloatVector.fromArray(SP, c, co + 2 * ldc + VL));
            c30 = c30.add(FloatVector.fromArray(SP, c, co + 3 * ldc));
            c31 = c31.add(FloatVector.fromArray(SP, c, co + 3 * ldc + VL));
        }
        c00.intoArray(c, co);
        c01.intoArray(c, co + VL);
        c10.intoArray(c, co + ldc);
        c11.intoArray(c, co + ldc + VL);
        c20.intoArray(c, co + 2 * ldc);
        c21.intoArray(c, co + 2 * ldc + VL);
        c30.intoArray(c, co + 3 * ldc);
        c31.intoArray(c, co + 3 * ldc + VL);
    }

    /** {@link #kernel12} with 4 rows: 8 accumulators, for 16-register machines (AVX2, 8 floats per vector). */
    private static void kernel4(int kc, float[] ap, int ao, int step, float[] bp, int bo, int bstep, float[] c, int co, int ldc,
                                boolean load) {
        FloatVector z = FloatVector.zero(SP);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        for (int k = 0; k < kc; k++) {
            FloatVector b0 = FloatVector.fromArray(SP, bp, bo);
            FloatVector b1 = FloatVector.fromArray(SP, bp, bo + VL);
            FloatVector x;
            x = FloatVector.broadcast(SP, ap[ao]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(SP, ap[ao + 1]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(SP, ap[ao + 2]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(SP, ap[ao + 3]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            ao += step;
            bo += bstep;
        }
        if (load) {
            c00 = c00.add(FloatVector.fromArray(SP, c, co));
            c01 = c01.add(FloatVector.fromArray(SP, c, co + VL));
            c10 = c10.add(FloatVector.fromArray(SP, c, co + ldc));
            c11 = c11.add(FloatVector.fromArray(SP, c, co + ldc + VL));
            c20 = c20.add(FloatVector.fromArray(SP, c, co + 2 * ldc));
            c21 = c21.add(FloatVector.fromArray(SP, c, co + 2 * ldc + VL));
            c30 = c30.add(FloatVector.fromArray(SP, c, co + 3 * ldc));
            c31 = c31.add(FloatVector.fromArray(SP, c, co + 3 * ldc + VL));
        }
        c00.intoArray(c, co);
        c01.intoArray(c, co + VL);
        c10.intoArray(c, co + ldc);
        c11.intoArray(c, co + ldc + VL);
        c20.intoArray(c, co + 2 * ldc);
        c21.intoArray(c, co + 2 * ldc + VL);
        c30.intoArray(c, co + 3 * ldc);
        c31.intoArray(c, co + 3 * ldc + VL);
    }

    /** {@link #kernel4} reading A in place, row-major, as {@link #kernel12Rows}. */
    private static void kernel4Rows(int kc, float[] a, int ao, int lda, float[] bp, int bo, float[] c, int co, int ldc,
                                    boolean load) {
        FloatVector z = FloatVector.zero(SP);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        int r0 = ao;
        int r1 = ao + lda;
        int r2 = ao + 2 * lda;
        int r3 = ao + 3 * lda;
        for (int k = 0; k < kc; k++) {
            FloatVector b0 = FloatVector.fromArray(SP, bp, bo);
            FloatVector b1 = FloatVector.fromArray(SP, bp, bo + VL);
            FloatVector x;
            x = FloatVector.broadcast(SP, a[r0 + k]);
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
            bo += 2 * VL;
        }
        if (load) {
            c00 = c00.add(FloatVector.fromArray(SP, c, co));
            c01 = c01.add(FloatVector.fromArray(SP, c, co + VL));
            c10 = c10.add(FloatVector.fromArray(SP, c, co + ldc));
            c11 = c11.add(FloatVector.fromArray(SP, c, co + ldc + VL));
            c20 = c20.add(FloatVector.fromArray(SP, c, co + 2 * ldc));
            c21 = c21.add(FloatVector.fromArray(SP, c, co + 2 * ldc + VL));
            c30 = c30.add(FloatVector.fromArray(SP, c, co + 3 * ldc));
            c31 = c31.add(FloatVector.fromArray(SP, c, co + 3 * ldc + VL));
        }
        c00.intoArray(c, co);
        c01.intoArray(c, co + VL);
        c10.intoArray(c, co + ldc);
        c11.intoArray(c, co + ldc + VL);
        c20.intoArray(c, co + 2 * ldc);
        c21.intoArray(c, co + 2 * ldc + VL);
        c30.intoArray(c, co + 3 * ldc);
        c31.intoArray(c, co + 3 * ldc + VL);
    }
}
