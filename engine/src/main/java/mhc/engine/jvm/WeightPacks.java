package mhc.engine.jvm;

import mhc.engine.Heap;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;

/**
 * Weights packed for {@link FastGemm}, kept between calls while the caller holds the parameters
 * fixed ({@link mhc.engine.model.Ops#holdParameters}): a training replica multiplies every
 * weight once per sequence, forward and in the input gradient, and without this packs it each
 * time (about 5% of a gpt-small step on AVX2; with the packs kept, 2-9% less CPU time per step
 * at gpt-small and at width 1024, alternated step by step in one run). A pack is made at the
 * first call of a hold and reused by the later ones; {@link #release} marks every pack stale,
 * and the next hold packs again into the same array (the weights change between steps). The
 * same packing as {@link FastGemm#gemm} does per call, so the same bits. Memory: up to two
 * packed copies of each weight (W for the forward, W^T for the input gradient), padded to whole
 * panels, each made only while the heap has room for it ({@link Heap#hasRoomFor}; weights past
 * that are packed per call). One instance per {@link FastOps}; not for concurrent callers.
 */
final class WeightPacks {
    private static final class Pack {
        final int off, brs, bcs, K, N, nc; // nc 0: FastGemm.packPanels' layout
        final float[] data;
        boolean fresh;

        Pack(int off, int brs, int bcs, int K, int N, int nc, int size) {
            this.off = off;
            this.brs = brs;
            this.bcs = bcs;
            this.K = K;
            this.N = N;
            this.nc = nc;
            this.data = new float[size];
        }

        boolean is(int off, int brs, int bcs, int K, int N, int nc) {
            return this.off == off && this.brs == brs && this.bcs == bcs && this.K == K && this.N == N && this.nc == nc;
        }
    }

    private final IdentityHashMap<float[], List<Pack>> packs = new IdentityHashMap<>();
    private boolean holding;

    void hold() {
        holding = true;
    }

    void release() {
        holding = false;
        for (List<Pack> list : packs.values()) {
            for (Pack p : list) {
                p.fresh = false;
            }
        }
    }

    /** B (K x N at b[bOff + k*brs + j*bcs]) packed for column tiles of nc, or null when not holding. */
    float[] packed(float[] b, int bOff, int brs, int bcs, int K, int N, int nc) {
        return get(b, bOff, brs, bcs, K, N, nc);
    }

    /** B packed by {@link FastGemm#packPanels} (mHC's phi for the fused kernels), or null when not holding. */
    float[] panels(float[] b, int bOff, int brs, int bcs, int K, int N) {
        return get(b, bOff, brs, bcs, K, N, 0);
    }

    private float[] get(float[] b, int bOff, int brs, int bcs, int K, int N, int nc) {
        if (!holding) {
            return null;
        }
        List<Pack> list = packs.computeIfAbsent(b, x -> new ArrayList<>(2));
        Pack pack = null;
        for (Pack p : list) {
            if (p.is(bOff, brs, bcs, K, N, nc)) {
                pack = p;
                break;
            }
        }
        if (pack == null) {
            int size = nc == 0 ? FastGemm.panelsSize(K, N) : FastGemm.packedSize(K, N, nc);
            if (!Heap.hasRoomFor(4L * size)) {
                return null; // packed per call, as without a hold
            }
            pack = new Pack(bOff, brs, bcs, K, N, nc, size);
            list.add(pack);
        }
        if (!pack.fresh) {
            if (nc == 0) {
                FastGemm.packPanels(pack.data, b, bOff, brs, bcs, K, N);
            } else {
                FastGemm.packAll(pack.data, b, bOff, brs, bcs, K, N, nc);
            }
            pack.fresh = true;
        }
        return pack.data;
    }
}
