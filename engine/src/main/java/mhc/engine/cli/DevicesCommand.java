package mhc.engine.cli;

import mhc.engine.Backend;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "devices", mixinStandardHelpOptions = true,
        description = "List every backend and device this engine can run on, with memory.")
final class DevicesCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Override
    public Integer call() {
        Runtime rt = Runtime.getRuntime();
        System.out.printf(Locale.ROOT, "jvm       plain reference kernels, %d cores, heap %.1f GB (--backend jvm)%n",
                rt.availableProcessors(), rt.maxMemory() / 1e9);
        if (Backend.vectorApiPresent()) {
            System.out.printf(Locale.ROOT, "fast      Vector API JVM path, %d cores, heap %.1f GB (--backend fast, the default)%n",
                    rt.availableProcessors(), rt.maxMemory() / 1e9);
        } else {
            System.out.println("fast      unavailable: add the JVM flag --add-modules jdk.incubator.vector (engine/target/mhc does)");
        }
        if (Backend.tornadoAvailable()) {
            List<String> devices = Backend.tornadoDevices();
            if (devices.isEmpty()) {
                System.out.println("tornado   TornadoVM runs but reports no device");
            }
            for (String d : devices) {
                System.out.println(d + " (--backend tornado --device " + d.substring("tornado:".length(), d.indexOf(' ')) + ")");
            }
        } else {
            System.out.println("tornado   unavailable: build with -Ptornado and run with the tornado launcher (see tornado-setup.sh)");
        }
        return 0;
    }
}
