package mhc.engine.cli;

import mhc.engine.InputException;
import mhc.engine.LanguageModel;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.Arrays;

/**
 * The {@code mhc} command line. Run {@code engine/target/mhc --help} (or
 * {@code java -jar engine/target/mhc.jar --help}).
 *
 * <p>Exit codes: 0 success, 2 bad input or usage (one line on stderr saying what to do),
 * 3 training diverged (a non-finite loss or gradient), 1 anything else. {@code --verbose} adds stack traces.
 */
@Command(name = "mhc", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Train, study and run manifold-constrained hyper-connection transformers.",
        subcommands = {TrainCommand.class, EvalCommand.class, GenerateCommand.class, InitCommand.class, GradsCommand.class,
                GainCommand.class, DevicesCommand.class, StudyCommand.class, BenchCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    public static final int EXIT_BAD_INPUT = 2;
    /** Training stopped on a non-finite loss or gradient. */
    public static final int EXIT_DIVERGED = 3;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command");
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs one command line in this JVM and returns its exit code (used by tests too). */
    public static int run(String... args) {
        boolean verbose = Arrays.asList(args).contains("--verbose");
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((e, cmd, parse) -> {
            PrintWriter err = cmd.getErr();
            Throwable input = e;
            while (input != null && !(input instanceof InputException)) {
                input = input.getCause();
            }
            if (verbose) {
                e.printStackTrace(err);
            }
            if (e instanceof LanguageModel.DivergedException d) {
                err.println("mhc " + cmd.getCommandName() + ": " + d.getMessage());
                err.flush();
                return EXIT_DIVERGED;
            }
            if (input != null) {
                err.println("mhc " + cmd.getCommandName() + ": " + input.getMessage());
                err.flush();
                return EXIT_BAD_INPUT;
            }
            if (e instanceof UncheckedIOException io) {
                err.println("mhc " + cmd.getCommandName() + ": " + io.getMessage());
            } else {
                err.println("mhc " + cmd.getCommandName() + ": internal error: " + e + (verbose ? "" : " (run with --verbose for details)"));
            }
            err.flush();
            return 1;
        });
        cli.setParameterExceptionHandler((e, a) -> {
            PrintWriter err = e.getCommandLine().getErr();
            err.println("mhc " + e.getCommandLine().getCommandName() + ": " + e.getMessage()
                    + " (see 'mhc " + (e.getCommandLine() == cli ? "" : e.getCommandLine().getCommandName() + " ") + "--help')");
            err.flush();
            return EXIT_BAD_INPUT;
        });
        return cli.execute(args);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[]{"mhc " + (v == null ? "(development build)" : v) + ", Java " + Runtime.version()};
        }
    }
}
