package mhc.tests;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import mhc.engine.Backend;
import mhc.engine.bench.BenchTarget;
import mhc.engine.bench.BenchTargets;
import mhc.engine.bench.StepBench;
import mhc.engine.model.Ops;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code mhc bench --quick}: every line validated and timed, the JSON report, a broken device caught, bad input. */
class BenchCliTest {
    @TempDir
    static Path dir;
    static Cli.Result result;
    static JsonObject report;
    static final String COPY = "jvm-copy/1 thread";

    @BeforeAll
    static void quickBench() throws IOException {
        // a second device running the plain kernels: every op is validated at least once here,
        // even where the Vector API (and so the fast device) is absent
        BenchTargets.register(new BenchTarget(COPY, "jvm", 1, "plain kernels again, as a device under test", Ops::new));
        try {
            Path json = dir.resolve("bench.json");
            result = Cli.run("bench", "--quick", "--json", json.toString());
            assertEquals(0, result.code(), result.out() + result.err());
            report = JsonParser.parseString(Files.readString(json)).getAsJsonObject();
        } finally {
            BenchTargets.unregister(COPY);
        }
    }

    @Test
    void everyLineIsValidatedAndTimed() {
        assertFalse(result.out().contains("FAILED"), result.out());
        assertTrue(result.out().contains("all passed"), result.out());
        JsonArray ops = report.getAsJsonArray("ops");
        assertTrue(ops.size() >= 30, "every op of the model: " + ops.size());
        int checked = 0;
        java.util.Map<String, Integer> plainLines = new java.util.HashMap<>();
        for (JsonElement e : ops) {
            JsonObject op = e.getAsJsonObject();
            String name = op.get("op").getAsString();
            assertTrue(Set.of("forward", "backward", "optimizer").contains(op.get("group").getAsString()), name);
            assertTrue(op.get("work").getAsDouble() > 0, name);
            assertTrue(Set.of("GFLOP/s", "GB/s").contains(op.get("rate_unit").getAsString()), name);
            assertFalse(op.get("formula").getAsString().isEmpty(), name);
            JsonArray results = op.getAsJsonArray("results");
            assertEquals(BenchTargets.REFERENCE, results.get(0).getAsJsonObject().get("target").getAsString(), name);
            assertEquals("reference", results.get(0).getAsJsonObject().get("status").getAsString(), name);
            List<String> devices = new ArrayList<>();
            for (JsonElement re : results) {
                JsonObject r = re.getAsJsonObject();
                devices.add(r.get("target").getAsString());
                String status = r.get("status").getAsString();
                assertTrue(status.equals("reference") || status.equals("ok"), name + " on " + r.get("target") + ": " + r);
                if (status.equals("ok")) {
                    checked++;
                    assertTrue(r.get("rel_error").getAsDouble() <= 1e-3, name + ": " + r);
                    String device = r.get("target").getAsString();
                    boolean plain = r.get("plain_kernel").getAsBoolean();
                    if (device.equals(COPY)) {
                        assertTrue(plain, name + ": the copy device is the plain Ops, so it runs the plain kernel");
                    } else if (name.startsWith("matmul")) {
                        assertFalse(plain, name + " on " + device + ": the fast path has its own GEMM");
                    }
                    // the table line says so too; the summary after the table counts the lines per device
                    assertEquals(plain, result.out().lines().anyMatch(l -> l.startsWith(name + " ") && l.contains(device)
                            && l.endsWith(", plain kernel")), name + " on " + device);
                    if (plain) {
                        plainLines.merge(device, 1, Integer::sum);
                    }
                }
                assertTrue(r.get("median_s").getAsDouble() > 0 && r.get("min_s").getAsDouble() <= r.get("median_s").getAsDouble(), name);
                assertTrue(r.get("runs").getAsInt() >= 2, name);
                assertTrue(r.get("cv").getAsDouble() >= 0, name);
                assertTrue(r.get("rate").getAsDouble() > 0 && r.get("speedup").getAsDouble() > 0, name);
            }
            assertTrue(devices.contains(COPY), name + " ran on the registered device");
            if (Backend.vectorApiPresent()) {
                assertTrue(devices.stream().anyMatch(d -> d.startsWith("fast/")), name + " ran on the fast path");
            }
            // one table line per (op, device)
            for (String d : devices) {
                assertTrue(result.out().lines().anyMatch(l -> l.startsWith(name + " ") && l.contains(d)), name + " on " + d);
            }
        }
        assertEquals(ops.size(), plainLines.get(COPY), "the copy device runs every op's plain kernel");
        plainLines.forEach((device, count) -> assertTrue(result.out().contains(
                device + " runs the plain kernel for " + count + " of the " + ops.size() + " ops: "), device));
        assertEquals(checked, report.getAsJsonObject("validation").get("checked").getAsInt());
        assertEquals(0, report.getAsJsonObject("validation").get("failed").getAsInt());
        assertEquals(0, report.get("failed").getAsInt());
    }

    @Test
    void jsonDescribesTheMachineAndSettings() {
        JsonObject m = report.getAsJsonObject("machine");
        assertEquals(Runtime.getRuntime().availableProcessors(), m.get("cores").getAsInt());
        assertEquals(Runtime.version().toString(), m.get("java_version").getAsString());
        assertEquals(Backend.vectorApiPresent(), m.get("vector_api").getAsBoolean());
        assertEquals(Backend.vectorApiPresent(), m.has("vector_bits"));
        assertTrue(report.get("date").getAsString().matches("\\d{4}-\\d\\d-\\d\\dT.*Z"), report.get("date").toString());
        if (report.has("git_commit")) {
            assertTrue(report.get("git_commit").getAsString().matches("[0-9a-f]{40}"));
        }
        JsonObject s = report.getAsJsonObject("settings");
        assertTrue(s.get("quick").getAsBoolean());
        assertEquals(32, s.getAsJsonObject("shapes").get("C").getAsInt());
        assertEquals(32, s.getAsJsonObject("config").get("width").getAsInt());
        JsonArray targets = report.getAsJsonArray("targets");
        assertEquals(BenchTargets.REFERENCE, targets.get(0).getAsJsonObject().get("name").getAsString());
        assertTrue(targets.get(0).getAsJsonObject().get("reference").getAsBoolean());
        if (!Backend.vectorApiPresent()) {
            assertEquals(1, report.getAsJsonArray("skipped_targets").size(), "the fast device is listed as skipped, with why");
            assertTrue(report.getAsJsonArray("skipped_targets").get(0).getAsJsonObject().get("reason").getAsString()
                    .contains("jdk.incubator.vector"));
        }
    }

    @Test
    void trainingStepOfBothConnections() {
        JsonObject step = report.getAsJsonObject("step");
        assertEquals(2 * 16, step.get("tokens_per_step").getAsInt());
        assertEquals(1, step.get("warmup_steps").getAsInt(), "--quick warms up with 1 step");
        assertEquals(2, step.get("timed_steps").getAsInt(), "--quick times 2 steps");
        JsonObject run = step.getAsJsonArray("runs").get(0).getAsJsonObject();
        for (String c : List.of("residual", "mhc")) {
            JsonObject r = run.getAsJsonObject(c);
            assertEquals(2, r.getAsJsonArray("times_s").size(), c + ": --quick times 2 steps");
            assertTrue(r.get("tokens_per_s").getAsDouble() > 0, c);
            assertTrue(Double.isFinite(r.get("last_loss").getAsDouble()), c);
            assertTrue(r.get("summary").getAsString().startsWith(c + "/"), r.get("summary").getAsString());
        }
        double overhead = run.get("mhc_overhead").getAsDouble();
        double ratio = run.getAsJsonObject("mhc").get("median_s").getAsDouble() / run.getAsJsonObject("residual").get("median_s").getAsDouble();
        assertEquals(ratio - 1, overhead, 1e-9, "the overhead is the ratio of the medians minus one");
        double paired = run.get("mhc_overhead_paired").getAsDouble();
        assertTrue(Double.isFinite(paired));
        // two pairs: the interval is their two ratios, which hold the median with probability 1/2
        JsonObject interval = run.getAsJsonObject("mhc_overhead_paired_interval");
        assertTrue(interval.get("lo").getAsDouble() <= paired && paired <= interval.get("hi").getAsDouble(), interval.toString());
        assertEquals(0.5, interval.get("confidence").getAsDouble(), 1e-12);
        double[] ratios = new double[2];
        for (int i = 0; i < 2; i++) {
            ratios[i] = run.getAsJsonObject("mhc").getAsJsonArray("times_s").get(i).getAsDouble()
                    / run.getAsJsonObject("residual").getAsJsonArray("times_s").get(i).getAsDouble() - 1;
        }
        assertEquals(Math.min(ratios[0], ratios[1]), interval.get("lo").getAsDouble(), 1e-12);
        assertEquals(Math.max(ratios[0], ratios[1]), interval.get("hi").getAsDouble(), 1e-12);
        // the same from CPU time per step (steadier where a hypervisor steals time)
        for (String c : List.of("residual", "mhc")) {
            JsonObject r = run.getAsJsonObject(c);
            assertEquals(2, r.getAsJsonArray("cpu_times_s").size(), c);
            assertTrue(r.get("cpu_median_s").getAsDouble() > 0, c + ": a step takes CPU time");
        }
        double cpuRatio = run.getAsJsonObject("mhc").get("cpu_median_s").getAsDouble()
                / run.getAsJsonObject("residual").get("cpu_median_s").getAsDouble();
        assertEquals(cpuRatio - 1, run.get("mhc_overhead_cpu").getAsDouble(), 1e-9, "the CPU-time overhead");
        assertTrue(Double.isFinite(run.get("mhc_overhead_cpu_paired").getAsDouble()));
        assertTrue(result.out().contains("mhc overhead over residual"), result.out());
    }

    @Test
    void medianIntervalTakesTheBinomialOrderStatistics() {
        // n -> (k, confidence): the k-th smallest and k-th largest of n, 1 - 2 P(Bin(n, 1/2) < k)
        record Case(int n, int k, double confidence) {
        }
        for (Case c : List.of(new Case(5, 1, 1 - 2.0 / 32), new Case(8, 1, 1 - 2.0 / 256), new Case(10, 2, 1 - 2 * 11.0 / 1024),
                new Case(20, 6, 1 - 2 * 21700.0 / (1 << 20)))) {
            double[] xs = new double[c.n()];
            for (int i = 0; i < c.n(); i++) {
                xs[i] = (i * 7 % c.n()) + 1; // 1 .. n, shuffled
            }
            StepBench.Interval iv = StepBench.medianInterval(xs);
            assertEquals(c.k(), iv.lo(), 0.0, "n = " + c.n());
            assertEquals(c.n() + 1 - c.k(), iv.hi(), 0.0, "n = " + c.n());
            assertEquals(c.confidence(), iv.confidence(), 1e-12, "n = " + c.n());
        }
    }

    @Test
    void medianIntervalHoldsTheMedianAsOftenAsItSays() {
        // 20 000 samples of 20 uniform values (median 0.5): the 95.86% interval must hold it
        // 95.86% of the time, within 4 standard errors (0.0056)
        java.util.SplittableRandom r = new java.util.SplittableRandom(7);
        int trials = 20_000, held = 0;
        double confidence = 0;
        for (int t = 0; t < trials; t++) {
            double[] xs = new double[20];
            for (int i = 0; i < xs.length; i++) {
                xs[i] = r.nextDouble();
            }
            StepBench.Interval iv = StepBench.medianInterval(xs);
            confidence = iv.confidence();
            if (iv.lo() <= 0.5 && 0.5 <= iv.hi()) {
                held++;
            }
        }
        double se = Math.sqrt(confidence * (1 - confidence) / trials);
        assertEquals(confidence, (double) held / trials, 4 * se);
    }

    /** Adds 1e-2 to one entry of every forward matmul. */
    static final class Broken extends Ops {
        @Override
        public void matmulForward(float[] out, float[] inp, float[] w, int wOff, int N, int IN, int OUT) {
            super.matmulForward(out, inp, w, wOff, N, IN, OUT);
            out[3] += 1e-2f;
        }
    }

    @Test
    void aBrokenDeviceIsReportedAndFailsTheCommand() throws IOException {
        String name = "broken/1 thread";
        BenchTargets.register(new BenchTarget(name, "jvm", 1, "adds 1e-2 to one output of matmulForward", Broken::new));
        Cli.Result r;
        Path json = dir.resolve("broken.json");
        try {
            r = Cli.run("bench", "--quick", "--ops", "^(matmulForward|rmsnormForward)", "--targets", "broken",
                    "--skip-step", "--json", json.toString());
        } finally {
            BenchTargets.unregister(name);
        }
        assertEquals(1, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("FAILED"), r.err());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("matmulForward C->C ") && l.contains(name) && l.endsWith("FAILED")), r.out());
        assertTrue(r.out().contains("FAILED matmulForward C->C on " + name + ": output 'out'"), r.out());
        assertTrue(r.out().contains("worst at index 3"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("rmsnormForward ") && l.contains(name) && l.contains(" ok ")), r.out());
        JsonObject rep = JsonParser.parseString(Files.readString(json)).getAsJsonObject();
        assertEquals(8, rep.get("failed").getAsInt(), "the eight forward matmul shapes of the --ops filter");
        assertFalse(rep.has("step"));
    }

    @Test
    void badInputExitsWithTwo() {
        Cli.Result r = Cli.run("bench", "--quick", "--connection", "mhc");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--connection"), r.err());
        r = Cli.run("bench", "--quick", "--ops", "(");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--ops"), r.err());
        r = Cli.run("bench", "--quick", "--reps", "0");
        assertEquals(2, r.code(), r.err());
        r = Cli.run("bench", "--quick", "--step-backends", "nonesuch");
        assertEquals(2, r.code(), r.err());
    }
}
