package mhc.libtorch;

import mhc.engine.InputException;
import picocli.CommandLine;

/** What the comparison commands share: how they run and report bad input, and their pauses. */
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
}
