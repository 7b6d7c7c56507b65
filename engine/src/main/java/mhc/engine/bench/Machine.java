package mhc.engine.bench;

import com.google.gson.JsonObject;
import mhc.engine.Backend;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/** What the numbers were measured on: cores, JVM, Vector API width, load, and the source commit when known. */
public final class Machine {
    private Machine() {
    }

    public static int cores() {
        return Runtime.getRuntime().availableProcessors();
    }

    /**
     * The fast kernels' float vector width in bits (the machine's preferred one, or
     * {@code -Dmhc.vector.bits}), if the Vector API module is present (looked up reflectively).
     */
    public static Integer vectorBits() {
        if (!Backend.vectorApiPresent()) {
            return null;
        }
        try {
            return (Integer) Class.forName("mhc.engine.jvm.FastOps").getMethod("vectorBits").invoke(null);
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            return null;
        }
    }

    /** The one-minute load average, or a negative number where the OS does not report it. */
    public static double loadAverage() {
        return ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    }

    /** {@code git rev-parse HEAD} in the working directory, or null (no git, not a checkout). */
    public static String gitCommit() {
        try {
            Process p = new ProcessBuilder("git", "rev-parse", "HEAD").redirectErrorStream(true).start();
            p.getOutputStream().close();
            if (!p.waitFor(3, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return null;
            }
            String s = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            return p.exitValue() == 0 && s.matches("[0-9a-f]{40}") ? s : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    public static String javaVersion() {
        return Runtime.version().toString();
    }

    /** One line: "2 cores, Java 21.0.5 (OpenJDK 64-Bit Server VM), Vector API 256-bit, load average 2.80". */
    public static String summary() {
        Integer bits = vectorBits();
        double load = loadAverage();
        return String.format(Locale.ROOT, "%d cores, Java %s (%s), Vector API %s, load average %s",
                cores(), javaVersion(), System.getProperty("java.vm.name"),
                bits == null ? "absent" : bits + "-bit (" + bits / 32 + " floats)",
                load < 0 ? "unknown" : String.format(Locale.ROOT, "%.2f", load));
    }

    public static JsonObject json() {
        JsonObject o = new JsonObject();
        o.addProperty("cores", cores());
        o.addProperty("java_version", javaVersion());
        o.addProperty("jvm", System.getProperty("java.vm.name"));
        o.addProperty("jvm_vendor", System.getProperty("java.vm.vendor"));
        o.addProperty("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
        o.addProperty("arch", System.getProperty("os.arch"));
        o.addProperty("max_heap_mb", Runtime.getRuntime().maxMemory() / (1024 * 1024));
        o.addProperty("vector_api", Backend.vectorApiPresent());
        Integer bits = vectorBits();
        if (bits != null) {
            o.addProperty("vector_bits", bits);
        }
        double load = loadAverage();
        if (load >= 0) {
            o.addProperty("load_average_start", load);
        }
        return o;
    }
}
