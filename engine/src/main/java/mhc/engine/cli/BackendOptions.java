package mhc.engine.cli;

import mhc.engine.Backend;
import picocli.CommandLine.Option;

/** {@code --backend}: where the model's operations run. */
final class BackendOptions {
    @Option(names = "--backend", paramLabel = "NAME",
            description = "jvm (plain reference kernels), fast (Vector API JVM path; the default when available) or tornado. "
                    + "-Dmhc.backend=NAME overrides it.")
    String backend;

    @Option(names = "--device", paramLabel = "B:D",
            description = "TornadoVM device as backend:device index (see 'mhc devices'; default: TornadoVM's default device).")
    String device;

    Backend select() {
        if (device != null && !"tornado".equals(System.getProperty(Backend.PROPERTY, backend))) {
            throw new mhc.engine.InputException("--device selects a TornadoVM device; add --backend tornado");
        }
        return Backend.select(backend, device);
    }
}
