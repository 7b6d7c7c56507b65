package mhc.engine.jvm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;


/**
 * The row-wise and element-wise kernels on the Vector API: SwiGLU, RMSNorm, RoPE, softmax
 * cross-entropy, AdamW, and the embedding into the streams and the collapse out of them. Each computes what its plain kernel in {@code mhc.kernels} computes,
 * with the same accumulation convention (forwards overwrite, backwards add); tails past the last
 * full vector run the same formula in scalar code, so a value never depends on its position.
 *
 * <p>Differences from the plain kernels are rounding only: row sums are accumulated in VL
 * partial sums (then added in lane order), and exp is {@link VectorMath#expInPlace}'s polynomial in
 * float where the plain kernels round {@code Math.exp} in double. AdamW uses the very operations
 * of the plain kernel in the same order (no fused multiply-add), so it is bit-identical to it.
 */
final class FastElementwise {
    private static final VectorSpecies<Float> SP = VectorMath.SP;
    private static final int VL = VectorMath.VL;

    private FastElementwise() {
    }

    // ------------------------------------------------------------------ SwiGLU

    /** Entries per pass of {@link #negExp}: the chunk and its inputs stay in the L1 cache. */
    private static final int CHUNK = 512;

    /** {@code e[k] = e^-z[o+k]} for {@code k < len} (a multiple of VL). */
    private static void negExp(float[] e, float[] z, int o, int len) {
        for (int k = 0; k < len; k += VL) {
            FloatVector.fromArray(SP, z, o + k).neg().intoArray(e, k);
        }
        VectorMath.expInPlace(e, 0, len);
    }

    /** {@code out = silu(h1) * h3}, {@code silu(z) = z / (1 + e^-z)}. */
    static void swigluForward(float[] out, float[] h1, float[] h3, int N, int F) {
        int size = N * F;
        int i = 0;
        FloatVector one = FloatVector.broadcast(SP, 1f);
        float[] e = new float[CHUNK];
        for (int bound = SP.loopBound(size); i < bound; i += CHUNK) {
            int len = Math.min(CHUNK, bound - i);
            negExp(e, h1, i, len);
            for (int k = 0; k < len; k += VL) {
                FloatVector z = FloatVector.fromArray(SP, h1, i + k);
                FloatVector sig = one.div(FloatVector.fromArray(SP, e, k).add(1f));
                z.mul(sig).mul(FloatVector.fromArray(SP, h3, i + k)).intoArray(out, i + k);
            }
        }
        i = SP.loopBound(size);
        for (; i < size; i++) {
            float z = h1[i];
            float sig = 1f / (VectorMath.exp(-z) + 1f);
            out[i] = z * sig * h3[i];
        }
    }

    /** {@code dh3 += dout silu(z)}, {@code dh1 += dout h3 sig (1 + z (1 - sig))}. */
    static void swigluBackward(float[] dh1, float[] dh3, float[] dout, float[] h1, float[] h3, int N, int F) {
        int size = N * F;
        int i = 0;
        FloatVector one = FloatVector.broadcast(SP, 1f);
        float[] e = new float[CHUNK];
        for (int bound = SP.loopBound(size); i < bound; i += CHUNK) {
            int len = Math.min(CHUNK, bound - i);
            negExp(e, h1, i, len);
            for (int k = 0; k < len; k += VL) {
                int o = i + k;
                FloatVector z = FloatVector.fromArray(SP, h1, o);
                FloatVector sig = one.div(FloatVector.fromArray(SP, e, k).add(1f));
                FloatVector g = FloatVector.fromArray(SP, dout, o);
                FloatVector gh = g.mul(FloatVector.fromArray(SP, h3, o)).mul(sig);
                FloatVector d1 = gh.mul(z.mul(one.sub(sig)).add(1f));
                FloatVector.fromArray(SP, dh1, o).add(d1).intoArray(dh1, o);
                FloatVector.fromArray(SP, dh3, o).add(g.mul(z).mul(sig)).intoArray(dh3, o);
            }
        }
        i = SP.loopBound(size);
        for (; i < size; i++) {
            float z = h1[i];
            float sig = 1f / (VectorMath.exp(-z) + 1f);
            float g = dout[i];
            dh1[i] += g * h3[i] * sig * (z * (1f - sig) + 1f);
            dh3[i] += g * z * sig;
        }
    }

    // ------------------------------------------------------------------ RMSNorm

    /** {@code out = x * rstd * w} per row of C, {@code rstd = 1 / sqrt(mean(x^2) + eps)}. */
    static void rmsnormForward(float[] out, float[] rstd, float[] x, float[] w, int N, int C, float eps) {
        float[] tmp = new float[VL];
        int bound = SP.loopBound(C);
        for (int r = 0; r < N; r++) {
            int o = r * C;
            FloatVector acc = FloatVector.zero(SP);
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector v = FloatVector.fromArray(SP, x, o + c);
                acc = v.fma(v, acc);
            }
            acc.intoArray(tmp, 0);
            float ss = VectorMath.sumLanes(tmp);
            for (; c < C; c++) {
                ss = Math.fma(x[o + c], x[o + c], ss);
            }
            float s = (float) (1.0 / Math.sqrt(ss / C + eps));
            rstd[r] = s;
            c = 0;
            for (; c < bound; c += VL) {
                FloatVector.fromArray(SP, x, o + c).mul(s).mul(FloatVector.fromArray(SP, w, c)).intoArray(out, o + c);
            }
            for (; c < C; c++) {
                out[o + c] = x[o + c] * s * w[c];
            }
        }
    }

    /** With {@code g = dout * w}: {@code dx += s g - x s^3 (sum g x) / C}. */
    static void rmsnormBackward(float[] dx, float[] dout, float[] x, float[] w, float[] rstd, int N, int C) {
        float[] tmp = new float[VL];
        int bound = SP.loopBound(C);
        for (int r = 0; r < N; r++) {
            int o = r * C;
            float s = rstd[r];
            FloatVector acc = FloatVector.zero(SP);
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector g = FloatVector.fromArray(SP, dout, o + c).mul(FloatVector.fromArray(SP, w, c));
                acc = g.fma(FloatVector.fromArray(SP, x, o + c), acc);
            }
            acc.intoArray(tmp, 0);
            float dot = VectorMath.sumLanes(tmp);
            for (; c < C; c++) {
                dot = Math.fma(dout[o + c] * w[c], x[o + c], dot);
            }
            float k = dot * s * s * s / C;
            c = 0;
            for (; c < bound; c += VL) {
                FloatVector g = FloatVector.fromArray(SP, dout, o + c).mul(FloatVector.fromArray(SP, w, c));
                FloatVector d = g.mul(s).sub(FloatVector.fromArray(SP, x, o + c).mul(k));
                FloatVector.fromArray(SP, dx, o + c).add(d).intoArray(dx, o + c);
            }
            for (; c < C; c++) {
                dx[o + c] += dout[o + c] * w[c] * s - x[o + c] * k;
            }
        }
    }

    /** {@code dw[c] += sum_r dout[r][c] x[r][c] rstd[r]}, summed over r in order, four vectors of c at a time. */
    static void rmsnormWeightBackward(float[] dw, float[] dout, float[] x, float[] rstd, int N, int C) {
        int c = 0;
        for (; c + 4 * VL <= C; c += 4 * VL) {
            FloatVector a0 = FloatVector.zero(SP), a1 = a0, a2 = a0, a3 = a0;
            for (int r = 0; r < N; r++) {
                int o = r * C + c;
                FloatVector s = FloatVector.broadcast(SP, rstd[r]);
                a0 = FloatVector.fromArray(SP, dout, o).mul(FloatVector.fromArray(SP, x, o)).fma(s, a0);
                a1 = FloatVector.fromArray(SP, dout, o + VL).mul(FloatVector.fromArray(SP, x, o + VL)).fma(s, a1);
                a2 = FloatVector.fromArray(SP, dout, o + 2 * VL).mul(FloatVector.fromArray(SP, x, o + 2 * VL)).fma(s, a2);
                a3 = FloatVector.fromArray(SP, dout, o + 3 * VL).mul(FloatVector.fromArray(SP, x, o + 3 * VL)).fma(s, a3);
            }
            FloatVector.fromArray(SP, dw, c).add(a0).intoArray(dw, c);
            FloatVector.fromArray(SP, dw, c + VL).add(a1).intoArray(dw, c + VL);
            FloatVector.fromArray(SP, dw, c + 2 * VL).add(a2).intoArray(dw, c + 2 * VL);
            FloatVector.fromArray(SP, dw, c + 3 * VL).add(a3).intoArray(dw, c + 3 * VL);
        }
        for (; c + VL <= C; c += VL) {
            FloatVector a0 = FloatVector.zero(SP);
            for (int r = 0; r < N; r++) {
                int o = r * C + c;
                a0 = FloatVector.fromArray(SP, dout, o).mul(FloatVector.fromArray(SP, x, o)).fma(FloatVector.broadcast(SP, rstd[r]), a0);
            }
            FloatVector.fromArray(SP, dw, c).add(a0).intoArray(dw, c);
        }
        for (; c < C; c++) {
            float acc = 0f;
            for (int r = 0; r < N; r++) {
                acc = Math.fma(dout[r * C + c] * x[r * C + c], rstd[r], acc);
            }
            dw[c] += acc;
        }
    }

    // ------------------------------------------------------------------ the streams in and out

    // The embedding into the n streams and the collapse out of them, with the plain kernels'
    // operations in their order (the same bits), rows at a time: the plain embedding backward
    // walks a column across all rows, which at n*C floats per row misses the cache every step.

    /** {@code Embedding.embeddingForward}: {@code x[r][i] = embed[tok[r]]} for each stream i. */
    static void embeddingForward(float[] x, int[] tokens, float[] embed, int N, int n, int C) {
        for (int r = 0; r < N; r++) {
            for (int i = 0; i < n; i++) {
                System.arraycopy(embed, tokens[r] * C, x, (r * n + i) * C, C);
            }
        }
    }

    /** {@code Embedding.embeddingBackward}: {@code dembed[tok[r]] += sum_i dx[r][i]}, rows in order. */
    static void embeddingBackward(float[] dembed, float[] dx, int[] tokens, int N, int n, int C) {
        int bound = SP.loopBound(C);
        for (int r = 0; r < N; r++) {
            int eo = tokens[r] * C;
            int xo = r * n * C;
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector s = FloatVector.zero(SP);
                for (int i = 0; i < n; i++) {
                    s = s.add(FloatVector.fromArray(SP, dx, xo + i * C + c));
                }
                FloatVector.fromArray(SP, dembed, eo + c).add(s).intoArray(dembed, eo + c);
            }
            for (; c < C; c++) {
                float s = 0f;
                for (int i = 0; i < n; i++) {
                    s += dx[xo + i * C + c];
                }
                dembed[eo + c] += s;
            }
        }
    }

    /** {@code Streams.aggregateForward}: {@code u = sum_j hpre[j] x[j]} (multiply, then add, as there). */
    static void aggregateForward(float[] u, float[] x, float[] hpre, int N, int n, int C) {
        int bound = SP.loopBound(C);
        for (int r = 0; r < N; r++) {
            int xo = r * n * C;
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector s = FloatVector.zero(SP);
                for (int j = 0; j < n; j++) {
                    s = s.add(FloatVector.fromArray(SP, x, xo + j * C + c).mul(hpre[r * n + j]));
                }
                s.intoArray(u, r * C + c);
            }
            for (; c < C; c++) {
                float s = 0f;
                for (int j = 0; j < n; j++) {
                    s += hpre[r * n + j] * x[xo + j * C + c];
                }
                u[r * C + c] = s;
            }
        }
    }

    /** {@code Streams.aggregateBackwardStreams}: {@code dx[j] += hpre[j] du}. */
    static void aggregateBackwardStreams(float[] dx, float[] du, float[] hpre, int N, int n, int C) {
        int bound = SP.loopBound(C);
        for (int r = 0; r < N; r++) {
            int xo = r * n * C;
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector g = FloatVector.fromArray(SP, du, r * C + c);
                for (int j = 0; j < n; j++) {
                    int o = xo + j * C + c;
                    FloatVector.fromArray(SP, dx, o).add(g.mul(hpre[r * n + j])).intoArray(dx, o);
                }
            }
            for (; c < C; c++) {
                float g = du[r * C + c];
                for (int j = 0; j < n; j++) {
                    dx[xo + j * C + c] += hpre[r * n + j] * g;
                }
            }
        }
    }

    /** {@code Streams.collapseForward}: {@code u = (sum_i x[i]) / n}. */
    static void collapseForward(float[] u, float[] x, int N, int n, int C) {
        int bound = SP.loopBound(C);
        for (int r = 0; r < N; r++) {
            int xo = r * n * C;
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector s = FloatVector.zero(SP);
                for (int i = 0; i < n; i++) {
                    s = s.add(FloatVector.fromArray(SP, x, xo + i * C + c));
                }
                s.div((float) n).intoArray(u, r * C + c);
            }
            for (; c < C; c++) {
                float s = 0f;
                for (int i = 0; i < n; i++) {
                    s += x[xo + i * C + c];
                }
                u[r * C + c] = s / n;
            }
        }
    }

    /** {@code Streams.collapseBackward}: {@code dx[i] += du / n}. */
    static void collapseBackward(float[] dx, float[] du, int N, int n, int C) {
        int bound = SP.loopBound(C);
        for (int r = 0; r < N; r++) {
            int xo = r * n * C;
            int c = 0;
            for (; c < bound; c += VL) {
                FloatVector g = FloatVector.fromArray(SP, du, r * C + c).div((float) n);
                for (int i = 0; i < n; i++) {
                    int o = xo + i * C + c;
                    FloatVector.fromArray(SP, dx, o).add(g).intoArray(dx, o);
                }
            }
            for (; c < C; c++) {
                float g = du[r * C + c] / n;
                for (int i = 0; i < n; i++) {
                    dx[xo + i * C + c] += g;
                }
            }
        }
    }

    // ------------------------------------------------------------------ cross-entropy

    /** {@code probs = softmax(logits)}, {@code losses[r] = logsumexp(logits[r]) - logits[r][target]}. */
    static void crossEntropyForward(float[] losses, float[] probs, float[] logits, int[] targets, int N, int V) {
        float[] tmp = new float[VL];
        int bound = SP.loopBound(V);
        for (int r = 0; r < N; r++) {
            int o = r * V;
            float max = Float.NEGATIVE_INFINITY;
            int v = 0;
            if (bound > 0) {
                FloatVector m = FloatVector.fromArray(SP, logits, o);
                for (v = VL; v < bound; v += VL) {
                    m = m.max(FloatVector.fromArray(SP, logits, o + v));
                }
                max = m.reduceLanes(VectorOperators.MAX); // exact in any order
            }
            for (; v < V; v++) {
                max = Math.max(max, logits[o + v]);
            }
            for (v = 0; v < bound; v += VL) {
                FloatVector.fromArray(SP, logits, o + v).sub(max).intoArray(probs, o + v);
            }
            VectorMath.expInPlace(probs, o, bound);
            FloatVector acc = FloatVector.zero(SP);
            for (v = 0; v < bound; v += VL) {
                acc = acc.add(FloatVector.fromArray(SP, probs, o + v));
            }
            acc.intoArray(tmp, 0);
            float sum = VectorMath.sumLanes(tmp);
            for (; v < V; v++) {
                float e = VectorMath.exp(logits[o + v] - max);
                probs[o + v] = e;
                sum += e;
            }
            float inv = 1f / sum;
            v = 0;
            for (; v < bound; v += VL) {
                FloatVector.fromArray(SP, probs, o + v).mul(inv).intoArray(probs, o + v);
            }
            for (; v < V; v++) {
                probs[o + v] *= inv;
            }
            losses[r] = (float) (Math.log(sum) + max - logits[o + targets[r]]);
        }
    }

    /** {@code dlogits += dloss (probs - onehot(target))}. */
    static void crossEntropyBackward(float[] dlogits, float[] probs, int[] targets, float dloss, int N, int V) {
        int bound = SP.loopBound(V);
        for (int r = 0; r < N; r++) {
            int o = r * V;
            int t = o + targets[r];
            float before = dlogits[t];
            int v = 0;
            for (; v < bound; v += VL) {
                FloatVector.fromArray(SP, probs, o + v).mul(dloss).add(FloatVector.fromArray(SP, dlogits, o + v))
                        .intoArray(dlogits, o + v);
            }
            for (; v < V; v++) {
                dlogits[o + v] += dloss * probs[o + v];
            }
            dlogits[t] = before + dloss * (probs[t] - 1f);
        }
    }

    // ------------------------------------------------------------------ AdamW

    /** One AdamW step, the plain kernel's operations in its order (bit-identical to it). */
    static void adamwUpdate(float[] param, float[] grad, float[] m, float[] v, float lr, float beta1, float beta2,
                            float eps, float weightDecay, float gradScale, float bc1, float bc2, int size) {
        adamwUpdateRange(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, gradScale, bc1, bc2, 0, size);
    }

    /**
     * {@link #adamwUpdate} on the elements {@code from .. to-1}. The vector loop and the scalar
     * tail do the same float operations in the same order, so an element's result does not
     * depend on where a range starts or ends: ranges can run on different threads.
     */
    static void adamwUpdateRange(float[] param, float[] grad, float[] m, float[] v, float lr, float beta1, float beta2,
                                 float eps, float weightDecay, float gradScale, float bc1, float bc2, int from, int to) {
        float stepSize = lr / bc1;
        float sqrtBc2 = (float) Math.sqrt(bc2);
        float b1c = 1f - beta1;
        float b2c = 1f - beta2;
        float decay = 1f - lr * weightDecay;
        int i = from;
        for (int bound = from + SP.loopBound(to - from); i < bound; i += VL) {
            FloatVector g = FloatVector.fromArray(SP, grad, i).mul(gradScale);
            FloatVector mi = FloatVector.fromArray(SP, m, i).mul(beta1).add(g.mul(b1c));
            FloatVector vi = FloatVector.fromArray(SP, v, i).mul(beta2).add(g.mul(b2c).mul(g));
            mi.intoArray(m, i);
            vi.intoArray(v, i);
            FloatVector p = FloatVector.fromArray(SP, param, i).mul(decay);
            FloatVector den = vi.sqrt().div(sqrtBc2).add(eps);
            p.sub(mi.mul(stepSize).div(den)).intoArray(param, i);
        }
        for (; i < to; i++) {
            float g = grad[i] * gradScale;
            float mi = beta1 * m[i] + b1c * g;
            float vi = beta2 * v[i] + b2c * g * g;
            m[i] = mi;
            v[i] = vi;
            float p = param[i] * decay;
            param[i] = p - stepSize * mi / ((float) Math.sqrt(vi) / sqrtBc2 + eps);
        }
    }

    // ------------------------------------------------------------------ RoPE

    /**
     * {@code Rope.ropeForward} along each head's half-vectors: the same multiplies and adds
     * (no fused multiply-add), so the same bits.
     */
    static void ropeForward(float[] out, float[] inp, float[] cos, float[] sin, int N, int T, int C, int H) {
        int D = C / H;
        int half = D / 2;
        int bound = SP.loopBound(half);
        for (int r = 0; r < N; r++) {
            int to = (r % T) * half;
            for (int h = 0; h < H; h++) {
                int a0 = r * C + h * D;
                int i = 0;
                for (; i < bound; i += VL) {
                    FloatVector x0 = FloatVector.fromArray(SP, inp, a0 + i);
                    FloatVector x1 = FloatVector.fromArray(SP, inp, a0 + half + i);
                    FloatVector c = FloatVector.fromArray(SP, cos, to + i);
                    FloatVector s = FloatVector.fromArray(SP, sin, to + i);
                    x0.mul(c).sub(x1.mul(s)).intoArray(out, a0 + i);
                    x0.mul(s).add(x1.mul(c)).intoArray(out, a0 + half + i);
                }
                for (; i < half; i++) {
                    float x0 = inp[a0 + i];
                    float x1 = inp[a0 + half + i];
                    out[a0 + i] = x0 * cos[to + i] - x1 * sin[to + i];
                    out[a0 + half + i] = x0 * sin[to + i] + x1 * cos[to + i];
                }
            }
        }
    }

    /** {@code Rope.ropeBackward}, vectorized the same way (the same bits). */
    static void ropeBackward(float[] dinp, float[] dout, float[] cos, float[] sin, int N, int T, int C, int H) {
        int D = C / H;
        int half = D / 2;
        int bound = SP.loopBound(half);
        for (int r = 0; r < N; r++) {
            int to = (r % T) * half;
            for (int h = 0; h < H; h++) {
                int a0 = r * C + h * D;
                int i = 0;
                for (; i < bound; i += VL) {
                    FloatVector d0 = FloatVector.fromArray(SP, dout, a0 + i);
                    FloatVector d1 = FloatVector.fromArray(SP, dout, a0 + half + i);
                    FloatVector c = FloatVector.fromArray(SP, cos, to + i);
                    FloatVector s = FloatVector.fromArray(SP, sin, to + i);
                    FloatVector.fromArray(SP, dinp, a0 + i).add(d0.mul(c).add(d1.mul(s))).intoArray(dinp, a0 + i);
                    FloatVector.fromArray(SP, dinp, a0 + half + i).add(d0.neg().mul(s).add(d1.mul(c)))
                            .intoArray(dinp, a0 + half + i);
                }
                for (; i < half; i++) {
                    float d0 = dout[a0 + i];
                    float d1 = dout[a0 + half + i];
                    dinp[a0 + i] += d0 * cos[to + i] + d1 * sin[to + i];
                    dinp[a0 + half + i] += -d0 * sin[to + i] + d1 * cos[to + i];
                }
            }
        }
    }
}
