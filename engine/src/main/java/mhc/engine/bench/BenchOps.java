package mhc.engine.bench;

import mhc.engine.bench.OpCase.Group;
import mhc.engine.bench.OpCase.Instance;
import mhc.engine.model.Ops;
import mhc.kernels.Rope;
import mhc.kernels.Sinkhorn;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static mhc.engine.bench.OpCase.Group.BACKWARD;
import static mhc.engine.bench.OpCase.Group.FORWARD;
import static mhc.engine.bench.OpCase.Unit.BYTE;
import static mhc.engine.bench.OpCase.Unit.FLOP;
import static mhc.engine.bench.Validator.Tolerance.CHAINED;
import static mhc.engine.bench.Validator.Tolerance.STANDARD;

/**
 * Every operation of {@link Ops} that the model calls, at the shapes one training step of a
 * config uses: each linear map (forward, backward-input, backward-weight), the norms, RoPE,
 * attention (forward and the {@code attentionBackward} group), SwiGLU, cross-entropy, the
 * embedding, the stream aggregate/mix/collapse, Sinkhorn, the mhc and hc connection groups, the
 * MoE router/dispatch/gather/combine with a balanced routing, and the AdamW update.
 *
 * <p>Inputs are random but valid: Sinkhorn logits around the spec's init (+3 on the diagonal,
 * -3 off it) plus noise, probabilities that are softmaxes, expert lists that a router produced.
 * Work counts: a matmul is {@code 2*rows*IN*OUT} FLOP; attention {@code 4*D} FLOP per causal
 * (query, key) pair forward and {@code 8*D} backward; the memory-bound ops count the bytes
 * each one must read and write once (4 per float or int, read-modify-write counted twice).
 */
public final class BenchOps {
    private BenchOps() {
    }

    /** Every case at the shapes of {@code s}: forward, then backward, then the optimizer. */
    public static List<OpCase> all(Shapes s) {
        List<OpCase> fwd = new ArrayList<>(), bwd = new ArrayList<>(), opt = new ArrayList<>();
        int N = s.N(), C = s.C(), F = s.F(), n = s.n(), M = s.M(), V = s.V(), E = s.E(), Fe = s.Fe();
        int rows = s.rowsPerExpert();
        Linear[] linears = {
                new Linear("C->C", N, C, C, 0),
                new Linear("C->F", N, C, F, 0),
                new Linear("F->C", N, F, C, 0),
                new Linear("C->V", N, C, V, 0),
                new Linear("nC->M", N, n * C, M, 0),
                new Linear("C->E", N, C, E, 0),
                new Linear("expert C->F", rows, C, Fe, Math.min(1, E - 1)),
                new Linear("expert F->C", rows, Fe, C, Math.min(1, E - 1)),
        };
        for (Linear l : linears) {
            fwd.add(matmulForward(l));
            bwd.add(matmulBackwardInput(l));
            bwd.add(matmulBackwardWeight(l));
        }
        fwd.add(rmsnormForward(s));
        bwd.add(rmsnormBackward(s));
        bwd.add(rmsnormWeightBackward(s));
        fwd.add(ropeForward(s));
        bwd.add(ropeBackward(s));
        fwd.add(attentionForward(s));
        bwd.add(attentionBackward(s));
        fwd.add(swigluForward(s));
        bwd.add(swigluBackward(s));
        fwd.add(crossEntropyForward(s));
        bwd.add(crossEntropyBackward(s));
        fwd.add(embeddingForward(s));
        bwd.add(embeddingBackward(s));
        fwd.add(aggregateForward(s));
        bwd.add(aggregateBackwardStreams(s));
        bwd.add(aggregateBackwardCoeffs(s));
        fwd.add(mixForward(s));
        bwd.add(mixBackward(s));
        fwd.add(collapseForward(s));
        bwd.add(collapseBackward(s));
        fwd.add(sinkhornForward(s));
        bwd.add(sinkhornBackward(s));
        fwd.add(mhcPreForward(s));
        bwd.add(mhcPreBackward(s));
        fwd.add(mixMhcPreForward(s));
        bwd.add(mhcBackward(s));
        fwd.add(hcPreForward(s));
        bwd.add(hcPreBackward(s));
        fwd.add(moeRouteForward(s));
        bwd.add(moeRouteBackward(s));
        fwd.add(moeDispatch(s));
        fwd.add(moeGather(s));
        bwd.add(moeGatherBackward(s));
        fwd.add(moeCombine(s));
        bwd.add(moeCombineBackward(s));
        if (s.S() > 0) {
            fwd.add(moeAddShared(s));
        }
        opt.add(adamwUpdate(s));
        List<OpCase> out = new ArrayList<>(fwd);
        out.addAll(bwd);
        out.addAll(opt);
        return out;
    }

    // ------------------------------------------------------------------ matmul

    /** {@code out = inp · w} with {@code w} at {@code wOff = slot*IN*OUT} of a stacked tensor (experts use slot 1). */
    record Linear(String label, int rows, int in, int out, int slot) {
        String shape() {
            return rows + "x" + in + "->" + out;
        }

        double flops() {
            return 2.0 * rows * in * out;
        }
    }

    private static final String MATMUL_FLOPS = "2*rows*IN*OUT";

    static OpCase matmulForward(Linear l) {
        return new OpCase("matmulForward " + l.label(), FORWARD, l.shape(), l.flops(), FLOP, MATMUL_FLOPS, STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] inp = r.gauss(l.rows() * l.in(), 1);
            float[] w = r.gauss((l.slot() + 1) * l.in() * l.out(), 1 / Math.sqrt(l.in()));
            return new Instance() {
                final float[] out = overwritten("out", l.rows() * l.out());

                @Override
                public void run(Ops ops) {
                    ops.matmulForward(out, inp, w, l.slot() * l.in() * l.out(), l.rows(), l.in(), l.out());
                }
            };
        });
    }

    static OpCase matmulBackwardInput(Linear l) {
        return new OpCase("matmulBackwardInput " + l.label(), BACKWARD, l.shape(), l.flops(), FLOP, MATMUL_FLOPS, STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] dout = r.gauss(l.rows() * l.out(), 1);
            float[] w = r.gauss((l.slot() + 1) * l.in() * l.out(), 1 / Math.sqrt(l.out()));
            return new Instance() {
                final float[] dinp = accumulated("dinp", l.rows() * l.in());

                @Override
                public void run(Ops ops) {
                    ops.matmulBackwardInput(dinp, dout, w, l.slot() * l.in() * l.out(), l.rows(), l.in(), l.out());
                }
            };
        });
    }

    static OpCase matmulBackwardWeight(Linear l) {
        return new OpCase("matmulBackwardWeight " + l.label(), BACKWARD, l.shape(), l.flops(), FLOP, MATMUL_FLOPS, STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] inp = r.gauss(l.rows() * l.in(), 1);
            float[] dout = r.gauss(l.rows() * l.out(), 1 / Math.sqrt(l.rows()));
            return new Instance() {
                // the whole stacked tensor: entries outside this slot must stay as they were
                final float[] dw = accumulated("dw", (l.slot() + 1) * l.in() * l.out());

                @Override
                public void run(Ops ops) {
                    ops.matmulBackwardWeight(dw, inp, dout, l.slot() * l.in() * l.out(), l.rows(), l.in(), l.out());
                }
            };
        });
    }

    // ------------------------------------------------------------------ norms, rope, attention, swiglu, loss, embedding

    static OpCase rmsnormForward(Shapes s) {
        int N = s.N(), C = s.C();
        return new OpCase("rmsnormForward", FORWARD, N + "x" + C, 4.0 * (2.0 * N * C + N + C), BYTE,
                "4*(2NC + N + C) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] x = r.gauss(N * C, 1), w = r.uniform(C, 0.5, 1.5);
            return new Instance() {
                final float[] out = overwritten("out", N * C);
                final float[] rstd = overwritten("rstd", N);

                @Override
                public void run(Ops ops) {
                    ops.rmsnormForward(out, rstd, x, w, N, C);
                }
            };
        });
    }

    /** Inputs of the RMSNorm backwards: x, w, dout and the plain forward's rstd. */
    private record NormInputs(float[] x, float[] w, float[] dout, float[] rstd) {
        static NormInputs make(Rand r, int N, int C) {
            float[] x = r.gauss(N * C, 1), w = r.uniform(C, 0.5, 1.5), dout = r.gauss(N * C, 1);
            float[] rstd = new float[N];
            new Ops().rmsnormForward(new float[N * C], rstd, x, w, N, C);
            return new NormInputs(x, w, dout, rstd);
        }
    }

    static OpCase rmsnormBackward(Shapes s) {
        int N = s.N(), C = s.C();
        return new OpCase("rmsnormBackward", BACKWARD, N + "x" + C, 4.0 * (4.0 * N * C + N + C), BYTE,
                "4*(4NC + N + C) bytes", STANDARD, seed -> {
            NormInputs in = NormInputs.make(new Rand(seed), N, C);
            return new Instance() {
                final float[] dx = accumulated("dx", N * C);

                @Override
                public void run(Ops ops) {
                    ops.rmsnormBackward(dx, in.dout(), in.x(), in.w(), in.rstd(), N, C);
                }
            };
        });
    }

    static OpCase rmsnormWeightBackward(Shapes s) {
        int N = s.N(), C = s.C();
        return new OpCase("rmsnormWeightBackward", BACKWARD, N + "x" + C, 4.0 * (2.0 * N * C + N + 2.0 * C), BYTE,
                "4*(2NC + N + 2C) bytes", STANDARD, seed -> {
            NormInputs in = NormInputs.make(new Rand(seed), N, C);
            return new Instance() {
                final float[] dw = accumulated("dw", C);

                @Override
                public void run(Ops ops) {
                    ops.rmsnormWeightBackward(dw, in.dout(), in.x(), in.rstd(), N, C);
                }
            };
        });
    }

    /** The model's cosine and sine tables, (T, D/2) each. */
    private static float[][] ropeTables(Shapes s) {
        int half = s.D() / 2;
        float[] cos = new float[s.T() * half], sin = new float[s.T() * half];
        Rope.ropeTables(cos, sin, s.T(), s.D());
        return new float[][]{cos, sin};
    }

    static OpCase ropeForward(Shapes s) {
        int N = s.N(), T = s.T(), C = s.C(), H = s.H();
        return new OpCase("ropeForward", FORWARD, N + "x" + C + " H=" + H, 4.0 * 2 * N * C, BYTE, "4*2NC bytes", STANDARD, seed -> {
            float[] inp = new Rand(seed).gauss(N * C, 1);
            float[][] table = ropeTables(s);
            return new Instance() {
                final float[] out = overwritten("out", N * C);

                @Override
                public void run(Ops ops) {
                    ops.ropeForward(out, inp, table[0], table[1], N, T, C, H);
                }
            };
        });
    }

    static OpCase ropeBackward(Shapes s) {
        int N = s.N(), T = s.T(), C = s.C(), H = s.H();
        return new OpCase("ropeBackward", BACKWARD, N + "x" + C + " H=" + H, 4.0 * 3 * N * C, BYTE, "4*3NC bytes", STANDARD, seed -> {
            float[] dout = new Rand(seed).gauss(N * C, 1);
            float[][] table = ropeTables(s);
            return new Instance() {
                final float[] dinp = accumulated("dinp", N * C);

                @Override
                public void run(Ops ops) {
                    ops.ropeBackward(dinp, dout, table[0], table[1], N, T, C, H);
                }
            };
        });
    }

    private static double causalPairs(Shapes s) {
        return (double) s.B() * s.H() * s.T() * (s.T() + 1) / 2.0;
    }

    private static String attentionShape(Shapes s) {
        return "B=" + s.B() + " T=" + s.T() + " H=" + s.H() + " D=" + s.D();
    }

    static OpCase attentionForward(Shapes s) {
        int B = s.B(), T = s.T(), C = s.C(), H = s.H(), N = s.N();
        return new OpCase("attentionForward", FORWARD, attentionShape(s), 4.0 * s.D() * causalPairs(s), FLOP,
                "4*D*B*H*T(T+1)/2 (q.k and att.v per causal pair)", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] q = r.gauss(N * C, 1), k = r.gauss(N * C, 1), v = r.gauss(N * C, 1);
            return new Instance() {
                final float[] out = overwritten("out", N * C);
                float[] att;

                @Override
                public void prepare(Ops ops) {
                    att = state(ops.attentionStateSize(B, T, H)); // the backend's own state layout
                }

                @Override
                public void run(Ops ops) {
                    ops.attentionForward(out, att, q, k, v, B, T, C, H);
                }
            };
        });
    }

    static OpCase attentionBackward(Shapes s) {
        int B = s.B(), T = s.T(), C = s.C(), H = s.H(), N = s.N();
        return new OpCase("attentionBackward", BACKWARD, attentionShape(s), 8.0 * s.D() * causalPairs(s), FLOP,
                "8*D*B*H*T(T+1)/2 (dscores, dq, dk, dv per causal pair)", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] q = r.gauss(N * C, 1), k = r.gauss(N * C, 1), v = r.gauss(N * C, 1), dout = r.gauss(N * C, 1);
            return new Instance() {
                final float[] dq = accumulated("dq", N * C);
                final float[] dk = accumulated("dk", N * C);
                final float[] dv = accumulated("dv", N * C);
                final float[] out = state(N * C);
                float[] att;

                @Override
                public void prepare(Ops ops) {
                    // the state comes from this backend's forward (a tiled attention keeps less)
                    att = state(ops.attentionStateSize(B, T, H));
                    ops.attentionForward(out, att, q, k, v, B, T, C, H);
                }

                @Override
                public void run(Ops ops) {
                    ops.attentionBackward(dq, dk, dv, dout, att, q, k, v, out, B, T, C, H);
                }
            };
        });
    }

    static OpCase swigluForward(Shapes s) {
        int N = s.N(), F = s.F();
        return new OpCase("swigluForward", FORWARD, N + "x" + F, 4.0 * 3 * N * F, BYTE, "4*3NF bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] h1 = r.gauss(N * F, 1), h3 = r.gauss(N * F, 1);
            return new Instance() {
                final float[] out = overwritten("out", N * F);

                @Override
                public void run(Ops ops) {
                    ops.swigluForward(out, h1, h3, N, F);
                }
            };
        });
    }

    static OpCase swigluBackward(Shapes s) {
        int N = s.N(), F = s.F();
        return new OpCase("swigluBackward", BACKWARD, N + "x" + F, 4.0 * 7 * N * F, BYTE, "4*7NF bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] h1 = r.gauss(N * F, 1), h3 = r.gauss(N * F, 1), dout = r.gauss(N * F, 1);
            return new Instance() {
                final float[] dh1 = accumulated("dh1", N * F);
                final float[] dh3 = accumulated("dh3", N * F);

                @Override
                public void run(Ops ops) {
                    ops.swigluBackward(dh1, dh3, dout, h1, h3, N, F);
                }
            };
        });
    }

    static OpCase crossEntropyForward(Shapes s) {
        int N = s.N(), V = s.V();
        return new OpCase("crossEntropyForward", FORWARD, N + "x" + V, 4.0 * (2.0 * N * V + 2 * N), BYTE,
                "4*(2NV + 2N) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] logits = r.gauss(N * V, 2);
            int[] targets = r.ints(N, V);
            return new Instance() {
                final float[] losses = overwritten("losses", N);
                final float[] probs = overwritten("probs", N * V);

                @Override
                public void run(Ops ops) {
                    ops.crossEntropyForward(losses, probs, logits, targets, N, V);
                }
            };
        });
    }

    static OpCase crossEntropyBackward(Shapes s) {
        int N = s.N(), V = s.V();
        return new OpCase("crossEntropyBackward", BACKWARD, N + "x" + V, 4.0 * (3.0 * N * V + N), BYTE,
                "4*(3NV + N) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] logits = r.gauss(N * V, 2);
            int[] targets = r.ints(N, V);
            float[] probs = new float[N * V];
            new Ops().crossEntropyForward(new float[N], probs, logits, targets, N, V);
            return new Instance() {
                final float[] dlogits = accumulated("dlogits", N * V);

                @Override
                public void run(Ops ops) {
                    ops.crossEntropyBackward(dlogits, probs, targets, 1f / N, N, V);
                }
            };
        });
    }

    static OpCase embeddingForward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C(), V = s.V();
        return new OpCase("embeddingForward", FORWARD, N + "x" + n + "x" + C, 4.0 * (N + (double) N * C + (double) N * n * C), BYTE,
                "4*(N + NC + NnC) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            int[] tokens = r.ints(N, V);
            float[] embed = r.gauss(V * C, 1);
            return new Instance() {
                final float[] x = overwritten("x", N * n * C);

                @Override
                public void run(Ops ops) {
                    ops.embeddingForward(x, tokens, embed, N, n, C);
                }
            };
        });
    }

    static OpCase embeddingBackward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C(), V = s.V();
        return new OpCase("embeddingBackward", BACKWARD, N + "x" + n + "x" + C, 4.0 * (N + (double) N * n * C + 2.0 * N * C), BYTE,
                "4*(N + NnC + 2NC) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            int[] tokens = r.ints(N, V);
            float[] dx = r.gauss(N * n * C, 1);
            return new Instance() {
                final float[] dembed = accumulated("dembed", V * C);

                @Override
                public void run(Ops ops) {
                    ops.embeddingBackward(dembed, dx, tokens, N, n, C);
                }
            };
        });
    }

    // ------------------------------------------------------------------ streams

    private static String streamShape(Shapes s) {
        return s.N() + "x" + s.n() + "x" + s.C();
    }

    static OpCase aggregateForward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C();
        return new OpCase("aggregateForward", FORWARD, streamShape(s), 4.0 * ((double) N * n * C + N * n + (double) N * C), BYTE,
                "4*(NnC + Nn + NC) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] x = r.gauss(N * n * C, 1), hpre = r.uniform(N * n, 0, 1);
            return new Instance() {
                final float[] u = overwritten("u", N * C);

                @Override
                public void run(Ops ops) {
                    ops.aggregateForward(u, x, hpre, N, n, C);
                }
            };
        });
    }

    static OpCase aggregateBackwardStreams(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C();
        return new OpCase("aggregateBackwardStreams", BACKWARD, streamShape(s), 4.0 * (2.0 * N * n * C + N * n + (double) N * C), BYTE,
                "4*(2NnC + Nn + NC) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] du = r.gauss(N * C, 1), hpre = r.uniform(N * n, 0, 1);
            return new Instance() {
                final float[] dx = accumulated("dx", N * n * C);

                @Override
                public void run(Ops ops) {
                    ops.aggregateBackwardStreams(dx, du, hpre, N, n, C);
                }
            };
        });
    }

    static OpCase aggregateBackwardCoeffs(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C();
        return new OpCase("aggregateBackwardCoeffs", BACKWARD, streamShape(s), 4.0 * ((double) N * n * C + 2.0 * N * n + (double) N * C), BYTE,
                "4*(NnC + 2Nn + NC) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] du = r.gauss(N * C, 1), x = r.gauss(N * n * C, 1);
            return new Instance() {
                final float[] dhpre = accumulated("dhpre", N * n);

                @Override
                public void run(Ops ops) {
                    ops.aggregateBackwardCoeffs(dhpre, du, x, N, n, C);
                }
            };
        });
    }

    /** Stream-mixing coefficients like mhc's: Hres rows of a doubly stochastic-ish matrix, Hpost in (0, 2). */
    private record MixInputs(float[] x, float[] hres, float[] hpost, float[] y) {
        static MixInputs make(Rand r, int N, int n, int C) {
            return new MixInputs(r.gauss(N * n * C, 1), r.uniform(N * n * n, 0, 2.0 / n), r.uniform(N * n, 0, 2), r.gauss(N * C, 1));
        }
    }

    static OpCase mixForward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C();
        return new OpCase("mixForward", FORWARD, streamShape(s), 4.0 * (2.0 * N * n * C + N * C + (double) N * n * n + N * n), BYTE,
                "4*(2NnC + NC + Nnn + Nn) bytes", STANDARD, seed -> {
            MixInputs in = MixInputs.make(new Rand(seed), N, n, C);
            return new Instance() {
                final float[] xout = overwritten("xout", N * n * C);

                @Override
                public void run(Ops ops) {
                    ops.mixForward(xout, in.x(), in.hres(), in.hpost(), in.y(), N, n, C);
                }
            };
        });
    }

    /** The mix's whole backward as the model calls it: streams and coefficients, overwritten. */
    static OpCase mixBackward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C();
        return new OpCase("mixBackward", BACKWARD, streamShape(s),
                4.0 * (3.0 * N * n * C + 2.0 * N * C + 2.0 * N * n * n + 2.0 * N * n), BYTE,
                "4*(3NnC + 2NC + 2Nnn + 2Nn) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            MixInputs in = MixInputs.make(r, N, n, C);
            float[] dxout = r.gauss(N * n * C, 1);
            return new Instance() {
                final float[] dx = overwritten("dx", N * n * C);
                final float[] dy = overwritten("dy", N * C);
                final float[] dhres = overwritten("dhres", N * n * n);
                final float[] dhpost = overwritten("dhpost", N * n);

                @Override
                public void run(Ops ops) {
                    ops.mixBackward(dx, dy, dhres, dhpost, dxout, in.x(), in.hres(), in.hpost(), in.y(), true, N, n, C);
                }
            };
        });
    }

    static OpCase collapseForward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C();
        return new OpCase("collapseForward", FORWARD, streamShape(s), 4.0 * ((double) N * n * C + (double) N * C), BYTE,
                "4*(NnC + NC) bytes", STANDARD, seed -> {
            float[] x = new Rand(seed).gauss(N * n * C, 1);
            return new Instance() {
                final float[] u = overwritten("u", N * C);

                @Override
                public void run(Ops ops) {
                    ops.collapseForward(u, x, N, n, C);
                }
            };
        });
    }

    static OpCase collapseBackward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C();
        return new OpCase("collapseBackward", BACKWARD, streamShape(s), 4.0 * (2.0 * N * n * C + (double) N * C), BYTE,
                "4*(2NnC + NC) bytes", STANDARD, seed -> {
            float[] du = new Rand(seed).gauss(N * C, 1);
            return new Instance() {
                final float[] dx = accumulated("dx", N * n * C);

                @Override
                public void run(Ops ops) {
                    ops.collapseBackward(dx, du, N, n, C);
                }
            };
        });
    }

    // ------------------------------------------------------------------ Sinkhorn and the connection groups

    /** Sinkhorn logits around the spec's init: +3 on the diagonal, -3 off it, plus N(0, 1) noise. */
    private static float[] sinkhornLogits(Rand r, int N, int n) {
        float[] z = r.gauss(N * n * n, 1);
        for (int t = 0; t < N; t++) {
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    z[(t * n + i) * n + j] += i == j ? 3f : -3f;
                }
            }
        }
        return z;
    }

    private static double sinkhornFlops(Shapes s, int passes) {
        return (double) s.N() * s.n() * s.n() * passes * (1 + 4.0 * s.iters());
    }

    static OpCase sinkhornForward(Shapes s) {
        int N = s.N(), n = s.n(), it = s.iters();
        return new OpCase("sinkhornForward", FORWARD, N + "x" + n + "x" + n + " iters=" + it, sinkhornFlops(s, 1), FLOP,
                "N*n*n*(1 + 4*iters) (exp and divide counted as 1)", CHAINED, seed -> {
            float[] z = sinkhornLogits(new Rand(seed), N, n);
            return new Instance() {
                final float[] out = overwritten("out", N * n * n);

                @Override
                public void run(Ops ops) {
                    ops.sinkhornForward(out, z, N, n, it);
                }
            };
        });
    }

    static OpCase sinkhornBackward(Shapes s) {
        int N = s.N(), n = s.n(), it = s.iters();
        return new OpCase("sinkhornBackward", BACKWARD, N + "x" + n + "x" + n + " iters=" + it, sinkhornFlops(s, 3), FLOP,
                "3*N*n*n*(1 + 4*iters) (recomputed forward + reverse steps)", CHAINED, seed -> {
            Rand r = new Rand(seed);
            float[] z = sinkhornLogits(r, N, n);
            float[] dout = r.gauss(N * n * n, 1);
            float[] work = new float[Sinkhorn.workSize(N, n, it)];
            return new Instance() {
                final float[] dz = accumulated("dz", N * n * n);

                @Override
                public void run(Ops ops) {
                    ops.sinkhornBackward(dz, dout, z, work, N, n, it);
                }
            };
        });
    }

    /** mhc parameters as a trained layer might have them: phi ~ N(0, 0.05), alpha = 1, the spec's init bias (l = 0). */
    private record MhcInputs(float[] x, float[] phi, float[] alpha, float[] bias) {
        static MhcInputs make(Rand r, Shapes s) {
            int n = s.n(), M = s.M();
            float[] x = r.gauss(s.N() * n * s.C(), 1);
            float[] phi = r.gauss(n * s.C() * M, 0.05);
            float[] alpha = {1f, 1f, 1f};
            float[] bias = new float[M];
            for (int j = 0; j < n; j++) {
                bias[j] = j == 0 ? 3f : -3f;
                for (int i = 0; i < n; i++) {
                    bias[2 * n + i * n + j] = i == j ? 3f : -3f;
                }
            }
            return new MhcInputs(x, phi, alpha, bias);
        }
    }

    private static double mhcPreFlops(Shapes s, int factor) {
        double N = s.N(), nC = (double) s.n() * s.C();
        return factor * (2 * N * nC * s.M() + 2 * N * nC + 2 * N * nC) + sinkhornFlops(s, factor == 1 ? 1 : 3);
    }

    static OpCase mhcPreForward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C(), M = s.M(), it = s.iters();
        return new OpCase("mhcPreForward", FORWARD, streamShape(s) + " M=" + M, mhcPreFlops(s, 1), FLOP,
                "2N*nC*M (projection) + 2N*nC (rms) + 2N*nC (aggregate) + Sinkhorn", CHAINED, seed -> {
            MhcInputs in = MhcInputs.make(new Rand(seed), s);
            return new Instance() {
                final float[] u = overwritten("u", N * C);
                final float[] hpre = overwritten("hpre", N * n);
                final float[] hpost = overwritten("hpost", N * n);
                final float[] hres = overwritten("hres", N * n * n);
                final float[] rms = state(N), h = state(N * M), zres = state(N * n * n);

                @Override
                public void run(Ops ops) {
                    ops.mhcPreForward(u, hpre, hpost, hres, rms, h, zres, in.x(), in.phi(), in.alpha(), in.bias(), N, n, C, it);
                }
            };
        });
    }

    static OpCase mhcPreBackward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C(), M = s.M(), it = s.iters();
        return new OpCase("mhcPreBackward", BACKWARD, streamShape(s) + " M=" + M, mhcPreFlops(s, 2), FLOP,
                "2 x the forward's projection, rms and aggregate FLOP + 3 x Sinkhorn", CHAINED, seed -> {
            Rand r = new Rand(seed);
            MhcInputs in = MhcInputs.make(r, s);
            float[] du = r.gauss(N * C, 1), dhpost = r.gauss(N * n, 1), dhres = r.gauss(N * n * n, 1);
            return new Instance() {
                final float[] dx = accumulated("dx", N * n * C);
                final float[] dphi = accumulated("dphi", n * C * M);
                final float[] dalpha = accumulated("dalpha", 3);
                final float[] dbias = accumulated("dbias", M);
                final float[] hpre = state(N * n), hpost = state(N * n), rms = state(N), h = state(N * M), zres = state(N * n * n);

                @Override
                public void prepare(Ops ops) {
                    ops.mhcPreForward(state(N * C), hpre, hpost, state(N * n * n), rms, h, zres, in.x(), in.phi(), in.alpha(),
                            in.bias(), N, n, C, it);
                }

                @Override
                public void run(Ops ops) {
                    ops.mhcPreBackward(dx, dphi, dalpha, dbias, du, dhpost, dhres, in.x(), hpre, hpost, rms, h, zres,
                            in.phi(), in.alpha(), N, n, C, it);
                }
            };
        });
    }

    /** The mix after one sublayer and the mHC connection before the next, as the model calls them. */
    static OpCase mixMhcPreForward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C(), M = s.M(), it = s.iters();
        return new OpCase("mixMhcPreForward", FORWARD, streamShape(s) + " M=" + M, mhcPreFlops(s, 1) + 2.0 * N * n * C * (n + 1),
                FLOP, "mhcPreForward's FLOP + 2NnC(n+1) (the mix)", CHAINED, seed -> {
            Rand r = new Rand(seed);
            MixInputs mix = MixInputs.make(r, N, n, C);
            MhcInputs in = MhcInputs.make(r, s);
            return new Instance() {
                final float[] xout = overwritten("xout", N * n * C);
                final float[] u = overwritten("u", N * C);
                final float[] hpre = overwritten("hpre", N * n);
                final float[] hpost = overwritten("hpost", N * n);
                final float[] hres = overwritten("hres", N * n * n);
                final float[] rms = state(N), h = state(N * M), zres = state(N * n * n);

                @Override
                public void run(Ops ops) {
                    ops.mixMhcPreForward(xout, mix.x(), mix.hres(), mix.hpost(), mix.y(), u, hpre, hpost, hres, rms, h, zres,
                            in.phi(), in.alpha(), in.bias(), N, n, C, it);
                }
            };
        });
    }

    /**
     * The mHC connection's whole backward around a sublayer (the mix's backward, the
     * connection's, and the previous sublayer's dy), as the model calls it.
     */
    static OpCase mhcBackward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C(), M = s.M(), it = s.iters();
        return new OpCase("mhcBackward", BACKWARD, streamShape(s) + " M=" + M,
                mhcPreFlops(s, 2) + 2.0 * N * n * C * (2 * n + 2), FLOP,
                "mhcPreBackward's FLOP + 2NnC(2n+1) (the mix backward) + 2NnC (the previous dy)", CHAINED, seed -> {
            Rand r = new Rand(seed);
            MhcInputs in = MhcInputs.make(r, s);
            float[] dxout = r.gauss(N * n * C, 1), du = r.gauss(N * C, 1), y = r.gauss(N * C, 1);
            float[] hpostPrev = r.gauss(N * n, 1);
            return new Instance() {
                final float[] dx = overwritten("dx", N * n * C);
                final float[] dyPrev = overwritten("dyPrev", N * C);
                final float[] dphi = accumulated("dphi", n * C * M);
                final float[] dalpha = accumulated("dalpha", 3);
                final float[] dbias = accumulated("dbias", M);
                final float[] hpre = state(N * n), hpost = state(N * n), hres = state(N * n * n), rms = state(N),
                        h = state(N * M), zres = state(N * n * n);

                @Override
                public void prepare(Ops ops) {
                    ops.mhcPreForward(state(N * C), hpre, hpost, hres, rms, h, zres, in.x(), in.phi(), in.alpha(),
                            in.bias(), N, n, C, it);
                }

                @Override
                public void run(Ops ops) {
                    ops.mhcBackward(dx, dyPrev, dphi, dalpha, dbias, dxout, du, in.x(), y, hpre, hpost, hres, rms, h, zres,
                            in.phi(), in.alpha(), hpostPrev, N, n, C, it);
                }
            };
        });
    }

    /** hc parameters near the spec's init, with nonzero weights so that every path carries a gradient. */
    private record HcInputs(float[] x, float[] wPre, float[] wPost, float[] wRes, float[] pre, float[] post, float[] res, float[] scale) {
        static HcInputs make(Rand r, Shapes s) {
            int n = s.n(), C = s.C();
            float[] pre = r.gauss(n, 0.1), post = r.gauss(n, 0.1), res = r.gauss(n * n, 0.1);
            pre[0] += 1f;
            for (int i = 0; i < n; i++) {
                post[i] += 1f;
                res[i * n + i] += 1f;
            }
            return new HcInputs(r.gauss(s.N() * n * C, 1), r.gauss(C, 0.05), r.gauss(C, 0.05), r.gauss(C * n, 0.05),
                    pre, post, res, new float[]{0.5f, 0.5f});
        }
    }

    private static double hcPreFlops(Shapes s, int factor) {
        double nC = (double) s.N() * s.n() * s.C();
        return factor * nC * (3 + 2.0 * (2 + s.n()) + 2);
    }

    static OpCase hcPreForward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C();
        return new OpCase("hcPreForward", FORWARD, streamShape(s), hcPreFlops(s, 1), FLOP,
                "NnC*(3 (norm) + 2(n+2) (dots) + 2 (aggregate))", STANDARD, seed -> {
            HcInputs in = HcInputs.make(new Rand(seed), s);
            return new Instance() {
                final float[] u = overwritten("u", N * C);
                final float[] hpre = overwritten("hpre", N * n);
                final float[] hpost = overwritten("hpost", N * n);
                final float[] hres = overwritten("hres", N * n * n);
                final float[] xbar = state(N * n * C), xrstd = state(N * n), tpre = state(N * n), tpost = state(N * n), tres = state(N * n * n);

                @Override
                public void run(Ops ops) {
                    ops.hcPreForward(u, hpre, hpost, hres, xbar, xrstd, tpre, tpost, tres, in.x(), in.wPre(), in.wPost(), in.wRes(),
                            in.pre(), in.post(), in.res(), in.scale(), N, n, C);
                }
            };
        });
    }

    static OpCase hcPreBackward(Shapes s) {
        int N = s.N(), n = s.n(), C = s.C();
        return new OpCase("hcPreBackward", BACKWARD, streamShape(s), hcPreFlops(s, 2), FLOP,
                "2 x the forward's FLOP", CHAINED, seed -> {
            Rand r = new Rand(seed);
            HcInputs in = HcInputs.make(r, s);
            float[] du = r.gauss(N * C, 1), dhpost = r.gauss(N * n, 1), dhres = r.gauss(N * n * n, 1);
            return new Instance() {
                final float[] dx = accumulated("dx", N * n * C);
                final float[] dwPre = accumulated("dwPre", C);
                final float[] dwPost = accumulated("dwPost", C);
                final float[] dwRes = accumulated("dwRes", C * n);
                final float[] dpre = accumulated("dpre", n);
                final float[] dpost = accumulated("dpost", n);
                final float[] dres = accumulated("dres", n * n);
                final float[] dscale = accumulated("dscale", 2);
                final float[] hpre = state(N * n), xbar = state(N * n * C), xrstd = state(N * n), tpre = state(N * n),
                        tpost = state(N * n), tres = state(N * n * n);

                @Override
                public void prepare(Ops ops) {
                    ops.hcPreForward(state(N * C), hpre, state(N * n), state(N * n * n), xbar, xrstd, tpre, tpost, tres, in.x(),
                            in.wPre(), in.wPost(), in.wRes(), in.pre(), in.post(), in.res(), in.scale(), N, n, C);
                }

                @Override
                public void run(Ops ops) {
                    ops.hcPreBackward(dx, dwPre, dwPost, dwRes, dpre, dpost, dres, dscale, du, dhpost, dhres, in.x(), hpre, xbar,
                            xrstd, tpre, tpost, tres, in.wPre(), in.wPost(), in.wRes(), in.scale(), N, n, C);
                }
            };
        });
    }

    // ------------------------------------------------------------------ MoE

    /**
     * A routing as the router produces it: logits N(0, 1), a small router bias, the plain kernels'
     * selection, gates and dispatch lists (balanced on average: about N*K/E rows per expert).
     */
    private record Routing(float[] logits, float[] bias, int[] sel, float[] gates, float[] scores,
                           int[] rows, int[] slots, int[] counts) {
        static Routing make(Rand r, Shapes s) {
            int N = s.N(), E = s.E(), K = s.K();
            float[] logits = r.gauss(N * E, 1), bias = r.gauss(E, 0.01);
            int[] sel = new int[N * K], rows = new int[E * N], slots = new int[E * N], counts = new int[E];
            float[] gates = new float[N * K], scores = new float[N * E];
            Ops plain = new Ops();
            plain.moeRouteForward(sel, gates, scores, logits, bias, N, E, K);
            plain.moeDispatch(rows, slots, counts, sel, N, E, K);
            return new Routing(logits, bias, sel, gates, scores, rows, slots, counts);
        }

        int routed() {
            return sel.length;
        }
    }

    private static String moeShape(Shapes s) {
        return s.N() + "x" + s.C() + " E=" + s.E() + " K=" + s.K();
    }

    static OpCase moeRouteForward(Shapes s) {
        int N = s.N(), E = s.E(), K = s.K();
        return new OpCase("moeRouteForward", FORWARD, N + "x" + E + " K=" + K, 4.0 * (2.0 * N * E + 2.0 * N * K + E), BYTE,
                "4*(2NE + 2NK + E) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] logits = r.gauss(N * E, 1), bias = r.gauss(E, 0.01);
            return new Instance() {
                final int[] sel = overwrittenInts("sel", N * K);
                final float[] gates = overwritten("gates", N * K);
                final float[] scores = overwritten("scores", N * E);

                @Override
                public void run(Ops ops) {
                    ops.moeRouteForward(sel, gates, scores, logits, bias, N, E, K);
                }
            };
        });
    }

    static OpCase moeRouteBackward(Shapes s) {
        int N = s.N(), E = s.E(), K = s.K();
        return new OpCase("moeRouteBackward", BACKWARD, N + "x" + E + " K=" + K, 4.0 * (3.0 * N * E + 3.0 * N * K), BYTE,
                "4*(3NE + 3NK) bytes", STANDARD, seed -> {
            Rand r = new Rand(seed);
            Routing rt = Routing.make(r, s);
            float[] dgates = r.gauss(N * K, 1);
            return new Instance() {
                final float[] dlogits = accumulated("dlogits", N * E);

                @Override
                public void run(Ops ops) {
                    ops.moeRouteBackward(dlogits, dgates, rt.scores(), rt.gates(), rt.sel(), N, E, K);
                }
            };
        });
    }

    static OpCase moeDispatch(Shapes s) {
        int N = s.N(), E = s.E(), K = s.K();
        return new OpCase("moeDispatch", FORWARD, N + "x" + E + " K=" + K, 4.0 * ((double) E * N * K + 2.0 * N * K + E), BYTE,
                "4*(E*NK + 2NK + E) bytes (each expert scans the selection)", STANDARD, seed -> {
            Routing rt = Routing.make(new Rand(seed), s);
            return new Instance() {
                final int[] rows = new int[E * N], slots = new int[E * N];
                final int[] counts = overwrittenInts("counts", E);

                @Override
                public void run(Ops ops) {
                    ops.moeDispatch(rows, slots, counts, rt.sel(), N, E, K);
                }

                /** Only the first counts[e] entries of each expert's list are defined. */
                @Override
                public Map<String, Object> results() {
                    Map<String, Object> m = new LinkedHashMap<>(super.results());
                    m.put("rows", listed(rows));
                    m.put("slots", listed(slots));
                    return m;
                }

                private int[] listed(int[] lists) {
                    int total = 0;
                    for (int c : counts) {
                        total += Math.max(0, Math.min(c, N));
                    }
                    int[] out = new int[total];
                    int o = 0;
                    for (int e = 0; e < E; e++) {
                        int c = Math.max(0, Math.min(counts[e], N));
                        System.arraycopy(lists, e * N, out, o, c);
                        o += c;
                    }
                    return out;
                }
            };
        });
    }

    static OpCase moeGather(Shapes s) {
        int N = s.N(), C = s.C(), E = s.E(), K = s.K();
        return new OpCase("moeGather", FORWARD, moeShape(s), 4.0 * (2.0 * N * K * C + (double) N * K), BYTE,
                "4*(2NKC + NK) bytes, all E experts", STANDARD, seed -> {
            Rand r = new Rand(seed);
            Routing rt = Routing.make(r, s);
            float[] a = r.gauss(N * C, 1);
            return new Instance() {
                final float[][] out = new float[E][];

                {
                    for (int e = 0; e < E; e++) {
                        out[e] = overwritten("out[" + e + "]", rt.counts()[e] * C);
                    }
                }

                @Override
                public void run(Ops ops) {
                    for (int e = 0; e < E; e++) {
                        ops.moeGather(out[e], a, rt.rows(), e * N, rt.counts()[e], C);
                    }
                }
            };
        });
    }

    static OpCase moeGatherBackward(Shapes s) {
        int N = s.N(), C = s.C(), E = s.E(), K = s.K();
        return new OpCase("moeGatherBackward", BACKWARD, moeShape(s), 4.0 * (3.0 * N * K * C + (double) N * K), BYTE,
                "4*(3NKC + NK) bytes, all E experts", STANDARD, seed -> {
            Rand r = new Rand(seed);
            Routing rt = Routing.make(r, s);
            float[][] dout = new float[E][];
            for (int e = 0; e < E; e++) {
                dout[e] = r.gauss(rt.counts()[e] * C, 1);
            }
            return new Instance() {
                final float[] da = accumulated("da", N * C);

                @Override
                public void run(Ops ops) {
                    for (int e = 0; e < E; e++) {
                        ops.moeGatherBackward(da, dout[e], rt.rows(), e * N, rt.counts()[e], C);
                    }
                }
            };
        });
    }

    static OpCase moeCombine(Shapes s) {
        int N = s.N(), C = s.C(), E = s.E(), K = s.K();
        return new OpCase("moeCombine", FORWARD, moeShape(s), 4.0 * (3.0 * N * K * C + 3.0 * N * K), BYTE,
                "4*(3NKC + 3NK) bytes, all E experts", STANDARD, seed -> {
            Rand r = new Rand(seed);
            Routing rt = Routing.make(r, s);
            float[][] ye = new float[E][];
            for (int e = 0; e < E; e++) {
                ye[e] = r.gauss(rt.counts()[e] * C, 1);
            }
            return new Instance() {
                final float[] y = accumulated("y", N * C);

                @Override
                public void run(Ops ops) {
                    for (int e = 0; e < E; e++) {
                        ops.moeCombine(y, ye[e], rt.gates(), rt.rows(), rt.slots(), e * N, rt.counts()[e], C, K);
                    }
                }
            };
        });
    }

    static OpCase moeCombineBackward(Shapes s) {
        int N = s.N(), C = s.C(), E = s.E(), K = s.K();
        return new OpCase("moeCombineBackward", BACKWARD, moeShape(s), 4.0 * (4.0 * N * K * C + 4.0 * N * K), BYTE,
                "4*(4NKC + 4NK) bytes, all E experts", STANDARD, seed -> {
            Rand r = new Rand(seed);
            Routing rt = Routing.make(r, s);
            float[] dy = r.gauss(N * C, 1);
            float[][] ye = new float[E][];
            for (int e = 0; e < E; e++) {
                ye[e] = r.gauss(rt.counts()[e] * C, 1);
            }
            return new Instance() {
                final float[] dgates = accumulated("dgates", N * K);
                final float[][] dye = new float[E][];

                {
                    for (int e = 0; e < E; e++) {
                        dye[e] = accumulated("dye[" + e + "]", rt.counts()[e] * C);
                    }
                }

                @Override
                public void run(Ops ops) {
                    for (int e = 0; e < E; e++) {
                        ops.moeCombineBackward(dye[e], dgates, dy, ye[e], rt.gates(), rt.rows(), rt.slots(), e * N, rt.counts()[e], C, K);
                    }
                }
            };
        });
    }

    static OpCase moeAddShared(Shapes s) {
        int N = s.N(), C = s.C();
        return new OpCase("moeAddShared", FORWARD, N + "x" + C, 4.0 * 3 * N * C, BYTE, "4*3NC bytes", STANDARD, seed -> {
            float[] ys = new Rand(seed).gauss(N * C, 1);
            return new Instance() {
                final float[] y = accumulated("y", N * C);

                @Override
                public void run(Ops ops) {
                    ops.moeAddShared(y, ys, N, C);
                }
            };
        });
    }

    // ------------------------------------------------------------------ optimizer

    /** One AdamW step ({@code Ops.adamwUpdate}) on a tensor of {@code 4*C*F} floats, the size of a block's FFN weights. */
    static OpCase adamwUpdate(Shapes s) {
        int size = 4 * s.C() * s.F();
        return new OpCase("adamwUpdate", Group.OPTIMIZER, Integer.toString(size), 4.0 * 7 * size, BYTE,
                "4*7*size bytes (read p, g, m, v; write p, m, v)", STANDARD, seed -> {
            Rand r = new Rand(seed);
            float[] grad = r.gauss(size, 0.01);
            float[] p0 = r.gauss(size, 0.02), m0 = r.gauss(size, 0.001), v0 = r.uniform(size, 0, 1e-4);
            return new Instance() {
                final float[] p = updated("param", p0);
                final float[] mom = updated("m", m0);
                final float[] vel = updated("v", v0);

                @Override
                public void run(Ops ops) {
                    ops.adamwUpdate(p, grad, mom, vel, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1f, 0.5f, 0.3f, size);
                }
            };
        });
    }

    // ------------------------------------------------------------------ random inputs

    /** Seeded random arrays. */
    static final class Rand {
        private final SplittableRandom r;

        Rand(long seed) {
            r = new SplittableRandom(seed);
        }

        float[] gauss(int size, double scale) {
            float[] a = new float[size];
            for (int i = 0; i < size; i++) {
                a[i] = (float) (scale * r.nextGaussian());
            }
            return a;
        }

        float[] uniform(int size, double lo, double hi) {
            float[] a = new float[size];
            for (int i = 0; i < size; i++) {
                a[i] = (float) (lo + (hi - lo) * r.nextDouble());
            }
            return a;
        }

        int[] ints(int size, int bound) {
            int[] a = new int[size];
            for (int i = 0; i < size; i++) {
                a[i] = r.nextInt(bound);
            }
            return a;
        }
    }
}
