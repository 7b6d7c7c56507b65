package mhc.engine.jvm;

import mhc.engine.model.Ops;
import mhc.kernels.HcFused;
import mhc.kernels.MhcFused;

/**
 * The connections with fused kernels: the coefficient computation and the stream aggregate
 * in one pass per token, in the spirit of the mHC paper's fused kernels ({@link MhcFused},
 * {@link HcFused}). Checked against the plain composition of {@link Ops} by
 * {@code tests/.../FusedKernelTest} and {@code FusedModelTest}.
 *
 * <p>The mix after the sublayer ({@code mixForward}, Hres and Hpost applied in one pass) keeps
 * the plain kernel; its two backward kernels are replaced by the same math with each token's
 * loops reordered for the JIT's vectorizer.
 *
 * <p>What the forwards keep for the backwards:
 * <ul>
 *   <li>mhc: the same as the plain path (Hpre, Hpost, Hres, rms, h, zres: 3n*n + 4n + 1 floats
 *       per token). The Sinkhorn intermediates are recomputed by the backward, never kept.</li>
 *   <li>hc: everything the plain path keeps except {@code xbar}: the fused forward does not
 *       write it (the array the caller passes is left untouched) and the fused backward
 *       recomputes {@code xbar = x * xrstd} from the kept stream state. A subclass that
 *       overrides one of {@link #hcPreForward}/{@link #hcPreBackward} must override both.</li>
 * </ul>
 */
public class FusedOps extends Ops {

    @Override
    public void mhcPreForward(float[] u, float[] hpre, float[] hpost, float[] hres, float[] rms, float[] h,
                              float[] zres, float[] x, float[] phi, float[] alpha, float[] bias,
                              int N, int n, int C, int iters) {
        MhcFused.mhcPreForward(u, hpre, hpost, hres, zres, rms, h, x, phi, alpha, bias, 1, N, n, C, iters);
    }

    @Override
    public void mhcPreBackward(float[] dx, float[] dphi, float[] dalpha, float[] dbias, float[] du,
                               float[] dhpost, float[] dhres, float[] x, float[] hpre, float[] hpost,
                               float[] rms, float[] h, float[] zres, float[] phi, float[] alpha,
                               int N, int n, int C, int iters) {
        int M = n * n + 2 * n;
        int K = n * C;
        float[] phiT = scratch("fused.phiT", M * K);
        MhcFused.transpose(phiT, phi, K, M);
        float[] workDz = scratch("fused.workDz", N * M);
        float[] workDh = scratch("fused.workDh", N * M);
        float[] workSk = scratch("fused.sinkhornWork", MhcFused.sinkhornWorkSize(N, n, iters));
        MhcFused.mhcPreBackwardTokens(dx, workDz, workDh, workSk, du, dhpost, dhres, x, hpre, hpost, rms, h, zres,
                phiT, alpha, 1, N, n, C, iters);
        MhcFused.mhcPhiBackward(dphi, scratch("fused.workPhi", K * M), x, workDh, N, K, M);
        mhcCoeffParamBackward(dalpha, dbias, workDz, h, rms, N, n);
    }

    /** Does not write {@code xbar}: see the class comment. */
    @Override
    public void hcPreForward(float[] u, float[] hpre, float[] hpost, float[] hres, float[] xbar, float[] xrstd,
                             float[] tpre, float[] tpost, float[] tres, float[] x, float[] wPre, float[] wPost,
                             float[] wRes, float[] pre, float[] post, float[] res, float[] scale,
                             int N, int n, int C) {
        float[] wResT = scratch("fused.wResT", n * C);
        MhcFused.transpose(wResT, wRes, C, n);
        HcFused.hcPreForward(u, hpre, hpost, hres, xrstd, tpre, tpost, tres, x, wPre, wPost, wResT, pre, post, res,
                scale, N, n, C);
    }

    /** Does not read {@code xbar}: see the class comment. */
    @Override
    public void hcPreBackward(float[] dx, float[] dwPre, float[] dwPost, float[] dwRes, float[] dpre, float[] dpost,
                              float[] dres, float[] dscale, float[] du, float[] dhpost, float[] dhres, float[] x,
                              float[] hpre, float[] xbar, float[] xrstd, float[] tpre, float[] tpost, float[] tres,
                              float[] wPre, float[] wPost, float[] wRes, float[] scale, int N, int n, int C) {
        float[] wResT = scratch("fused.wResT", n * C);
        MhcFused.transpose(wResT, wRes, C, n);
        float[] dhpre = scratch("fused.dhpre", N * n);
        float[] gp = scratch("fused.hcWorkPre", N * n);
        float[] gq = scratch("fused.hcWorkPost", N * n);
        float[] gr = scratch("fused.hcWorkRes", N * n * n);
        HcFused.hcPreBackwardTokens(dx, dhpre, gp, gq, gr, scratch("fused.dxbar", N * C), du, dhpost, dhres, x, hpre,
                xrstd, tpre, tpost, tres, wPre, wPost, wResT, scale, N, n, C);
        HcFused.hcWeightsBackward(dwPre, dwPost, dwRes, scratch("fused.hcWorkW", (2 + n) * C), gp, gq, gr, x, xrstd,
                N, n, C);
        hcCoeffBackwardStatic(dpre, dpost, dres, dscale, dhpre, dhpost, dhres, tpre, tpost, tres, N, n);
    }

    /** The plain kernel with each token's loops reordered (see {@link MhcFused#mixForward}). */
    @Override
    public void mixForward(float[] xout, float[] x, float[] hres, float[] hpost, float[] y, int N, int n, int C) {
        MhcFused.mixForward(xout, x, hres, hpost, y, N, n, C);
    }

    /** The plain kernel with each token's loops reordered (see {@link MhcFused#mixBackwardStreams}). */
    @Override
    public void mixBackwardStreams(float[] dx, float[] dy, float[] dxout, float[] hres, float[] hpost, int N, int n, int C) {
        MhcFused.mixBackwardStreams(dx, dy, dxout, hres, hpost, N, n, C);
    }

    /** The plain kernel with partial sums (see {@link MhcFused#mixBackwardCoeffs}). */
    @Override
    public void mixBackwardCoeffs(float[] dhres, float[] dhpost, float[] dxout, float[] x, float[] y, int N, int n, int C) {
        MhcFused.mixBackwardCoeffs(dhres, dhpost, dxout, x, y, N, n, C);
    }
}
