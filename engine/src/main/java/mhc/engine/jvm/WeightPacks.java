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
 * first call of a hold and reused by the later ones; when the last holder releases, every pack
 * is stale, and the next hold packs again into the same array (the weights change between
 * steps). The same packing as {@link FastGemm#gemm} does per call, so the same bits. Memory: up
 * to two packed copies of each weight (W for the forward, W^T for the input gradient), padded to
 * whole panels, each made only while the heap has room for it ({@link Heap#hasRoomFor}; weights
 * past that are packed per call).
 *
 * <p>A training step's replicas share one instance ({@link FastOps#shareHeldParameters}): each
 * weight is then packed once per step instead of once per replica, by whichever replica needs it
 * first while another that needs it at the same moment waits for it, and the packs take their
 * memory once instead of once per thread. Safe for concurrent callers: the map under this
 * object's lock, each pack's packing under the pack's own.
 */
final class WeightPacks {
    private static final class Pack {
        final int off, brs, bcs, K, N, nc; // nc 0: FastGemm.packPanels' layout
        final float[] data;
        boolean fresh; // guarded by this pack

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

    private final IdentityHashMap<float[], List<Pack>> packs = new IdentityHashMap<>(); // guarded by this
    private int holders; // guarded by this

    synchronized void hold() {
        holders++;
    }

    synchronized void release() {
        if (holders > 0 && --holders > 0) {
            return; // another replica still runs on the packs
        }
        for (List<Pack> list : packs.values()) {
            for (Pack p : list) {
                synchronized (p) {
                    p.fresh = false;
                }
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
        Pack pack = find(b, bOff, brs, bcs, K, N, nc);
        if (pack == null) {
            return null;
        }
        synchronized (pack) { // a replica that wants it while another packs it waits, then reads it
            if (!pack.fresh) {
                if (nc == 0) {
                    FastGemm.packPanels(pack.data, b, bOff, brs, bcs, K, N);
                } else {
                    FastGemm.packAll(pack.data, b, bOff, brs, bcs, K, N, nc);
                }
                pack.fresh = true;
            }
        }
        return pack.data;
    }

    /** The pack of this B and layout, made (stale) if there is none yet; null when not holding or no room. */
    private synchronized Pack find(float[] b, int bOff, int brs, int bcs, int K, int N, int nc) {
        if (holders == 0) {
            return null;
        }
        List<Pack> list = packs.computeIfAbsent(b, x -> new ArrayList<>(2));
        for (Pack p : list) {
            if (p.is(bOff, brs, bcs, K, N, nc)) {
                return p;
            }
        }
        int size = nc == 0 ? FastGemm.panelsSize(K, N) : FastGemm.packedSize(K, N, nc);
        if (!Heap.hasRoomFor(4L * size)) {
            return null; // packed per call, as without a hold
        }
        Pack pack = new Pack(bOff, brs, bcs, K, N, nc, size);
        list.add(pack);
        return pack;
    }
}
