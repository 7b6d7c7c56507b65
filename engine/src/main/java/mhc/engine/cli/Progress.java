package mhc.engine.cli;

import com.google.gson.JsonObject;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.Console;
import java.util.Locale;

/**
 * Training progress on stderr: a progress bar with rate and ETA on a terminal, plain lines
 * (every 10 steps and at evaluations) when stderr is redirected.
 */
abstract class Progress implements AutoCloseable {
    abstract void update(JsonObject record);

    @Override
    public abstract void close();

    static Progress create(int totalSteps, int startStep) {
        return isTerminal() ? new Bar(totalSteps, startStep) : new Lines(totalSteps);
    }

    /** Java 22+ returns a Console even when redirected; ask it whether it is a terminal. */
    static boolean isTerminal() {
        Console c = System.console();
        if (c == null) {
            return false;
        }
        try {
            return (Boolean) Console.class.getMethod("isTerminal").invoke(c);
        } catch (ReflectiveOperationException e) {
            return true; // Java 21: a console exists only on a terminal
        }
    }

    static String describe(JsonObject r) {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s",
                r.get("loss").getAsDouble(), r.get("lr").getAsDouble(), r.get("grad_norm").getAsDouble(),
                r.get("tokens_per_s").getAsDouble()));
        if (r.has("val_loss")) {
            sb.append(String.format(Locale.ROOT, "  val %.4f (%.3f bpb)", r.get("val_loss").getAsDouble(), r.get("val_bpb").getAsDouble()));
        }
        if (r.has("gain_fwd")) {
            sb.append(String.format(Locale.ROOT, "  gain %.3f/%.3f", r.get("gain_fwd").getAsDouble(), r.get("gain_bwd").getAsDouble()));
        }
        return sb.toString();
    }

    private static final class Bar extends Progress {
        private final ProgressBar bar;

        Bar(int total, int start) {
            bar = new ProgressBarBuilder().setTaskName("train").setInitialMax(total).startsFrom(start, java.time.Duration.ZERO)
                    .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).continuousUpdate().setUnit(" steps", 1)
                    .setConsumer(new me.tongfei.progressbar.ConsoleProgressBarConsumer(System.err)).build();
        }

        @Override
        void update(JsonObject r) {
            bar.stepTo(r.get("step").getAsInt());
            bar.setExtraMessage(" " + describe(r));
            if (r.has("val_loss")) {
                System.err.println();
                System.err.println("step " + r.get("step").getAsInt() + ": " + describe(r));
            }
        }

        @Override
        public void close() {
            bar.close();
        }
    }

    private static final class Lines extends Progress {
        private final int total;
        private final long t0 = System.nanoTime();
        private int first = -1;

        Lines(int total) {
            this.total = total;
        }

        @Override
        void update(JsonObject r) {
            int step = r.get("step").getAsInt();
            if (first < 0) {
                first = step;
            }
            if (step % 10 == 0 || r.has("val_loss") || step == total || step == first) {
                double elapsed = (System.nanoTime() - t0) / 1e9;
                double eta = elapsed / (step - first + 1) * (total - step);
                System.err.printf(Locale.ROOT, "step %d/%d  %s  eta %s%n", step, total, describe(r), duration(eta));
            }
        }

        @Override
        public void close() {
        }
    }

    static String duration(double s) {
        long t = Math.round(s);
        return t >= 3600 ? String.format(Locale.ROOT, "%dh%02dm", t / 3600, t / 60 % 60)
                : String.format(Locale.ROOT, "%dm%02ds", t / 60, t % 60);
    }
}
