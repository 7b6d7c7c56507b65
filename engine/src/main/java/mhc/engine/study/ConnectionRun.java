package mhc.engine.study;

import mhc.engine.Config;
import mhc.engine.model.Gains;
import mhc.engine.model.Params;

import java.util.ArrayList;
import java.util.List;

/** Everything measured while training one connection of a study. */
public final class ConnectionRun {
    /** The gains measured at one step (on that step's training batch, before its update). */
    public record GainPoint(int step, Gains gains) {
    }

    /** A validation loss. */
    public record ValPoint(int step, double loss) {
    }

    /** Training losses over the last this many steps are averaged into {@link #finalLoss()}. */
    public static final int FINAL_LOSS_WINDOW = 20;

    private final String name;
    private final Config config;
    private final long paramCount;
    final List<Double> loss = new ArrayList<>();
    final List<Double> gradNorm = new ArrayList<>();
    final List<Double> lr = new ArrayList<>();
    final List<GainPoint> gains = new ArrayList<>();
    final List<ValPoint> val = new ArrayList<>();
    String diverged;
    double wallSeconds;
    Params finalParams;

    ConnectionRun(String name, Config config, long paramCount) {
        this.name = name;
        this.config = config;
        this.paramCount = paramCount;
    }

    public String name() {
        return name;
    }

    public Config config() {
        return config;
    }

    public long paramCount() {
        return paramCount;
    }

    /** Steps completed (1..steps); fewer than planned if training diverged. */
    public int steps() {
        return loss.size();
    }

    public double[] loss() {
        return toArray(loss);
    }

    public double[] gradNorm() {
        return toArray(gradNorm);
    }

    public double[] lr() {
        return toArray(lr);
    }

    public List<GainPoint> gains() {
        return List.copyOf(gains);
    }

    public List<ValPoint> val() {
        return List.copyOf(val);
    }

    /** Why training stopped early (a non-finite loss or gradient), or null. */
    public String diverged() {
        return diverged;
    }

    public double wallSeconds() {
        return wallSeconds;
    }

    /** The trained parameters (null once dropped). */
    public Params finalParams() {
        return finalParams;
    }

    /** Mean training loss of the last {@value #FINAL_LOSS_WINDOW} steps (fewer if the run is shorter). */
    public double finalLoss() {
        int n = loss.size();
        if (n == 0) {
            return Double.NaN;
        }
        int from = Math.max(0, n - FINAL_LOSS_WINDOW);
        double s = 0;
        for (int i = from; i < n; i++) {
            s += loss.get(i);
        }
        return s / (n - from);
    }

    /** The validation loss after the last step, or NaN if training stopped early. */
    public double finalValLoss() {
        if (val.isEmpty() || diverged != null) {
            return Double.NaN;
        }
        ValPoint last = val.get(val.size() - 1);
        return last.step() == steps() ? last.loss() : Double.NaN;
    }

    /** The largest max-over-sublayers composite forward gain of any measurement during training. */
    public double maxCompositeForward() {
        double m = Double.NaN;
        for (GainPoint g : gains) {
            m = Double.isNaN(m) ? g.gains().maxCompositeForward() : Math.max(m, g.gains().maxCompositeForward());
        }
        return m;
    }

    /** The same for the composite backward gain. */
    public double maxCompositeBackward() {
        double m = Double.NaN;
        for (GainPoint g : gains) {
            m = Double.isNaN(m) ? g.gains().maxCompositeBackward() : Math.max(m, g.gains().maxCompositeBackward());
        }
        return m;
    }

    /** The last gain measurement (at the last step), or null. */
    public GainPoint lastGains() {
        return gains.isEmpty() ? null : gains.get(gains.size() - 1);
    }

    public double tokensPerSecond() {
        return wallSeconds > 0 ? (double) steps() * config.batchSize() * config.seqLen() / wallSeconds : Double.NaN;
    }

    private static double[] toArray(List<Double> l) {
        double[] a = new double[l.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = l.get(i);
        }
        return a;
    }
}
