package mhc.engine.train;

import mhc.engine.Config;
import mhc.engine.ParamSpec;
import mhc.engine.model.Model;
import mhc.engine.model.Ops;
import mhc.engine.model.Params;
import mhc.kernels.AdamW;

import java.util.ArrayList;
import java.util.List;

/**
 * AdamW with global gradient-norm clipping, and the MoE router-bias update of MODEL.md
 * (auxiliary-loss-free load balancing) after each step.
 */
public final class Optimizer {
    private final TrainSettings settings;
    private final Params m;
    private final Params v;
    private int t; // steps taken
    private Ops ops = new Ops(); // where the AdamW update runs; the plain kernel unless withOps says otherwise

    public Optimizer(Config cfg, TrainSettings settings) {
        this(settings, new Params(cfg), new Params(cfg), 0);
    }

    /** Resumes with saved moments after {@code stepsTaken} steps. */
    public Optimizer(TrainSettings settings, Params m, Params v, int stepsTaken) {
        this.settings = settings;
        this.m = m;
        this.v = v;
        this.t = stepsTaken;
    }

    /**
     * Runs the AdamW update on a backend's operations ({@code backend.newOps(threads)}), e.g.
     * the vectorized one of the fast path (bit-identical to the plain kernel for any number of
     * threads). Returns this; the caller keeps and closes {@code ops}.
     */
    public Optimizer withOps(Ops ops) {
        this.ops = ops;
        return this;
    }

    public Params firstMoments() {
        return m;
    }

    public Params secondMoments() {
        return v;
    }

    public int stepsTaken() {
        return t;
    }

    /**
     * The L2 norm of all trainable gradients, in double. Each tensor's squares (exact in double)
     * are summed in four chains, element i into chain i mod 4, the chains added in order, and the
     * tensors' sums in parameter order: a fixed order, so the same bits on every backend and
     * thread count. One chain over all elements waited on each addition's latency: 5 ms of a
     * gpt-small step on Zen 3, serial while the other cores idle.
     */
    public static double gradNorm(Params grads) {
        double s = 0;
        for (ParamSpec spec : grads.specs()) {
            if (spec.trainable()) {
                s += sumOfSquares(grads.get(spec.name()));
            }
        }
        return Math.sqrt(s);
    }

    /** {@code sum g[i]^2} in double, element i into chain i mod 4, then {@code ((c0 + c1) + c2) + c3}. */
    public static double sumOfSquares(float[] g) {
        double c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        int i = 0;
        for (; i + 4 <= g.length; i += 4) {
            c0 += (double) g[i] * g[i];
            c1 += (double) g[i + 1] * g[i + 1];
            c2 += (double) g[i + 2] * g[i + 2];
            c3 += (double) g[i + 3] * g[i + 3];
        }
        if (i < g.length) {
            c0 += (double) g[i] * g[i];
        }
        if (i + 1 < g.length) {
            c1 += (double) g[i + 1] * g[i + 1];
        }
        if (i + 2 < g.length) {
            c2 += (double) g[i + 2] * g[i + 2];
        }
        return ((c0 + c1) + c2) + c3;
    }

    /** The first trainable tensor with a non-finite gradient, or null. */
    public static String firstNonFiniteGradient(Params grads) {
        for (ParamSpec spec : grads.specs()) {
            for (float g : grads.get(spec.name())) {
                if (!Float.isFinite(g)) {
                    return spec.name();
                }
            }
        }
        return null;
    }

    /** One AdamW step at learning rate {@code lr}, gradients clipped to global norm {@code settings.clip()}. */
    public void update(Params params, Params grads, double lr, double gradNorm) {
        t++;
        float scale = (float) Math.min(1.0, settings.clip() / (gradNorm + 1e-6));
        float bc1 = (float) (1 - Math.pow(settings.beta1(), t));
        float bc2 = (float) (1 - Math.pow(settings.beta2(), t));
        for (ParamSpec spec : params.specs()) {
            if (!spec.trainable()) {
                continue;
            }
            String name = spec.name();
            float[] p = params.get(name);
            ops.adamwUpdate(p, grads.get(name), m.get(name), v.get(name), (float) lr,
                    (float) settings.beta1(), (float) settings.beta2(), (float) settings.eps(),
                    spec.decay() ? (float) settings.weightDecay() : 0f, scale, bc1, bc2, p.length);
        }
    }

    /**
     * The update as kernel calls recorded after the backward of a training step that runs on a
     * device ({@code Model.trainPass}): the gradient norm from per-tensor partial sums of
     * squares, the clip scale, and the scheduled AdamW kernel on every trainable tensor. The
     * moments live on the device with the parameters. Before each replay {@link #prepare} puts
     * the step's learning rate and bias corrections into {@code hp}; after it, {@link #finish}
     * reads the norm and loss and counts the step if the device applied it (it leaves
     * everything as it was when the norm or the loss is not finite).
     */
    public final class DeviceUpdate implements Model.PassTail {
        /** Partial sums per tensor for the norm: enough parallel work for a device, few enough to add on one thread. */
        static final int PARTS = 256;
        private final Params params;
        private final float[] hp = new float[AdamW.HP_SIZE];
        private final float[] stats = new float[AdamW.STAT_SIZE];
        private final float[] partials;
        private final List<ParamSpec> trainable = new ArrayList<>();

        DeviceUpdate(Params params) {
            this.params = params;
            for (ParamSpec spec : params.specs()) {
                if (spec.trainable()) {
                    trainable.add(spec);
                }
            }
            this.partials = new float[trainable.size() * PARTS];
        }

        @Override
        public void record(Ops ops, Params grads, float[] losses, int N) {
            for (int k = 0; k < trainable.size(); k++) {
                String name = trainable.get(k).name();
                ops.sumOfSquares(partials, grads.get(name), k * PARTS, grads.get(name).length, PARTS);
            }
            ops.clipScale(stats, hp, partials, losses, partials.length, N, (float) settings.clip());
            for (ParamSpec spec : trainable) {
                String name = spec.name();
                float[] p = params.get(name);
                ops.adamwUpdateScheduled(p, grads.get(name), m.get(name), v.get(name), hp,
                        (float) settings.beta1(), (float) settings.beta2(), (float) settings.eps(),
                        spec.decay() ? (float) settings.weightDecay() : 0f, p.length);
            }
        }

        @Override
        public Object[] in() {
            return new Object[]{hp};
        }

        @Override
        public Object[] out() {
            return new Object[]{stats};
        }

        @Override
        public Object[] resident() {
            List<Object> r = new ArrayList<>();
            for (ParamSpec spec : trainable) {
                r.add(m.get(spec.name()));
                r.add(v.get(spec.name()));
            }
            return r.toArray();
        }

        /** Sets the learning rate and bias corrections of the next step ({@code stepsTaken() + 1}). */
        public void prepare(double lr) {
            hp[AdamW.HP_LR] = (float) lr;
            hp[AdamW.HP_BC1] = (float) (1 - Math.pow(settings.beta1(), t + 1));
            hp[AdamW.HP_BC2] = (float) (1 - Math.pow(settings.beta2(), t + 1));
        }

        /** After a replay: whether the device applied the step (then it counts as taken). */
        public boolean finish() {
            boolean applied = Double.isFinite(gradNorm()) && Double.isFinite(lossSum());
            if (applied) {
                t++;
            }
            return applied;
        }

        /** The global gradient norm of the last replay. */
        public double gradNorm() {
            return stats[AdamW.STAT_NORM];
        }

        /** The sum of the per-position losses of the last replay. */
        public double lossSum() {
            return stats[AdamW.STAT_LOSS_SUM];
        }
    }

    /** The device form of {@link #update} for {@code params}, with this optimizer's moments and step count. */
    public DeviceUpdate deviceUpdate(Params params) {
        return new DeviceUpdate(params);
    }

    /**
     * {@code router_bias[e] += gamma * sign(mean_load - load_e)} for each MoE sublayer, with
     * the loads of the step just taken ({@code loads[l][e]} tokens routed to expert e).
     */
    public static void updateRouterBias(Params params, int[][] loads) {
        Config cfg = params.config();
        if (!cfg.isMoe() || loads == null) {
            return;
        }
        float gamma = (float) cfg.routerGamma();
        for (int l = 1; l < cfg.sublayers(); l += 2) {
            float[] bias = params.get(ParamSpec.sublayerPrefix(l) + "router_bias");
            double mean = 0;
            for (int load : loads[l]) {
                mean += load;
            }
            mean /= loads[l].length;
            for (int e = 0; e < bias.length; e++) {
                bias[e] += gamma * (float) Math.signum(mean - loads[l][e]);
            }
        }
    }
}
