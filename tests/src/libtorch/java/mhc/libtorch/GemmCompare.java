package mhc.libtorch;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import mhc.engine.Backend;
import mhc.engine.InputException;
import mhc.engine.bench.Machine;
import mhc.engine.bench.Timing;
import mhc.engine.model.Ops;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.openblas.global.openblas_nolapack;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

import static org.bytedeco.openblas.global.openblas_nolapack.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.cblas_sgemm;

/**
 * The fast path's GEMM against OpenBLAS's {@code cblas_sgemm} in one process, calls alternated
 * (engine, OpenBLAS, engine, ...), so that the host's drift hits both alike: the three products of
 * a linear map {@code out = inp · W} (N x IN times IN x OUT) as the model calls them, forward
 * (overwrite), input gradient {@code dinp += dout · W^T} and weight gradient
 * {@code dW += inp^T · dout}. OpenBLAS works on native copies of the same data, made once, so its
 * calls are timed without any copying. Before timing, each product's results must agree within
 * {@code 1e-4} of the largest entry. {@code --json FILE} also writes the machine, the settings,
 * each product's check and every timed call.
 */
@Command(name = "gemm-compare", mixinStandardHelpOptions = true, sortOptions = false,
        description = "The engine's fast GEMM against OpenBLAS's sgemm, alternated in one process.")
public final class GemmCompare implements Callable<Integer> {
    @Option(names = "--shapes", split = ",", defaultValue = "1024x1024x1024",
            description = "N x IN x OUT, comma-separated (default 1024x1024x1024).")
    List<String> shapes;
    @Option(names = "--threads", defaultValue = "1", description = "Threads of both (default 1).")
    int threads;
    @Option(names = "--pause-ms", description = {"Untimed pause before each timed call (default: 0 on one thread, 300 ms on more):",
            "OpenBLAS's idle threads spin for about 0.1 s after a call and would take the cores from the next one."})
    Integer pauseMs;
    @Option(names = "--reps", defaultValue = "20", description = "Timed calls of each (default 20), after as many untimed.")
    int reps;
    @Option(names = "--json", paramLabel = "FILE", description = "Also write everything (machine, settings, checks, every timed call) as JSON.")
    Path json;

    private final JsonArray results = new JsonArray();

    public static void main(String[] args) {
        Harness.main("gemm-compare", new GemmCompare(), args);
    }

    @Override
    public Integer call() {
        if (threads < 1 || reps < 1) {
            throw new InputException("--threads and --reps must be >= 1");
        }
        Harness.checkWritable(json);
        openblas_nolapack.blas_set_num_threads(threads);
        Ops ops = Backend.defaultBackend().newOps(threads);
        JsonObject report = new JsonObject();
        report.addProperty("command", "gemm-compare");
        report.add("machine", Machine.json());
        report.addProperty("engine", Backend.defaultBackend().description());
        report.addProperty("threads", threads);
        report.addProperty("openblas_threads", openblas_nolapack.blas_get_num_threads());
        report.addProperty("reps", reps);
        report.addProperty("pause_ms", pause());
        report.add("results", results);
        System.out.printf(Locale.ROOT, "OpenBLAS (JavaCPP presets), %d threads; engine %s, %d threads%n",
                openblas_nolapack.blas_get_num_threads(), Backend.defaultBackend().description(), threads);
        System.out.printf(Locale.ROOT, "%-16s %-15s %14s %14s  %s%n", "N x IN x OUT", "product", "engine GFLOP/s",
                "OpenBLAS", "engine's speed over OpenBLAS's (medians / paired)");
        boolean ok = true;
        try {
            for (String shape : shapes) {
                ok &= compare(ops, shape);
            }
        } finally {
            ops.close();
        }
        report.addProperty("agree", ok);
        Harness.writeJson(json, report);
        return ok ? 0 : 1;
    }

    private boolean compare(Ops ops, String shape) {
        String[] p = shape.split("x");
        if (p.length != 3) {
            throw new InputException("--shapes: N x IN x OUT like 1024x1024x1024, got '" + shape + "'");
        }
        int N = Integer.parseInt(p[0]), IN = Integer.parseInt(p[1]), OUT = Integer.parseInt(p[2]);
        SplittableRandom r = new SplittableRandom(1);
        float[] inp = random(r, N * IN), w = random(r, IN * OUT), dout = random(r, N * OUT);
        float[] out = new float[N * OUT], dinp = new float[N * IN], dw = new float[IN * OUT];
        try (FloatPointer pInp = new FloatPointer(inp); FloatPointer pW = new FloatPointer(w);
             FloatPointer pDout = new FloatPointer(dout); FloatPointer pOut = new FloatPointer((long) N * OUT);
             FloatPointer pDinp = new FloatPointer((long) N * IN); FloatPointer pDw = new FloatPointer((long) IN * OUT)) {
            boolean ok = true;
            double flop = 2.0 * N * IN * OUT;
            ok &= run(shape, "forward", flop,
                    () -> ops.matmulForward(out, inp, w, 0, N, IN, OUT),
                    () -> cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OUT, IN, 1f, pInp, IN, pW, OUT, 0f, pOut, OUT),
                    out, pOut);
            ok &= run(shape, "input gradient", flop,
                    () -> ops.matmulBackwardInput(dinp, dout, w, 0, N, IN, OUT),
                    () -> cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, IN, OUT, 1f, pDout, OUT, pW, OUT, 1f, pDinp, IN),
                    dinp, pDinp);
            ok &= run(shape, "weight gradient", flop,
                    () -> ops.matmulBackwardWeight(dw, inp, dout, 0, N, IN, OUT),
                    () -> cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IN, OUT, N, 1f, pInp, IN, pDout, OUT, 1f, pDw, OUT),
                    dw, pDw);
            return ok;
        }
    }

    /**
     * Checks one call of each on zeroed outputs (the backwards accumulate), then alternates
     * {@code reps} untimed and {@code reps} timed calls of each.
     */
    private boolean run(String shape, String product, double flop, Runnable ours, Runnable theirs,
                        float[] oursOut, FloatPointer theirsOut) {
        Arrays.fill(oursOut, 0f);
        theirsOut.fill(0);
        ours.run();
        theirs.run();
        float[] t = new float[oursOut.length];
        theirsOut.get(t);
        double diff = 0, scale = 0;
        for (int i = 0; i < t.length; i++) {
            diff = Math.max(diff, Math.abs(oursOut[i] - t[i]));
            scale = Math.max(scale, Math.abs(t[i]));
        }
        JsonObject o = new JsonObject();
        o.addProperty("shape", shape);
        o.addProperty("product", product);
        o.addProperty("max_abs_difference", diff);
        o.addProperty("max_abs_openblas", scale);
        boolean agree = diff <= 1e-4 * scale;
        o.addProperty("agree", agree);
        results.add(o);
        if (!agree) {
            System.out.printf(Locale.ROOT, "%-16s %-15s DISAGREE: max |engine - OpenBLAS| %.3g, max |OpenBLAS| %.3g%n",
                    shape, product, diff, scale);
            return false;
        }
        double[] a = new double[reps], b = new double[reps], ratio = new double[reps];
        int pause = pause();
        for (int i = 0; i < 2 * reps; i++) {
            Harness.pause(pause);
            long t0 = System.nanoTime();
            ours.run();
            long t1 = System.nanoTime();
            Harness.pause(pause);
            long t2 = System.nanoTime();
            theirs.run();
            long t3 = System.nanoTime();
            if (i >= reps) {
                a[i - reps] = (t1 - t0) / 1e9;
                b[i - reps] = (t3 - t2) / 1e9;
                ratio[i - reps] = b[i - reps] / a[i - reps];
            }
        }
        double ma = new Timing.Stats(a).median(), mb = new Timing.Stats(b).median();
        double paired = new Timing.Stats(ratio).median();
        System.out.printf(Locale.ROOT, "%-16s %-15s %14.1f %14.1f %7.2f / %.2f%n", shape, product, flop / ma / 1e9,
                flop / mb / 1e9, mb / ma, paired);
        o.addProperty("engine_gflops", flop / ma / 1e9);
        o.addProperty("openblas_gflops", flop / mb / 1e9);
        o.addProperty("speed_over_openblas_medians", mb / ma);
        o.addProperty("speed_over_openblas_paired", paired);
        o.add("engine_seconds", Harness.array(a));
        o.add("openblas_seconds", Harness.array(b));
        return true;
    }

    /** The pause before each timed call: {@code --pause-ms}, else 0 on one thread and 300 ms on more. */
    private int pause() {
        return pauseMs != null ? pauseMs : threads > 1 ? 300 : 0;
    }

    private static float[] random(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (2 * r.nextDouble() - 1);
        }
        return x;
    }
}
