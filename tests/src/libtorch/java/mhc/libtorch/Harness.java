package mhc.libtorch;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import mhc.engine.InputException;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** What the comparison commands share: how they run and report bad input, their pauses and their JSON. */
final class Harness {
    private Harness() {
    }

    /**
     * Runs a picocli command and exits with its code; bad input is one line and exit code 2, and
     * so are native libraries that do not load on this platform.
     */
    static void main(String name, Object command, String[] args) {
        CommandLine cl = new CommandLine(command);
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof InputException || e instanceof IllegalArgumentException) {
                cmd.getErr().println(name + ": " + e.getMessage());
                return 2;
            }
            throw e;
        });
        int code;
        try {
            code = cl.execute(args);
        } catch (LinkageError e) {
            System.err.println(name + ": the presets' native libraries did not load here (" + e
                    + "); build with -Djavacpp.platform set to this platform");
            code = 2;
        }
        System.exit(code);
    }

    /**
     * An untimed pause before a timed call. OpenBLAS's idle threads spin for about 0.1 s after a
     * call (its thread timeout, 2^28 cycles by default) and would take the cores from whatever
     * runs next.
     */
    static void pause(int ms) {
        if (ms <= 0) {
            return;
        }
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /**
     * Fails at once, with one line, if the report could not be written at the end (a long
     * comparison that fails only then loses its run): creates the file's directory and a probe
     * file in it (deleted again). Null (no {@code --json}) passes.
     */
    static void checkWritable(Path json) {
        if (json == null) {
            return;
        }
        Path dir = json.toAbsolutePath().getParent();
        try {
            Files.createDirectories(dir);
            Files.delete(Files.createTempFile(dir, ".probe-", ".json"));
        } catch (IOException e) {
            throw new InputException("--json: cannot write into " + dir + " (" + e + "); choose a writable place");
        }
        if (Files.isDirectory(json) || (Files.exists(json) && !Files.isWritable(json))) {
            throw new InputException("--json: cannot write " + json + "; choose a writable file");
        }
    }

    /**
     * Writes the report (pretty-printed JSON) to {@code json}, if not null: into a temporary file
     * beside it, then renamed over it, so that a file of that name is always a whole report.
     */
    static void writeJson(Path json, JsonObject report) {
        if (json == null) {
            return;
        }
        try {
            Path tmp = Files.createTempFile(json.toAbsolutePath().getParent(), ".report-", ".json");
            try {
                Files.writeString(tmp, new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create()
                        .toJson(report) + "\n");
                Files.move(tmp, json, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new InputException("--json: cannot write " + json + " (" + e + ")");
        }
        System.out.println("wrote " + json);
    }

    /** The values as a JSON array. */
    static JsonArray array(double[] values) {
        JsonArray a = new JsonArray();
        for (double v : values) {
            a.add(v);
        }
        return a;
    }
}
