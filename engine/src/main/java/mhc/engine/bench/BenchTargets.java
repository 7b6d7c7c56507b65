package mhc.engine.bench;

import mhc.engine.Backend;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The devices {@code mhc bench} measures: the plain kernels on one thread (the reference every
 * other line is validated against and its speed-up is relative to), the fast JVM path on all
 * cores when the Vector API module is present, each TornadoVM device ("tornado/B:D") when the
 * engine was built with {@code -Ptornado} and runs under TornadoVM, then whatever {@link #extra()}
 * adds.
 *
 * <p>Any other backend joins the benchmark by registering targets with {@link #register} before
 * the command runs (the tests register deliberately broken ones to check the validator).
 */
public final class BenchTargets {
    /** Name of the reference line. */
    public static final String REFERENCE = "jvm/1 thread";

    private static final List<BenchTarget> REGISTERED = new CopyOnWriteArrayList<>();

    private BenchTargets() {
    }

    /** Targets that will run, and the ones that cannot here, each with the reason. */
    public record Selection(List<BenchTarget> targets, List<Skipped> skipped) {
    }

    public record Skipped(String name, String reason) {
    }

    /** The plain kernels, single-threaded: the reference. */
    public static BenchTarget reference() {
        return new BenchTarget(REFERENCE, "jvm", 1, "plain reference kernels, 1 thread", () -> Backend.plain().newOps());
    }

    /** The reference, the fast path on {@code threads} threads if it can run here, then {@link #extra()}. */
    public static Selection standard(int threads) {
        List<BenchTarget> targets = new ArrayList<>();
        List<Skipped> skipped = new ArrayList<>();
        targets.add(reference());
        String fastName = "fast/" + threads + (threads == 1 ? " thread" : " threads");
        if (!Backend.vectorApiPresent()) {
            skipped.add(new Skipped(fastName, "the Vector API module is absent: run with the JVM flag "
                    + "--add-modules jdk.incubator.vector (engine/target/mhc adds it)"));
        } else {
            try {
                Backend fast = Backend.select("fast");
                if (!fast.name().equals("fast")) {
                    skipped.add(new Skipped(fastName, "-D" + Backend.PROPERTY + "=" + System.getProperty(Backend.PROPERTY)
                            + " forces the " + fast.name() + " backend"));
                } else {
                    targets.add(new BenchTarget(fastName, "fast", threads, fast.description() + ", " + threads
                            + (threads == 1 ? " thread" : " threads"), () -> fast.newOps(threads)));
                }
            } catch (RuntimeException | LinkageError e) {
                skipped.add(new Skipped(fastName, "the fast backend cannot start: " + e.getMessage()));
            }
        }
        addTornado(targets, skipped);
        targets.addAll(extra());
        return new Selection(targets, skipped);
    }

    /** One target per TornadoVM device ("tornado/B:D"), when this build has the backend and the JVM runs TornadoVM. */
    private static void addTornado(List<BenchTarget> targets, List<Skipped> skipped) {
        if (!Backend.tornadoAvailable()) {
            return;
        }
        List<String> devices;
        try {
            devices = Backend.tornadoDevices();
        } catch (RuntimeException | LinkageError e) {
            skipped.add(new Skipped("tornado", "TornadoVM cannot list its devices: " + e.getMessage()));
            return;
        }
        for (String line : devices) {
            // "tornado:B:D  <device name>  (...)"
            int space = line.indexOf(' ');
            String id = line.substring(line.indexOf(':') + 1, space < 0 ? line.length() : space);
            String name = "tornado/" + id;
            try {
                Backend b = Backend.tornado(id);
                targets.add(new BenchTarget(name, "tornado", 1, b.description(), b::newOps));
            } catch (RuntimeException | LinkageError e) {
                skipped.add(new Skipped(name, "cannot start: " + e.getMessage()));
            }
        }
    }

    /** Targets other backends registered (TornadoVM devices); none in a plain build. */
    public static List<BenchTarget> extra() {
        return List.copyOf(REGISTERED);
    }

    /** Adds a target after the standard ones; a target of the same name is replaced. */
    public static void register(BenchTarget target) {
        unregister(target.name());
        REGISTERED.add(target);
    }

    public static void unregister(String name) {
        REGISTERED.removeIf(t -> t.name().equals(name));
    }
}
