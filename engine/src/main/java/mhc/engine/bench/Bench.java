package mhc.engine.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import mhc.engine.Backend;
import mhc.engine.Config;
import mhc.engine.model.Ops;

import java.io.PrintStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;

/**
 * The cross-device benchmark behind {@code mhc bench}: run it with
 * {@code engine/target/mhc bench [--quick] [--ops REGEX] [--json FILE]}.
 *
 * <p>For every op of {@link BenchOps} it first validates each device against the plain kernel
 * ({@link OpCheck}), then times the ones that pass ({@link Timing}) and prints one line per
 * (op, device): median, min, coefficient of variation, GFLOP/s or GB/s, speed-up over the plain
 * single-threaded kernel, and the check. A device whose result is wrong is marked FAILED, with
 * the output, index and values that differ, and is not timed. Then whole training steps of the
 * config with residual and mhc connections ({@link StepBench}).
 */
public final class Bench {
    private final BenchSettings s;
    private final PrintStream out;
    private int failures;
    private int checked;
    /** By device: the ops it has no kernel of its own for (it inherits the plain one), in table order. */
    private final LinkedHashMap<String, List<String>> plainKernels = new LinkedHashMap<>();

    /** The report (the JSON of {@code --json}) and the number of failed validations. */
    public record Outcome(JsonObject report, int failures) {
    }

    private Bench(BenchSettings s, PrintStream out) {
        this.s = s;
        this.out = out;
    }

    public static Outcome run(BenchSettings settings, PrintStream out) {
        return new Bench(settings, out).run();
    }

    private Outcome run() {
        JsonObject report = new JsonObject();
        report.addProperty("date", Instant.now().toString());
        String commit = Machine.gitCommit();
        if (commit != null) {
            report.addProperty("git_commit", commit);
        }
        JsonObject machine = Machine.json();
        report.add("machine", machine);
        report.add("settings", settingsJson());
        out.println("mhc bench: " + Machine.summary());
        if (Machine.loadAverage() > 0.5) {
            out.println("(other processes share this machine: treat absolute numbers as noisy)");
        }
        if (s.quick()) {
            // 0.005 s of warm-up leaves the fast kernels interpreted or in C1: on this path a
            // 32 x 32 x 32 product then takes milliseconds, 50x the plain kernel's time
            out.println("(--quick: a smoke test of every op's check; the JIT has not compiled the fast kernels yet, "
                    + "so its times say nothing about speed)");
        }

        BenchTargets.Selection sel = BenchTargets.standard(s.threads());
        List<BenchTarget> targets = new ArrayList<>();
        for (BenchTarget t : sel.targets()) {
            if (t.name().equals(BenchTargets.REFERENCE) || s.targets() == null || s.targets().matcher(t.name()).find()) {
                targets.add(t);
            }
        }
        JsonArray tj = new JsonArray();
        for (BenchTarget t : targets) {
            JsonObject o = new JsonObject();
            o.addProperty("name", t.name());
            o.addProperty("backend", t.backend());
            o.addProperty("threads", t.threads());
            o.addProperty("description", t.description());
            o.addProperty("reference", t.name().equals(BenchTargets.REFERENCE));
            tj.add(o);
        }
        report.add("targets", tj);
        JsonArray sk = new JsonArray();
        for (BenchTargets.Skipped k : sel.skipped()) {
            JsonObject o = new JsonObject();
            o.addProperty("name", k.name());
            o.addProperty("reason", k.reason());
            sk.add(o);
            out.println("skipped " + k.name() + ": " + k.reason());
        }
        report.add("skipped_targets", sk);

        if (s.runOps()) {
            report.add("ops", runOps(targets));
            JsonObject v = new JsonObject();
            v.addProperty("checked", checked);
            v.addProperty("failed", failures);
            report.add("validation", v);
        }
        if (!s.stepBackends().isEmpty()) {
            report.add("step", runSteps());
        }
        double load = Machine.loadAverage();
        if (load >= 0) {
            machine.addProperty("load_average_end", load);
        }
        report.addProperty("failed", failures);
        return new Outcome(report, failures);
    }

    private JsonObject settingsJson() {
        JsonObject o = new JsonObject();
        o.addProperty("quick", s.quick());
        o.addProperty("warmup_s", s.warmup());
        o.addProperty("min_time_s", s.minTime());
        o.addProperty("reps", s.reps());
        o.addProperty("seed", s.seed());
        o.addProperty("threads", s.threads());
        if (s.ops() != null) {
            o.addProperty("ops_filter", s.ops().pattern());
        }
        if (s.targets() != null) {
            o.addProperty("targets_filter", s.targets().pattern());
        }
        o.add("config", JsonParser.parseString(s.config().toJson()));
        Shapes sh = Shapes.of(s.config());
        JsonObject shapes = new JsonObject();
        shapes.addProperty("B", sh.B());
        shapes.addProperty("T", sh.T());
        shapes.addProperty("C", sh.C());
        shapes.addProperty("H", sh.H());
        shapes.addProperty("n", sh.n());
        shapes.addProperty("F", sh.F());
        shapes.addProperty("V", sh.V());
        shapes.addProperty("N", sh.N());
        shapes.addProperty("E", sh.E());
        shapes.addProperty("K", sh.K());
        shapes.addProperty("S", sh.S());
        shapes.addProperty("expert_F", sh.Fe());
        shapes.addProperty("sinkhorn_iters", sh.iters());
        o.add("shapes", shapes);
        return o;
    }

    // ------------------------------------------------------------------ ops

    private JsonArray runOps(List<BenchTarget> targets) {
        Shapes sh = Shapes.of(s.config());
        List<OpCase> cases = new ArrayList<>();
        for (OpCase c : BenchOps.all(sh)) {
            if (s.ops() == null || s.ops().matcher(c.name()).find()) {
                cases.add(c);
            }
        }
        out.println();
        out.println("ops at " + sh.describe());
        out.printf(Locale.ROOT, "timing: %.2f s warmup, then >= %d runs and >= %.2f s per line; rate = work / median; "
                + "speed-up = %s median / median%n", s.warmup(), s.reps(), s.minTime(), BenchTargets.REFERENCE);
        out.println("check: each device's outputs against the plain kernel's before timing; ok <max|got-ref|/max|ref|>; "
                + "\"plain kernel\": the device has no kernel of its own for the op and runs the plain one, so its speed-up is noise");
        Table table = new Table(cases, targets);
        out.println();
        out.println(table.header());
        // one Ops per target, kept for the whole run (their scratch is reused between calls)
        List<Ops> ops = new ArrayList<>();
        for (BenchTarget t : targets) {
            ops.add(t.ops().get());
        }
        JsonArray arr = new JsonArray();
        OpCase.Group group = null;
        try {
            for (OpCase c : cases) {
                if (c.group() != group) {
                    group = c.group();
                    out.println("-- " + group.label);
                }
                arr.add(runOp(c, targets, ops, table));
            }
        } finally {
            for (Ops o : ops) {
                release(o);
            }
        }
        out.println();
        out.printf(Locale.ROOT, "validated %d (op, device) lines against the plain kernels: %s%n", checked,
                failures == 0 ? "all passed" : failures + " FAILED");
        plainKernels.forEach((device, names) -> out.printf(Locale.ROOT, "%s runs the plain kernel for %d of the %d ops: %s%n",
                device, names.size(), cases.size(), String.join(", ", names)));
        return arr;
    }

    /** Closes a backend's operations if they hold threads or device buffers ({@code close()}, AutoCloseable or not). */
    private static void release(Ops o) {
        try {
            if (o instanceof AutoCloseable ac) {
                ac.close();
            } else {
                o.getClass().getMethod("close").invoke(o);
            }
        } catch (NoSuchMethodException e) {
            // nothing to release
        } catch (Exception | LinkageError e) {
            // a backend that cannot release its threads or buffers does not spoil the report
        }
    }

    private JsonObject runOp(OpCase c, List<BenchTarget> targets, List<Ops> ops, Table table) {
        JsonObject o = new JsonObject();
        o.addProperty("op", c.name());
        o.addProperty("group", c.group().label);
        o.addProperty("shape", c.shape());
        o.addProperty("work", c.work());
        o.addProperty("work_unit", c.unit() == OpCase.Unit.FLOP ? "FLOP" : "bytes");
        o.addProperty("rate_unit", c.unit().rate);
        o.addProperty("formula", c.formula());
        JsonObject tol = new JsonObject();
        tol.addProperty("atol_of_max", c.tolerance().atolOfMax());
        tol.addProperty("rtol", c.tolerance().rtol());
        tol.addProperty("rule", c.tolerance().describe());
        o.add("tolerance", tol);
        JsonArray results = new JsonArray();
        o.add("results", results);

        OpCheck.Reference ref;
        double refMedian;
        try {
            ref = OpCheck.reference(c, ops.get(0), s.seed());
            OpCase.Instance inst = ref.instance();
            Ops plain = ops.get(0);
            Timing.Stats st = Timing.measure(() -> inst.run(plain), s.warmup(), s.minTime(), s.reps());
            refMedian = st.median();
            results.add(line(c, table, targets.get(0), "reference", "", Double.NaN, st, refMedian));
        } catch (RuntimeException | LinkageError | AssertionError e) {
            // the reference itself cannot run this op: nothing to compare with
            failures++;
            checked++;
            results.add(failed(c, table, targets.get(0), "the plain kernel threw " + e));
            return o;
        }
        for (int i = 1; i < targets.size(); i++) {
            BenchTarget t = targets.get(i);
            Ops to = ops.get(i);
            checked++;
            OpCheck.Result v;
            try {
                v = OpCheck.validate(c, ref, to, s.seed());
            } catch (RuntimeException | LinkageError | AssertionError e) {
                failures++;
                results.add(failed(c, table, t, "threw " + e));
                continue;
            }
            if (!v.ok()) {
                failures++;
                results.add(failed(c, table, t, v.failure()));
                continue;
            }
            OpCase.Instance inst = v.instance();
            Timing.Stats st;
            try {
                st = Timing.measure(() -> inst.run(to), s.warmup(), s.minTime(), s.reps());
            } catch (RuntimeException | LinkageError | AssertionError e) {
                failures++;
                results.add(failed(c, table, t, "threw while timed: " + e));
                continue;
            }
            boolean plainKernel = kernelClass(to.getClass(), c.method()) == kernelClass(ops.get(0).getClass(), c.method());
            if (plainKernel) {
                plainKernels.computeIfAbsent(t.name(), k -> new ArrayList<>()).add(c.name());
            }
            JsonObject r = line(c, table, t, "ok", plainKernel ? ", plain kernel" : "", v.relError(), st, refMedian);
            r.addProperty("plain_kernel", plainKernel);
            results.add(r);
        }
        return o;
    }

    /**
     * The most derived class, from {@code ops} up, that declares a method named {@code method}:
     * the class whose kernel a call runs (null if none does). Two devices whose classes give the
     * same answer run the same code for the op.
     */
    public static Class<?> kernelClass(Class<?> ops, String method) {
        for (Class<?> k = ops; k != null; k = k.getSuperclass()) {
            for (java.lang.reflect.Method m : k.getDeclaredMethods()) {
                if (m.getName().equals(method) && !m.isBridge() && !m.isSynthetic()) {
                    return k;
                }
            }
        }
        return null;
    }

    /** One timed line: {@code status} "reference" or "ok"; {@code note} follows it in the table's check column. */
    private JsonObject line(OpCase c, Table table, BenchTarget t, String status, String note, double relError,
                            Timing.Stats st, double refMedian) {
        double rate = c.work() / st.median() / 1e9;
        double speedup = refMedian / st.median();
        out.println(table.row(c, t.name(), st, rate, speedup,
                (status.equals("ok") ? String.format(Locale.ROOT, "ok %.1e", relError) : status) + note));
        JsonObject r = new JsonObject();
        r.addProperty("target", t.name());
        r.addProperty("status", status);
        if (!Double.isNaN(relError)) {
            r.addProperty("rel_error", relError);
        }
        r.addProperty("median_s", st.median());
        r.addProperty("min_s", st.min());
        r.addProperty("mean_s", st.mean());
        r.addProperty("cv", st.cv());
        r.addProperty("runs", st.runs());
        r.addProperty("rate", rate);
        r.addProperty("speedup", speedup);
        return r;
    }

    private JsonObject failed(OpCase c, Table table, BenchTarget t, String why) {
        out.println(table.failedRow(c, t.name()));
        out.println("    FAILED " + c.name() + " on " + t.name() + ": " + why);
        JsonObject r = new JsonObject();
        r.addProperty("target", t.name());
        r.addProperty("status", "FAILED");
        r.addProperty("failure", why);
        return r;
    }

    // ------------------------------------------------------------------ training steps

    private JsonObject runSteps() {
        Config cfg = s.config();
        JsonObject o = new JsonObject();
        o.add("config", JsonParser.parseString(cfg.toJson()));
        o.addProperty("tokens_per_step", cfg.batchSize() * cfg.seqLen());
        o.addProperty("warmup_steps", s.stepWarmup());
        o.addProperty("timed_steps", s.stepSteps());
        o.addProperty("interleaved", true);
        JsonArray runs = new JsonArray();
        o.add("runs", runs);
        out.println();
        out.printf(Locale.ROOT, "training step (LanguageModel.trainStep: forward, backward, AdamW) of %s, up to %d host threads (one on a device); "
                        + "%d untimed + %d timed steps per connection, residual and mhc interleaved on the same batches%n",
                cfg.with("connection", "mhc").summary().replaceFirst("^mhc/", ""), s.threads(), s.stepWarmup(), s.stepSteps());
        out.printf(Locale.ROOT, "%-10s %-10s %7s %10s %10s %6s %12s %10s%n", "backend", "connection", "threads", "median", "min", "CV",
                "tokens/s", "CPU time");
        for (String name : s.stepBackends()) {
            Backend b = Backend.select(name);
            StepBench.Result r = StepBench.run(cfg, b, s.threads(), s.stepWarmup(), s.stepSteps(), s.seed());
            JsonObject rj = new JsonObject();
            rj.addProperty("backend", r.backend());
            rj.addProperty("description", r.description());
            rj.addProperty("threads", r.threads());
            for (StepBench.ConnectionResult c : List.of(r.residual(), r.mhc())) {
                out.printf(Locale.ROOT, "%-10s %-10s %7d %10s %10s %5.1f%% %12.0f %10s%n", r.backend(), c.connection(), r.threads(),
                        Table.time(c.stats().median()), Table.time(c.stats().min()), 100 * c.stats().cv(), c.tokensPerSecond(),
                        Table.time(c.cpu().median()));
                JsonObject cj = new JsonObject();
                cj.addProperty("summary", c.summary());
                cj.addProperty("median_s", c.stats().median());
                cj.addProperty("min_s", c.stats().min());
                cj.addProperty("mean_s", c.stats().mean());
                cj.addProperty("cv", c.stats().cv());
                JsonArray times = new JsonArray();
                for (double x : c.stats().seconds()) {
                    times.add(x);
                }
                cj.add("times_s", times);
                JsonArray cpuTimes = new JsonArray();
                for (double x : c.cpu().seconds()) {
                    cpuTimes.add(x);
                }
                cj.add("cpu_times_s", cpuTimes);
                cj.addProperty("cpu_median_s", c.cpu().median());
                cj.addProperty("tokens_per_s", c.tokensPerSecond());
                cj.addProperty("last_loss", c.lastLoss());
                rj.add(c.connection(), cj);
            }
            rj.addProperty("mhc_overhead", r.overhead());
            rj.addProperty("mhc_overhead_paired", r.pairedOverhead());
            rj.addProperty("mhc_overhead_cpu", r.cpuOverhead());
            rj.addProperty("mhc_overhead_cpu_paired", r.cpuPairedOverhead());
            StepBench.Interval pi = r.pairedInterval();
            JsonObject interval = new JsonObject();
            interval.addProperty("lo", pi.lo());
            interval.addProperty("hi", pi.hi());
            interval.addProperty("confidence", pi.confidence());
            rj.add("mhc_overhead_paired_interval", interval);
            if (Double.isFinite(r.steal())) {
                rj.addProperty("steal", r.steal());
            }
            out.printf(Locale.ROOT, "%-10s mhc overhead over residual: %+.1f%% (ratio of medians), %+.1f%% (median of paired steps, "
                            + "%.0f%% interval %+.1f%% .. %+.1f%%); in CPU time %+.1f%% / %+.1f%%%n",
                    r.backend(), 100 * r.overhead(), 100 * r.pairedOverhead(), 100 * pi.confidence(), 100 * pi.lo(), 100 * pi.hi(),
                    100 * r.cpuOverhead(), 100 * r.cpuPairedOverhead());
            if (Double.isFinite(r.steal()) && r.steal() >= 0.02) {
                out.printf(Locale.ROOT, "%-10s the hypervisor took %.0f%% of this machine's CPU time during the steps (steal): "
                        + "wall-clock times are unsteady, the CPU-time figures less so%n", r.backend(), 100 * r.steal());
            }
            runs.add(rj);
        }
        return o;
    }
}
