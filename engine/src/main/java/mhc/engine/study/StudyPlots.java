package mhc.engine.study;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The study's PNG plots, drawn with XChart (headless: no display is needed). Gains are on a
 * logarithmic axis; training curves are smoothed by a trailing moving average (said in the title).
 */
public final class StudyPlots {
    static {
        // Before any AWT class loads: render off-screen on machines without a display.
        System.setProperty("java.awt.headless", "true");
    }

    public static final String LOSS = "loss.png";
    public static final String LOSS_GAP = "loss_gap.png";
    public static final String GRAD_NORM = "grad_norm.png";
    public static final String GAIN_BY_SUBLAYER = "gain_by_sublayer.png";
    public static final String MAX_GAIN = "max_gain.png";
    public static final String SINKHORN_SWEEP = "sinkhorn_sweep.png";

    private static final int WIDTH = 900, HEIGHT = 520;

    private StudyPlots() {
    }

    /**
     * Why this JVM cannot draw the plots, or null when it can: draws a small chart in memory.
     * A machine without fonts (a minimal server or container image) fails there, with a
     * message from the JDK's font configuration, as does a runtime without the native AWT
     * libraries.
     */
    static String probe() {
        try {
            XYChart c = chart("probe", "x", "y");
            line(c, "probe", new double[]{1, 2}, new double[]{1, 2}, Color.BLACK, SeriesLines.SOLID, true);
            BitmapEncoder.getBufferedImage(c);
            return null;
        } catch (RuntimeException | LinkageError e) {
            return StudyReport.drawingFailure(e);
        }
    }

    /** Writes the plots into {@code dir}; returns the file names written. */
    public static List<String> write(StudyResult r, Path dir) {
        List<String> out = new ArrayList<>();
        save(loss(r), dir, LOSS, out);
        save(lossGap(r), dir, LOSS_GAP, out);
        save(gradNorm(r), dir, GRAD_NORM, out);
        save(gainBySublayer(r), dir, GAIN_BY_SUBLAYER, out);
        save(maxGain(r), dir, MAX_GAIN, out);
        if (!r.sweep().isEmpty()) {
            save(sweep(r), dir, SINKHORN_SWEEP, out);
        }
        return out;
    }

    static Color color(String connection) {
        return switch (connection) {
            case "residual" -> new Color(90, 90, 90);
            case "hc" -> new Color(214, 39, 40);
            case "mhc" -> new Color(31, 119, 180);
            default -> new Color(44, 160, 44);
        };
    }

    /** The moving-average window used for a run of {@code steps} steps. */
    static int window(int steps) {
        return Math.max(1, steps / 50);
    }

    private static XYChart chart(String title, String x, String y) {
        XYChart c = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(x).yAxisTitle(y).build();
        Styler st = c.getStyler();
        st.setChartBackgroundColor(Color.WHITE);
        st.setLegendPosition(Styler.LegendPosition.OutsideE);
        st.setAntiAlias(true);
        c.getStyler().setPlotBackgroundColor(Color.WHITE);
        c.getStyler().setPlotGridLinesColor(new Color(225, 225, 225));
        c.getStyler().setMarkerSize(5);
        return c;
    }

    private static XYSeries line(XYChart c, String name, double[] x, double[] y, Color color, BasicStroke style, boolean markers) {
        XYSeries s = c.addSeries(name, x, y);
        s.setLineColor(color);
        s.setMarkerColor(color);
        s.setLineStyle(style);
        s.setMarker(markers ? SeriesMarkers.CIRCLE : SeriesMarkers.NONE);
        return s;
    }

    private static double[] steps(int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = i + 1;
        }
        return x;
    }

    static double[] movingAverage(double[] y, int w) {
        double[] out = new double[y.length];
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
            sum += y[i];
            if (i >= w) {
                sum -= y[i - w];
            }
            out[i] = sum / Math.min(i + 1, w);
        }
        return out;
    }

    private static int maxSteps(StudyResult r) {
        int m = 1;
        for (ConnectionRun run : r.runs()) {
            m = Math.max(m, run.steps());
        }
        return m;
    }

    static XYChart loss(StudyResult r) {
        int w = window(maxSteps(r));
        XYChart c = chart("Training loss (moving average of " + w + " steps) and validation loss", "step", "loss (nats/byte)");
        for (ConnectionRun run : r.runs()) {
            if (run.steps() == 0) {
                continue;
            }
            line(c, run.name() + " train", steps(run.steps()), movingAverage(run.loss(), w), color(run.name()), SeriesLines.SOLID, false);
        }
        for (ConnectionRun run : r.runs()) {
            List<ConnectionRun.ValPoint> v = run.val();
            if (v.isEmpty()) {
                continue;
            }
            double[] x = new double[v.size()], y = new double[v.size()];
            for (int i = 0; i < v.size(); i++) {
                x[i] = v.get(i).step();
                y[i] = v.get(i).loss();
            }
            line(c, run.name() + " val", x, y, color(run.name()), SeriesLines.DASH_DASH, true);
        }
        return c;
    }

    static XYChart lossGap(StudyResult r) {
        ConnectionRun base = r.baseline();
        int w = window(maxSteps(r));
        XYChart c = chart("Loss minus " + base.name() + "'s loss (train: moving average of " + w + " steps; val: dashed)",
                "step", "loss gap (nats/byte)");
        double[] b = movingAverage(base.loss(), w);
        int n0 = Math.max(1, base.steps());
        line(c, base.name() + " (zero)", new double[]{1, n0}, new double[]{0, 0}, color(base.name()), SeriesLines.SOLID, false);
        for (ConnectionRun run : r.runs()) {
            if (run == base) {
                continue;
            }
            int n = Math.min(run.steps(), base.steps());
            if (n > 0) {
                double[] m = movingAverage(run.loss(), w);
                double[] gap = new double[n];
                for (int i = 0; i < n; i++) {
                    gap[i] = m[i] - b[i];
                }
                line(c, run.name() + " train gap", steps(n), gap, color(run.name()), SeriesLines.SOLID, false);
            }
            List<Double> xs = new ArrayList<>(), ys = new ArrayList<>();
            for (ConnectionRun.ValPoint v : run.val()) {
                for (ConnectionRun.ValPoint bv : base.val()) {
                    if (bv.step() == v.step()) {
                        xs.add((double) v.step());
                        ys.add(v.loss() - bv.loss());
                    }
                }
            }
            if (!xs.isEmpty()) {
                line(c, run.name() + " val gap", unbox(xs), unbox(ys), color(run.name()), SeriesLines.DASH_DASH, true);
            }
        }
        return c;
    }

    static XYChart gradNorm(StudyResult r) {
        int w = window(maxSteps(r));
        XYChart c = chart("Gradient norm before clipping (moving average of " + w + " steps)", "step", "global gradient norm");
        c.getStyler().setYAxisLogarithmic(true);
        double lo = Double.POSITIVE_INFINITY, hi = 0;
        for (ConnectionRun run : r.runs()) {
            if (run.steps() == 0) {
                continue;
            }
            double[] y = movingAverage(run.gradNorm(), w);
            for (double v : y) {
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
            }
            line(c, run.name(), steps(run.steps()), positive(y), color(run.name()), SeriesLines.SOLID, false);
        }
        logRange(c, lo, hi);
        return c;
    }

    static XYChart gainBySublayer(StudyResult r) {
        XYChart c = chart("Composite Amax gain of Hres_{2L-1}...Hres_l at the last step (log scale)", "sublayer l", "gain");
        c.getStyler().setYAxisLogarithmic(true);
        double lo = Double.POSITIVE_INFINITY, hi = 0;
        for (ConnectionRun run : r.runs()) {
            ConnectionRun.GainPoint g = run.lastGains();
            if (g == null) {
                continue;
            }
            double[] f = g.gains().compositeForward(), b = g.gains().compositeBackward();
            double[] x = new double[f.length];
            for (int i = 0; i < x.length; i++) {
                x[i] = i;
                lo = Math.min(lo, Math.min(f[i], b[i]));
                hi = Math.max(hi, Math.max(f[i], b[i]));
            }
            line(c, run.name() + " forward", x, positive(f), color(run.name()), SeriesLines.SOLID, true);
            line(c, run.name() + " backward", x, positive(b), color(run.name()), SeriesLines.DASH_DASH, false);
        }
        logRange(c, lo, hi);
        return c;
    }

    static XYChart maxGain(StudyResult r) {
        XYChart c = chart("Max over sublayers of the composite Amax gain during training (log scale)", "step", "max composite gain");
        c.getStyler().setYAxisLogarithmic(true);
        double lo = Double.POSITIVE_INFINITY, hi = 0;
        for (ConnectionRun run : r.runs()) {
            List<ConnectionRun.GainPoint> g = run.gains();
            if (g.isEmpty()) {
                continue;
            }
            double[] x = new double[g.size()], f = new double[g.size()], b = new double[g.size()];
            for (int i = 0; i < g.size(); i++) {
                x[i] = g.get(i).step();
                f[i] = g.get(i).gains().maxCompositeForward();
                b[i] = g.get(i).gains().maxCompositeBackward();
                lo = Math.min(lo, Math.min(f[i], b[i]));
                hi = Math.max(hi, Math.max(f[i], b[i]));
            }
            line(c, run.name() + " forward", x, positive(f), color(run.name()), SeriesLines.SOLID, false);
            line(c, run.name() + " backward", x, positive(b), color(run.name()), SeriesLines.DASH_DASH, false);
        }
        logRange(c, lo, hi);
        return c;
    }

    static XYChart sweep(StudyResult r) {
        XYChart c = chart("mhc vs Sinkhorn iterations (" + r.sweepMode() + " sweep; log scale)", "sinkhorn_iters", "value");
        c.getStyler().setYAxisLogarithmic(true);
        List<SinkhornSweep.Row> rows = r.sweep();
        double[] x = new double[rows.size()], err = new double[rows.size()], gb = new double[rows.size()];
        double lo = Double.POSITIVE_INFINITY, hi = 0;
        for (int i = 0; i < rows.size(); i++) {
            x[i] = rows.get(i).iters();
            err[i] = Math.max(rows.get(i).columnError(), 1e-9);
            gb[i] = rows.get(i).maxCompositeBackward();
            lo = Math.min(lo, Math.min(err[i], gb[i]));
            hi = Math.max(hi, Math.max(err[i], gb[i]));
        }
        line(c, "column-sum error max|colsum-1| (floor 1e-9)", x, err, new Color(148, 103, 189), SeriesLines.SOLID, true);
        line(c, "max composite backward gain", x, positive(gb), color("mhc"), SeriesLines.SOLID, true);
        logRange(c, lo, hi);
        return c;
    }

    private static void logRange(XYChart c, double lo, double hi) {
        if (!(lo > 0) || !Double.isFinite(lo)) {
            lo = 1;
        }
        if (!(hi > 0) || !Double.isFinite(hi)) {
            hi = 1;
        }
        // At least one decade each side of 1 when everything sits near 1, so the axis has labels.
        double min = Math.pow(10, Math.floor(Math.log10(Math.min(lo, 0.5))));
        double max = Math.pow(10, Math.ceil(Math.log10(Math.max(hi * 1.05, 2))));
        c.getStyler().setYAxisMin(min);
        c.getStyler().setYAxisMax(max);
    }

    private static double[] positive(double[] y) {
        double[] o = new double[y.length];
        for (int i = 0; i < y.length; i++) {
            o[i] = y[i] > 0 && Double.isFinite(y[i]) ? y[i] : 1e-9;
        }
        return o;
    }

    private static double[] unbox(List<Double> l) {
        double[] a = new double[l.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = l.get(i);
        }
        return a;
    }

    private static void save(XYChart c, Path dir, String name, List<String> written) {
        Path file = dir.resolve(name);
        Path tmp = dir.resolve(name + ".tmp");
        try {
            try (OutputStream os = Files.newOutputStream(tmp)) {
                BitmapEncoder.saveBitmap(c, os, BitmapEncoder.BitmapFormat.PNG);
            } catch (RuntimeException | LinkageError e) {
                Files.deleteIfExists(tmp); // drawing failed (see probe): leave no partial file
                throw e;
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException(String.format(Locale.ROOT, "%s: cannot write plot (%s)", file, e.getMessage()), e);
        }
        written.add(name);
    }
}
