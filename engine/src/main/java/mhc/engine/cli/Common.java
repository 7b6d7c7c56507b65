package mhc.engine.cli;

import picocli.CommandLine.Option;

/** Options every command takes. */
final class Common {
    @Option(names = "--verbose", description = "Print stack traces on errors.")
    boolean verbose;
}
