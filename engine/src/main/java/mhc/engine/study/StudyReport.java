package mhc.engine.study;

import mhc.engine.InputException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static mhc.engine.study.StudyResult.f4;
import static mhc.engine.study.StudyResult.gain;
import static mhc.engine.study.StudyResult.sci;
import static mhc.engine.study.StudyResult.signed4;

/** Writes a study's output directory: {@code study.json}, {@code report.md} and the PNG plots. */
public final class StudyReport {
    public static final String JSON = "study.json";
    public static final String REPORT = "report.md";

    private StudyReport() {
    }

    /**
     * Creates {@code dir} if needed and checks that it can be written, before any training starts,
     * so a long study does not fail at its end.
     */
    public static void prepare(Path dir) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new InputException(dir + ": exists and is not a directory; choose another --out");
        }
        try {
            Files.createDirectories(dir);
        } catch (java.nio.file.FileAlreadyExistsException e) {
            throw new InputException(dir + ": cannot create the output directory (" + e.getFile() + " exists and is not a directory); choose another --out");
        } catch (java.nio.file.AccessDeniedException e) {
            throw new InputException(dir + ": cannot create the output directory (permission denied on " + e.getFile() + "); choose another --out");
        } catch (IOException e) {
            throw new InputException(dir + ": cannot create the output directory (" + e.getMessage() + "); choose another --out");
        }
        Path probe = dir.resolve(".mhc-study-write-test");
        try {
            Files.writeString(probe, "");
            Files.delete(probe);
        } catch (IOException e) {
            throw new InputException(dir + ": the output directory is not writable; choose another --out");
        }
    }

    /**
     * Why the plots cannot be drawn on this machine (no fonts, no AWT in the Java runtime), or
     * null when they can. Asked before a study trains, so that the user hears it at the start.
     */
    public static String plotsUnavailable() {
        try {
            return StudyPlots.probe();
        } catch (LinkageError e) { // StudyPlots itself did not load: no java.desktop module
            return "this Java runtime has no AWT (" + e + ")";
        }
    }

    /** A one-line reason for a failure to draw the plots, with what to do where the cause is known. */
    static String drawingFailure(Throwable e) {
        String msg = String.valueOf(e.getMessage());
        if (msg.toLowerCase(Locale.ROOT).contains("font")) {
            return "the JVM finds no fonts (" + msg + "); install fontconfig and a font (Debian: fontconfig fonts-dejavu-core)";
        }
        return "the JVM cannot draw charts here (" + e + ")";
    }

    /** What {@link #write} wrote; {@code plotsSkipped}: why there are no plots, or null. */
    public record Written(List<String> files, String plotsSkipped) {
    }

    /**
     * Writes everything into {@code dir}; {@code command} is the command line shown in the
     * report. With {@code plotsSkipped} (a reason, from {@link #plotsUnavailable}), or when
     * drawing fails, the JSON and the report are written without plots and the report says why.
     */
    public static Written write(StudyResult r, Path dir, String command, String plotsSkipped) {
        List<String> files = new ArrayList<>();
        writeAtomically(dir.resolve(JSON), r.toJsonString());
        files.add(JSON);
        List<String> plots = List.of();
        if (plotsSkipped == null) {
            try {
                plots = StudyPlots.write(r, dir);
            } catch (UncheckedIOException e) {
                throw e; // a file could not be written: not a drawing problem
            } catch (RuntimeException | LinkageError e) {
                plotsSkipped = drawingFailure(e);
            }
        }
        writeAtomically(dir.resolve(REPORT), markdown(r, command, plotsSkipped));
        files.add(REPORT);
        files.addAll(plots);
        return new Written(files, plotsSkipped);
    }

    private static void writeAtomically(Path file, String text) {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write (" + e.getMessage() + ")", e);
        }
    }

    /** The results table (one row per connection), as in the report. */
    public static String resultsTable(StudyResult r) {
        ConnectionRun base = r.baseline();
        StringBuilder sb = new StringBuilder();
        sb.append("| connection | params | final train loss | final val loss | val gap vs ").append(base.name())
                .append(" | max composite fwd gain | max composite bwd gain | at last step fwd / bwd | time |\n");
        sb.append("|---|---|---|---|---|---|---|---|---|\n");
        for (ConnectionRun run : r.runs()) {
            ConnectionRun.GainPoint last = run.lastGains();
            sb.append("| ").append(run.name()).append(run.diverged() != null ? " (diverged at step " + (run.steps() + 1) + ")" : "")
                    .append(" | ").append(String.format(Locale.ROOT, "%.2fM", run.paramCount() / 1e6))
                    .append(" | ").append(f4(run.finalLoss()))
                    .append(" | ").append(f4(run.finalValLoss()))
                    .append(" | ").append(run == base ? "0" : signed4(run.finalValLoss() - base.finalValLoss()))
                    .append(" | ").append(gain(run.maxCompositeForward()))
                    .append(" | ").append(gain(run.maxCompositeBackward()))
                    .append(" | ").append(last == null ? "n/a" : gain(last.gains().maxCompositeForward()) + " / " + gain(last.gains().maxCompositeBackward()))
                    .append(" | ").append(minutes(run.wallSeconds()))
                    .append(" |\n");
        }
        return sb.toString();
    }

    /** The Sinkhorn sweep table, or an empty string without a sweep. */
    public static String sweepTable(StudyResult r) {
        if (r.sweep().isEmpty()) {
            return "";
        }
        boolean trained = r.settings().sweepTrain();
        StringBuilder sb = new StringBuilder();
        sb.append("| sinkhorn_iters | column-sum error | row-sum error | max backward gain | max composite backward gain | max composite forward gain | batch loss |")
                .append(trained ? " val loss |" : "").append('\n');
        sb.append("|---|---|---|---|---|---|---|").append(trained ? "---|" : "").append('\n');
        for (SinkhornSweep.Row row : r.sweep()) {
            sb.append("| ").append(row.iters())
                    .append(" | ").append(sci(row.columnError()))
                    .append(" | ").append(sci(row.rowError()))
                    .append(" | ").append(gain(row.maxBackward()))
                    .append(" | ").append(gain(row.maxCompositeBackward()))
                    .append(" | ").append(gain(row.maxCompositeForward()))
                    .append(" | ").append(f4(row.loss()))
                    .append(trained ? " | " + f4(row.valLoss()) : "")
                    .append(" |\n");
        }
        return sb.toString();
    }

    /** One sentence on HC vs mHC, or null when either was not trained. */
    public static String ratioSentence(StudyResult r) {
        ConnectionRun hc = r.run("hc"), mhc = r.run("mhc");
        if (hc == null || mhc == null) {
            return null;
        }
        double[] ratio = r.hcOverMhc();
        return String.format(Locale.ROOT,
                "HC / mHC, peak max composite gain over training: forward %s / %s = **%s x**, backward %s / %s = **%s x**.",
                gain(hc.maxCompositeForward()), gain(mhc.maxCompositeForward()), gain(ratio[0]),
                gain(hc.maxCompositeBackward()), gain(mhc.maxCompositeBackward()), gain(ratio[1]));
    }

    static String markdown(StudyResult r, String command, String plotsSkipped) {
        StudySettings s = r.settings();
        StringBuilder sb = new StringBuilder();
        sb.append("# Stability study\n\n");
        sb.append("Command: `").append(command).append("`\n\n");
        sb.append("## Setup\n\n");
        sb.append("| | |\n|---|---|\n");
        sb.append("| model | ").append(s.base().summary().replaceFirst("^\\w+/", "").replaceFirst(" \\([0-9.]+M params\\)$", "")).append(" (each connection; n=1 for residual)").append(" |\n");
        sb.append("| connections | ").append(String.join(", ", s.connections())).append(" (trained in this order, one after the other) |\n");
        sb.append("| data | ").append(r.dataSource()).append(" |\n");
        sb.append(String.format(Locale.ROOT, "| schedule | %d steps, AdamW, peak lr %s, %d warmup steps, cosine to %.0f%%, clip %.1f, weight decay %.2g |\n",
                s.train().steps(), Double.toString(s.train().lr()), s.train().warmup(), 100 * s.train().minLrFraction(), s.train().clip(), s.train().weightDecay()));
        sb.append("| seed | ").append(s.train().seed()).append(" (init and batch order; identical for every connection) |\n");
        sb.append("| gains | every ").append(s.gainEvery() == 0 ? "(never)" : s.gainEvery() + " steps")
                .append(", at step 1 and at the last step, on that step's training batch (before its update), averaged over its tokens |\n");
        sb.append("| validation | ").append(s.evalBatches()).append(" batches").append(s.evalEvery() > 0 ? ", every " + s.evalEvery() + " steps and" : "")
                .append(" at the end |\n");
        sb.append("| threads | ").append(s.threads()).append(" |\n");
        sb.append("| wall time | ").append(minutes(r.wallSeconds())).append(" in all |\n\n");

        sb.append("## Results\n\n");
        sb.append(resultsTable(r)).append('\n');
        sb.append("Final train loss: mean training loss of the last ").append(ConnectionRun.FINAL_LOSS_WINDOW)
                .append(" steps. Max composite gain: the largest, over all measurements during training, of the maximum over sublayers of the")
                .append(" token-averaged Amax gain of `Hres_{2L-1} ... Hres_l` (MODEL.md); forward = largest absolute row sum, backward = largest absolute column sum.\n\n");
        String ratio = ratioSentence(r);
        if (ratio != null) {
            sb.append(ratio).append("\n\n");
        }
        for (ConnectionRun run : r.runs()) {
            if (run.diverged() != null) {
                sb.append("- ").append(run.name()).append(": ").append(run.diverged()).append('\n');
            }
        }
        if (!r.sweep().isEmpty() || !s.sweepIters().isEmpty()) {
            sb.append("## Sinkhorn iterations (mhc)\n\n");
            sb.append("Mode: ").append(r.sweepModeDescription()).append(". Column-sum error: max over sublayers, tokens and columns of")
                    .append(" |column sum of Hres - 1| (rows sum to 1 by construction; the row error shows the float rounding).\n\n");
            sb.append(sweepTable(r)).append('\n');
        }
        sb.append("## Plots\n\n");
        if (plotsSkipped != null) {
            sb.append("Not drawn: ").append(plotsSkipped).append(".\n");
            sb.append("\nEvery number behind these tables is in `").append(JSON).append("`.\n");
            return sb.toString();
        }
        sb.append("- [loss vs step](").append(StudyPlots.LOSS).append(")\n");
        sb.append("- [loss gap vs ").append(r.baseline().name()).append("](").append(StudyPlots.LOSS_GAP).append(")\n");
        sb.append("- [gradient norm](").append(StudyPlots.GRAD_NORM).append(")\n");
        sb.append("- [composite gain vs sublayer at the end](").append(StudyPlots.GAIN_BY_SUBLAYER).append(")\n");
        sb.append("- [max composite gain over training](").append(StudyPlots.MAX_GAIN).append(")\n");
        if (!r.sweep().isEmpty()) {
            sb.append("- [Sinkhorn sweep](").append(StudyPlots.SINKHORN_SWEEP).append(")\n");
        }
        sb.append("\nEvery number behind these tables and plots is in `").append(JSON).append("`.\n");
        return sb.toString();
    }

    static String minutes(double seconds) {
        long t = Math.round(seconds);
        return t >= 60 ? String.format(Locale.ROOT, "%dm%02ds", t / 60, t % 60) : String.format(Locale.ROOT, "%.1fs", seconds);
    }
}
