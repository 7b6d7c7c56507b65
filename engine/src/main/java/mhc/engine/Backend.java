package mhc.engine;

import mhc.engine.model.Ops;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.function.Supplier;

/**
 * Where the model's operations run. {@code jvm}: the plain kernels, the reference every other
 * backend is checked against. {@code fast}: the JVM fast path (Vector API kernels, fused
 * connections), the default when the {@code jdk.incubator.vector} module is present.
 * {@code tornado}: TornadoVM devices, when the engine was built with {@code -Ptornado}.
 *
 * <p>The system property {@code -Dmhc.backend=NAME} overrides {@code --backend}, so
 * {@code -Dmhc.backend=jvm} forces the plain path for any command.
 */
public final class Backend {
    public static final String PROPERTY = "mhc.backend";
    /** System property narrowing the fast path's vectors: 128, 256 or 512 (bits). */
    public static final String VECTOR_BITS_PROPERTY = "mhc.vector.bits";
    /**
     * System property ({@code true}) that lets {@value #VECTOR_BITS_PROPERTY} ask for vectors wider
     * than the machine's: the Vector API then runs them in plain Java, far slower, so this is
     * for testing a wider machine's layouts (AVX-512's 12-row GEMM tile, 16-token groups) on any
     * machine, not for training.
     */
    public static final String VECTOR_EMULATE_PROPERTY = "mhc.vector.emulate";
    public static final List<String> NAMES = List.of("jvm", "fast", "tornado");
    private static final Logger log = LoggerFactory.getLogger(Backend.class);

    private final String name;
    private final String description;
    private final Supplier<Ops> ops;
    private final java.util.function.IntFunction<Ops> threadedOps;

    private Backend(String name, String description, Supplier<Ops> ops, java.util.function.IntFunction<Ops> threadedOps) {
        this.name = name;
        this.description = description;
        this.ops = ops;
        this.threadedOps = threadedOps;
    }

    public String name() {
        return name;
    }

    /** One line for logs, e.g. "fast (Vector API, 8 floats per vector)". */
    public String description() {
        return description;
    }

    /** A new operations object: one per model replica, since each keeps its own scratch. Single-threaded. */
    public Ops newOps() {
        return ops.get();
    }

    /**
     * Operations that may use {@code threads} threads inside each call (for one model that has the
     * machine to itself, and for benchmarks); backends without intra-op threads return {@link #newOps()}.
     */
    public Ops newOps(int threads) {
        return threadedOps.apply(threads);
    }

    /**
     * Host threads that drive model replicas on this backend: as requested on the JVM; one on a
     * device, which parallelizes inside each kernel (and whose runtime is not driven from two
     * threads at once here).
     */
    public int workerThreads(int requested) {
        return name.equals("tornado") ? 1 : requested;
    }

    public static Backend plain() {
        return new Backend("jvm", "jvm (plain reference kernels)", Ops::new, t -> new Ops());
    }

    /**
     * A backend of the caller's own operations: an {@link Ops} subclass that instruments or
     * replaces some kernels (to time one kernel inside real training steps, say). {@code ops}
     * makes one instance per model replica; the instances run single-threaded calls.
     */
    public static Backend of(String name, String description, Supplier<Ops> ops) {
        if (name == null || name.isBlank() || ops == null) {
            throw new IllegalArgumentException("a backend needs a name and a factory of its Ops");
        }
        return new Backend(name, description == null ? name : description, ops, t -> ops.get());
    }

    /** Whether the Vector API module is in the boot layer (the launcher adds it). */
    public static boolean vectorApiPresent() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    }

    /** The default: the fast path if it can run here, else the plain kernels with one log line saying why. */
    public static Backend defaultBackend() {
        return select(null);
    }

    /** The fastest backend on the host JVM itself: {@code fast} with the Vector API, else {@code jvm}. */
    public static Backend host() {
        return fast();
    }

    /**
     * The backend named on the command line ({@code null}: the default), unless the system
     * property {@value #PROPERTY} names another.
     */
    public static Backend select(String requested) {
        return select(requested, null);
    }

    /** As {@link #select(String)}, on a device of the backend ({@code B:D} for tornado; null: its default). */
    public static Backend select(String requested, String device) {
        String name = System.getProperty(PROPERTY, requested);
        if (name == null) {
            name = "fast";
        }
        return switch (name) {
            case "jvm", "plain" -> plain();
            case "fast" -> fast();
            case "tornado" -> tornado(device);
            default -> throw new InputException("unknown backend '" + name + "': use one of " + String.join(", ", NAMES));
        };
    }

    private static Backend fast() {
        if (!vectorApiPresent()) {
            log.info("Vector API absent: running the plain kernels; add the JVM flag --add-modules jdk.incubator.vector "
                    + "(engine/target/mhc does) for the fast path");
            return plain();
        }
        requestedVectorBits(); // a bad value fails here, as bad input, before any kernel class loads
        String cls = "mhc.engine.jvm.FastOps";
        return new Backend("fast", "fast (Vector API JVM path)", reflectiveFactory(cls), threadedFactory(cls));
    }

    /**
     * The vector width asked for with {@code -D}{@value #VECTOR_BITS_PROPERTY}: 128, 256 or 512,
     * or 0 when it is not set (the machine's width).
     */
    public static int requestedVectorBits() {
        String bits = System.getProperty(VECTOR_BITS_PROPERTY);
        if (bits == null || bits.isBlank()) {
            return 0;
        }
        return switch (bits.strip()) {
            case "128" -> 128;
            case "256" -> 256;
            case "512" -> 512;
            default -> throw new InputException("-D" + VECTOR_BITS_PROPERTY + "=" + bits
                    + ": give 128, 256 or 512 (bits per vector), or leave it out for the machine's width");
        };
    }

    /** Whether {@value #VECTOR_EMULATE_PROPERTY} lets the fast path take vectors wider than the machine's. */
    public static boolean emulateWiderVectors() {
        return Boolean.getBoolean(VECTOR_EMULATE_PROPERTY);
    }

    /** TornadoVM on device "B:D" (null: TornadoVM's default device). */
    public static Backend tornado(String device) {
        Class<?> support = tornadoSupport();
        try {
            var newOps = support.getMethod("newOps", String.class);
            Ops probe = (Ops) newOps.invoke(null, device); // fails here, once, if the device is not there
            String where = probe.toString();
            boolean[] first = {true};
            Supplier<Ops> factory = () -> {
                if (first[0]) {
                    first[0] = false;
                    return probe;
                }
                try {
                    return (Ops) newOps.invoke(null, device);
                } catch (ReflectiveOperationException e) {
                    throw unwrap(e);
                }
            };
            return new Backend("tornado", "tornado (" + where + ")", factory, t -> factory.get());
        } catch (ReflectiveOperationException e) {
            throw unwrap(e);
        }
    }

    /** The devices TornadoVM sees, one line each; empty where TornadoVM is absent. */
    @SuppressWarnings("unchecked")
    public static List<String> tornadoDevices() {
        try {
            return (List<String>) tornadoSupport().getMethod("describeDevices").invoke(null);
        } catch (InputException e) {
            return List.of();
        } catch (ReflectiveOperationException e) {
            throw unwrap(e);
        }
    }

    /** Whether this build has the TornadoVM backend and this JVM runs TornadoVM. */
    public static boolean tornadoAvailable() {
        try {
            tornadoSupport();
            return true;
        } catch (InputException e) {
            return false;
        }
    }

    private static Class<?> tornadoSupport() {
        Class<?> support;
        try {
            support = Class.forName("mhc.engine.tornado.TornadoSupport");
        } catch (ClassNotFoundException e) {
            throw new InputException("the tornado backend is not in this build: build with -Ptornado and TORNADOVM_HOME set "
                    + "(see tornado-setup.sh)");
        }
        try {
            Class.forName("uk.ac.manchester.tornado.api.TornadoExecutionPlan", true, support.getClassLoader());
            Class.forName("uk.ac.manchester.tornado.runtime.TornadoCoreRuntime");
        } catch (ClassNotFoundException | LinkageError e) {
            throw new InputException("TornadoVM is not running in this JVM: start the engine with the tornado launcher "
                    + "(tornado -jar engine/target/mhc.jar ...) or the SDK's argfile (java @$TORNADOVM_HOME/tornado-argfile ...)");
        }
        return support;
    }

    private static RuntimeException unwrap(ReflectiveOperationException e) {
        Throwable c = e instanceof java.lang.reflect.InvocationTargetException ite ? ite.getCause() : e;
        if (c instanceof RuntimeException re) {
            return re;
        }
        return new IllegalStateException(c);
    }

    /** A constructor taking a thread count if the class has one, else the plain constructor. */
    private static java.util.function.IntFunction<Ops> threadedFactory(String className) {
        Supplier<Ops> plainCtor = reflectiveFactory(className);
        try {
            var ctor = Class.forName(className).asSubclass(Ops.class).getConstructor(int.class);
            return t -> {
                try {
                    return ctor.newInstance(t);
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException("cannot create " + className, e);
                }
            };
        } catch (ReflectiveOperationException | LinkageError e) {
            return t -> plainCtor.get();
        }
    }

    /** Loads a backend class by name, so that this class links even where its module is absent. */
    private static Supplier<Ops> reflectiveFactory(String className) {
        try {
            var ctor = Class.forName(className).asSubclass(Ops.class).getConstructor();
            return () -> {
                try {
                    return ctor.newInstance();
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException("cannot create " + className, e);
                }
            };
        } catch (ReflectiveOperationException | LinkageError e) {
            throw new IllegalStateException("backend class " + className + " is missing from this build", e);
        }
    }
}
