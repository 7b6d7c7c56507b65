package mhc.engine.study;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import mhc.engine.model.Gains;

import java.util.List;
import java.util.Locale;

/** The numbers of a finished study, and its JSON form ({@code study.json}). */
public record StudyResult(StudySettings settings, String dataSource, List<ConnectionRun> runs,
                          List<SinkhornSweep.Row> sweep, double wallSeconds) {

    public StudyResult {
        runs = List.copyOf(runs);
        sweep = List.copyOf(sweep);
    }

    public ConnectionRun run(String connection) {
        for (ConnectionRun r : runs) {
            if (r.name().equals(connection)) {
                return r;
            }
        }
        return null;
    }

    /** The run losses are compared against: residual if trained, else the first connection. */
    public ConnectionRun baseline() {
        ConnectionRun r = run("residual");
        return r != null ? r : runs.get(0);
    }

    /** HC's peak max composite gain over mHC's (forward, backward), or NaN if either is missing. */
    public double[] hcOverMhc() {
        ConnectionRun hc = run("hc"), mhc = run("mhc");
        if (hc == null || mhc == null) {
            return new double[]{Double.NaN, Double.NaN};
        }
        return new double[]{hc.maxCompositeForward() / mhc.maxCompositeForward(),
                hc.maxCompositeBackward() / mhc.maxCompositeBackward()};
    }

    public String sweepMode() {
        if (sweep.isEmpty() && settings.sweepIters().isEmpty()) {
            return "none";
        }
        return settings.sweepTrain() ? "train" : "evaluate";
    }

    public String sweepModeDescription() {
        return settings.sweepTrain()
                ? "one mhc model trained per iteration count with the study's schedule, each measured with its own count on the first validation batch"
                : "the trained mhc model (trained with sinkhorn_iters=" + settings.base().sinkhornIters()
                + ") re-evaluated with each iteration count on the first validation batch (same tensors, only sinkhorn_iters changed)";
    }

    // ------------------------------------------------------------------ JSON

    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("format", "mhc-study/1");
        o.add("config", JsonParser.parseString(settings.base().toJson()));
        o.add("train", settings.train().toJson());
        o.addProperty("data", dataSource);
        o.addProperty("gain_every", settings.gainEvery());
        o.addProperty("eval_every", settings.evalEvery());
        o.addProperty("eval_batches", settings.evalBatches());
        o.addProperty("threads", settings.threads());
        o.addProperty("final_loss_window", ConnectionRun.FINAL_LOSS_WINDOW);
        o.addProperty("java", Runtime.version().toString());
        o.addProperty("wall_s", wallSeconds);
        JsonArray order = new JsonArray();
        JsonObject conns = new JsonObject();
        ConnectionRun base = baseline();
        for (ConnectionRun r : runs) {
            order.add(r.name());
            conns.add(r.name(), runJson(r, base));
        }
        o.add("connections_order", order);
        o.add("connections", conns);
        o.addProperty("baseline", base.name());
        double[] ratio = hcOverMhc();
        o.add("hc_over_mhc_max_composite_forward", num(ratio[0]));
        o.add("hc_over_mhc_max_composite_backward", num(ratio[1]));
        JsonObject sw = new JsonObject();
        sw.addProperty("mode", sweepMode());
        if (!"none".equals(sweepMode())) {
            sw.addProperty("description", sweepModeDescription());
        }
        JsonArray rows = new JsonArray();
        for (SinkhornSweep.Row r : sweep) {
            JsonObject e = new JsonObject();
            e.addProperty("sinkhorn_iters", r.iters());
            e.add("column_error", num(r.columnError()));
            e.add("row_error", num(r.rowError()));
            e.add("max_backward", num(r.maxBackward()));
            e.add("max_composite_backward", num(r.maxCompositeBackward()));
            e.add("max_composite_forward", num(r.maxCompositeForward()));
            e.add("loss", num(r.loss()));
            e.add("val_loss", num(r.valLoss()));
            rows.add(e);
        }
        sw.add("rows", rows);
        o.add("sinkhorn_sweep", sw);
        return o;
    }

    private static JsonObject runJson(ConnectionRun r, ConnectionRun base) {
        JsonObject o = new JsonObject();
        o.addProperty("connection", r.config().connection());
        o.addProperty("summary", r.config().summary());
        o.addProperty("params", r.paramCount());
        o.addProperty("steps", r.steps());
        o.add("diverged", r.diverged() == null ? JsonNull.INSTANCE : new JsonPrimitive(r.diverged()));
        o.add("final_loss", num(r.finalLoss()));
        o.add("last_loss", num(r.steps() == 0 ? Double.NaN : r.loss()[r.steps() - 1]));
        o.add("final_val_loss", num(r.finalValLoss()));
        o.add("val_gap_vs_" + base.name(), num(r.finalValLoss() - base.finalValLoss()));
        o.add("max_composite_forward", num(r.maxCompositeForward()));
        o.add("max_composite_backward", num(r.maxCompositeBackward()));
        ConnectionRun.GainPoint last = r.lastGains();
        o.add("final_max_composite_forward", num(last == null ? Double.NaN : last.gains().maxCompositeForward()));
        o.add("final_max_composite_backward", num(last == null ? Double.NaN : last.gains().maxCompositeBackward()));
        o.addProperty("wall_s", r.wallSeconds());
        o.add("tokens_per_s", num(r.tokensPerSecond()));
        JsonObject curves = new JsonObject();
        curves.add("loss", arr(r.loss()));
        curves.add("grad_norm", arr(r.gradNorm()));
        curves.add("lr", arr(r.lr()));
        JsonArray val = new JsonArray();
        for (ConnectionRun.ValPoint v : r.val()) {
            JsonObject e = new JsonObject();
            e.addProperty("step", v.step());
            e.add("loss", num(v.loss()));
            val.add(e);
        }
        curves.add("val", val);
        JsonArray gains = new JsonArray();
        for (ConnectionRun.GainPoint g : r.gains()) {
            Gains x = g.gains();
            JsonObject e = new JsonObject();
            e.addProperty("step", g.step());
            e.add("max_composite_forward", num(x.maxCompositeForward()));
            e.add("max_composite_backward", num(x.maxCompositeBackward()));
            e.add("forward", arr(x.forward()));
            e.add("backward", arr(x.backward()));
            e.add("composite_forward", arr(x.compositeForward()));
            e.add("composite_backward", arr(x.compositeBackward()));
            gains.add(e);
        }
        curves.add("gains", gains);
        o.add("curves", curves);
        return o;
    }

    /** A number, or null where it is NaN or infinite (JSON has neither). */
    static JsonElement num(double v) {
        return Double.isFinite(v) ? new JsonPrimitive(v) : JsonNull.INSTANCE;
    }

    private static JsonArray arr(double[] a) {
        JsonArray out = new JsonArray(a.length);
        for (double v : a) {
            out.add(num(v));
        }
        return out;
    }

    public String toJsonString() {
        return new GsonBuilder().serializeNulls().disableHtmlEscaping().create().toJson(toJson());
    }

    // ------------------------------------------------------------------ formatting helpers for the report

    static String f4(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.4f", v) : "n/a";
    }

    static String signed4(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%+.4f", v) : "n/a";
    }

    /** A gain: 5 significant digits below 10^5, else scientific. */
    static String gain(double v) {
        if (!Double.isFinite(v)) {
            return "n/a";
        }
        return Math.abs(v) < 1e5 ? String.format(Locale.ROOT, "%.5g", v) : String.format(Locale.ROOT, "%.3e", v);
    }

    static String sci(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.2e", v) : "n/a";
    }
}
