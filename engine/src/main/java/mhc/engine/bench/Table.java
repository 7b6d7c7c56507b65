package mhc.engine.bench;

import java.util.List;
import java.util.Locale;

/** The aligned text table of {@code mhc bench}: one row per (op, device). */
final class Table {
    private final String rowFormat;
    private final String headFormat;

    Table(List<OpCase> cases, List<BenchTarget> targets) {
        int opW = "op".length(), shapeW = "shape".length(), devW = "device".length();
        for (OpCase c : cases) {
            opW = Math.max(opW, c.name().length());
            shapeW = Math.max(shapeW, c.shape().length());
        }
        for (BenchTarget t : targets) {
            devW = Math.max(devW, t.name().length());
        }
        headFormat = "%-" + opW + "s  %-" + shapeW + "s  %-" + devW + "s  %10s %10s %6s %15s %9s  %s";
        rowFormat = headFormat;
    }

    String header() {
        return String.format(Locale.ROOT, headFormat, "op", "shape", "device", "median", "min", "CV", "rate", "speed-up", "check");
    }

    String row(OpCase c, String device, Timing.Stats st, double rate, double speedup, String check) {
        return String.format(Locale.ROOT, rowFormat, c.name(), c.shape(), device, time(st.median()), time(st.min()),
                String.format(Locale.ROOT, "%.1f%%", 100 * st.cv()), rate(rate, c.unit()),
                String.format(Locale.ROOT, "%.2fx", speedup), check);
    }

    String failedRow(OpCase c, String device) {
        return String.format(Locale.ROOT, rowFormat, c.name(), c.shape(), device, "-", "-", "-", "-", "-", "FAILED");
    }

    /** Three significant digits: "812 us", "12.3 ms", "1.23 s". */
    static String time(double seconds) {
        if (seconds < 1e-3) {
            return sig(seconds * 1e6) + " us";
        } else if (seconds < 1) {
            return sig(seconds * 1e3) + " ms";
        }
        return sig(seconds) + " s";
    }

    private static String sig(double v) {
        return String.format(Locale.ROOT, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v);
    }

    static String rate(double rate, OpCase.Unit unit) {
        return String.format(Locale.ROOT, rate >= 100 ? "%.0f %s" : rate >= 10 ? "%.1f %s" : "%.2f %s", rate, unit.rate);
    }
}
