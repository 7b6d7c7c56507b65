package mhc.tests;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import mhc.engine.Config;
import mhc.engine.data.Corpus;
import mhc.engine.study.Study;
import mhc.engine.study.StudyReport;
import mhc.engine.study.StudyResult;
import mhc.engine.study.StudySettings;
import mhc.engine.train.TrainSettings;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@code mhc study}: a tiny study end to end (JSON, report, PNG plots, Sinkhorn sweep) and its answers to bad input. */
class StudyCliTest {
    static final List<Integer> SWEEP = List.of(1, 3, 5, 10, 20, 40);
    static final List<String> PLOTS = List.of("loss.png", "loss_gap.png", "grad_norm.png", "gain_by_sublayer.png",
            "max_gain.png", "sinkhorn_sweep.png");

    @TempDir
    static Path dir;
    static Path text;
    static Path out;
    static Cli.Result result;
    static JsonObject study;

    static String[] tiny(String... more) {
        List<String> a = new java.util.ArrayList<>(List.of("study", "--width", "16", "--blocks", "2", "--heads", "2",
                "--seq-len", "16", "--batch-size", "2", "--ffn-hidden", "24", "--steps", "6", "--warmup", "0", "--lr", "0.02",
                "--gain-every", "2", "--eval-every", "3", "--eval-batches", "2", "--data", text.toString()));
        a.addAll(List.of(more));
        return a.toArray(new String[0]);
    }

    @BeforeAll
    static void tinyStudy() throws IOException {
        text = dir.resolve("text.txt");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 300; i++) {
            sb.append("Line ").append(i).append(": the council adopted the report on item ").append(i * 7 % 13).append(".\n");
        }
        Files.writeString(text, sb);
        out = dir.resolve("study");
        result = Cli.run(tiny("--connections", "residual,hc,mhc", "--sinkhorn-iters", "40,1,3,5,10,20", "--out", out.toString()));
        assertEquals(0, result.code(), result.err());
        study = JsonParser.parseString(Files.readString(out.resolve("study.json"))).getAsJsonObject();
    }

    @Test
    void jsonHasEveryConnectionAndItsNumbers() {
        JsonObject conns = study.getAsJsonObject("connections");
        assertEquals(List.of("residual", "hc", "mhc"), List.copyOf(conns.keySet()));
        for (String c : conns.keySet()) {
            JsonObject r = conns.getAsJsonObject(c);
            for (String key : List.of("final_loss", "final_val_loss", "max_composite_forward", "max_composite_backward")) {
                assertTrue(r.has(key) && r.get(key).isJsonPrimitive(), c + " has a number under " + key);
                assertTrue(Double.isFinite(r.get(key).getAsDouble()), c + "." + key);
            }
            JsonObject curves = r.getAsJsonObject("curves");
            assertEquals(6, curves.getAsJsonArray("loss").size(), c + ": a loss per step");
            assertEquals(6, curves.getAsJsonArray("grad_norm").size(), c + ": a gradient norm per step");
            // gains at steps 1, 2, 4, 6; validation at 3 and 6
            assertEquals(List.of(1, 2, 4, 6), steps(curves.getAsJsonArray("gains")), c);
            assertEquals(List.of(3, 6), steps(curves.getAsJsonArray("val")), c);
            JsonObject g = curves.getAsJsonArray("gains").get(0).getAsJsonObject();
            assertEquals(4, g.getAsJsonArray("composite_backward").size(), c + ": one gain per sublayer");
        }
        assertTrue(study.get("hc_over_mhc_max_composite_forward").isJsonPrimitive());
    }

    @Test
    void sameDataAndInitGiveTheSameFirstLoss() {
        // Identical init seed and batches: at step 1 hc and mhc start as the residual model (identity mixing,
        // one-hot pre), so the first losses agree closely (the hc/mhc maps differ only by tiny init terms).
        JsonObject conns = study.getAsJsonObject("connections");
        double r = firstLoss(conns, "residual"), h = firstLoss(conns, "hc"), m = firstLoss(conns, "mhc");
        assertEquals(r, h, 0.05);
        assertEquals(r, m, 0.05);
    }

    @Test
    void residualGainsAreExactlyOneAndMhcForwardGainIsOne() {
        JsonObject conns = study.getAsJsonObject("connections");
        for (JsonElement e : conns.getAsJsonObject("residual").getAsJsonObject("curves").getAsJsonArray("gains")) {
            JsonObject g = e.getAsJsonObject();
            for (String k : List.of("forward", "backward", "composite_forward", "composite_backward")) {
                for (JsonElement v : g.getAsJsonArray(k)) {
                    assertEquals(1.0, v.getAsDouble(), 0.0, "residual " + k);
                }
            }
        }
        assertEquals(1.0, conns.getAsJsonObject("residual").get("max_composite_forward").getAsDouble(), 0.0);
        assertEquals(1.0, conns.getAsJsonObject("residual").get("max_composite_backward").getAsDouble(), 0.0);
        assertEquals(1.0, conns.getAsJsonObject("mhc").get("max_composite_forward").getAsDouble(), 1e-5);
    }

    /**
     * Skips the plot checks where this JVM cannot draw (no fonts, or a runtime without
     * java.desktop); {@code withoutPlotsTheJsonAndReportAreWrittenAndTheReportSaysWhy} checks what
     * such a machine gets.
     */
    static void assumePlots() {
        String why = StudyReport.plotsUnavailable();
        assumeTrue(why == null, () -> "no plots on this machine: " + why);
    }

    @Test
    void reportAndPlots() throws IOException {
        String report = Files.readString(out.resolve("report.md"));
        assertTrue(report.contains("| connection |") && report.contains("| residual |") && report.contains("| mhc |"), report);
        assertTrue(report.contains("HC / mHC"), report);
        assertTrue(report.contains("| sinkhorn_iters |"), report);
        assertTrue(result.out().contains("study done"), result.out());
        assumePlots();
        for (String png : PLOTS) {
            Path p = out.resolve(png);
            assertTrue(Files.exists(p), png);
            byte[] b = Files.readAllBytes(p);
            assertArrayEquals(new byte[]{(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, java.util.Arrays.copyOf(b, 8), png + " is a PNG");
            assertTrue(b.length > 5_000, png + " holds a drawn chart (" + b.length + " bytes)");
            assertTrue(report.contains("(" + png + ")"), "the report links " + png);
        }
    }

    @Test
    void sweepHasOneRowPerCountAndTheColumnErrorFalls() {
        JsonObject sw = study.getAsJsonObject("sinkhorn_sweep");
        assertEquals("evaluate", sw.get("mode").getAsString());
        JsonArray rows = sw.getAsJsonArray("rows");
        assertEquals(SWEEP.size(), rows.size());
        double prev = Double.POSITIVE_INFINITY;
        for (int i = 0; i < rows.size(); i++) {
            JsonObject r = rows.get(i).getAsJsonObject();
            assertEquals(SWEEP.get(i), r.get("sinkhorn_iters").getAsInt(), "ascending counts");
            double err = r.get("column_error").getAsDouble();
            assertTrue(err <= prev + 1e-7, "column error " + err + " at " + SWEEP.get(i) + " iterations, after " + prev);
            assertTrue(r.get("row_error").getAsDouble() < 1e-5, "rows are exact");
            assertTrue(r.get("max_composite_backward").getAsDouble() >= 1 - 1e-5);
            prev = err;
        }
        double first = rows.get(0).getAsJsonObject().get("column_error").getAsDouble();
        double last = rows.get(rows.size() - 1).getAsJsonObject().get("column_error").getAsDouble();
        assertTrue(last < first, "more iterations, smaller column error: " + first + " -> " + last);
        String report;
        try {
            report = Files.readString(out.resolve("report.md"));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        for (int k : SWEEP) {
            assertTrue(report.contains("\n| " + k + " | "), "a sweep row for " + k);
        }
    }

    @Test
    void twoConnectionsWithoutSweep() {
        assumePlots();
        Path o = dir.resolve("two");
        Cli.Result r = Cli.run(tiny("--connections", "hc,mhc", "--out", o.toString()));
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.exists(o.resolve("max_gain.png")));
        assertFalse(Files.exists(o.resolve("sinkhorn_sweep.png")));
    }

    @Test
    void badInput() throws IOException {
        assertBad(Cli.run(tiny("--connections", "residual,foo", "--out", dir.resolve("b1").toString())), "foo");
        assertBad(Cli.run(tiny("--connections", "", "--out", dir.resolve("b2").toString())), "--connections");
        assertBad(Cli.run(tiny("--connections", "hc,hc", "--out", dir.resolve("b3").toString())), "twice");
        assertBad(Cli.run(tiny("--sinkhorn-iters", "1,x", "--out", dir.resolve("b4").toString())), "'x'");
        assertBad(Cli.run(tiny("--sinkhorn-iters", "3,-1", "--out", dir.resolve("b5").toString())), "negative");
        assertBad(Cli.run(tiny("--connections", "residual,hc", "--sinkhorn-iters", "1,3", "--out", dir.resolve("b6").toString())), "mhc");
        assertBad(Cli.run(tiny("--connection", "hc", "--out", dir.resolve("b7").toString())), "--connections");
        Path file = dir.resolve("a-file");
        Files.writeString(file, "x");
        assertBad(Cli.run(tiny("--out", file.toString())), "a-file");
        assertBad(Cli.run(tiny("--out", file.resolve("sub").toString())), "--out");
        assertBad(Cli.run(tiny("--steps", "0", "--out", dir.resolve("b8").toString())), "--steps");
    }

    @Test
    void withoutPlotsTheJsonAndReportAreWrittenAndTheReportSaysWhy() throws IOException {
        // What a machine without fonts gets (StudyReport.plotsUnavailable gives the reason there;
        // checked by hand with the font directories hidden): no PNG, no partial file, a report
        // that says why instead of linking plots that do not exist.
        Config base = Config.preset("tiny").with("width", 16).with("blocks", 1).with("heads", 2).with("seq_len", 16)
                .with("batch_size", 2).with("ffn_hidden", 24);
        StudySettings settings = new StudySettings(base, List.of("residual", "mhc"), TrainSettings.defaults().withSteps(3),
                1, 3, 1, List.of(), false, 1);
        StudyResult result = Study.run(settings, Corpus.load(text), new Study.Listener() {
        });
        Path where = dir.resolve("no-plots");
        StudyReport.prepare(where);
        String reason = "the JVM finds no fonts (as on a minimal server)";
        StudyReport.Written w = StudyReport.write(result, where, "mhc study ...", reason);
        assertEquals(List.of("study.json", "report.md"), w.files());
        assertEquals(reason, w.plotsSkipped());
        try (var files = Files.list(where)) {
            assertEquals(List.of("report.md", "study.json"), files.map(f -> f.getFileName().toString()).sorted().toList());
        }
        String report = Files.readString(where.resolve("report.md"));
        assertTrue(report.contains("Not drawn: " + reason + "."), report);
        assertFalse(report.contains(".png"), report);
        assertTrue(report.contains("| mhc |"), "the results table is still there: " + report);
    }

    static void assertBad(Cli.Result r, String says) {
        assertEquals(2, r.code(), "exit code; stderr: " + r.err());
        String all = r.err().strip();
        assertFalse(all.contains("Exception") || all.contains("\tat "), "no stack trace: " + all);
        String err = all.substring(all.lastIndexOf('\n') + 1);
        assertTrue(err.startsWith("mhc study: "), "one line starting with 'mhc study:': " + all);
        assertTrue(err.contains(says), "says '" + says + "': " + err);
    }

    private static double firstLoss(JsonObject conns, String c) {
        return conns.getAsJsonObject(c).getAsJsonObject("curves").getAsJsonArray("loss").get(0).getAsDouble();
    }

    private static List<Integer> steps(JsonArray a) {
        List<Integer> s = new java.util.ArrayList<>();
        for (JsonElement e : a) {
            s.add(e.getAsJsonObject().get("step").getAsInt());
        }
        return s;
    }
}
