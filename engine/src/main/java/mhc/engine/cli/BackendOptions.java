package mhc.engine.cli;

import mhc.engine.Backend;
import picocli.CommandLine.Option;

/** {@code --backend}: where the model's operations run. */
final class BackendOptions {
    @Option(names = "--backend", paramLabel = "NAME",
            description = "jvm (plain reference kernels), fast (Vector API JVM path; the default when available) or tornado. "
                    + "-Dmhc.backend=NAME overrides it.")
    String backend;

    Backend select() {
        return Backend.select(backend);
    }
}
