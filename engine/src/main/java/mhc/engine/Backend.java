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
    public static final List<String> NAMES = List.of("jvm", "fast", "tornado");
    private static final Logger log = LoggerFactory.getLogger(Backend.class);

    private final String name;
    private final String description;
    private final Supplier<Ops> ops;

    private Backend(String name, String description, Supplier<Ops> ops) {
        this.name = name;
        this.description = description;
        this.ops = ops;
    }

    public String name() {
        return name;
    }

    /** One line for logs, e.g. "fast (Vector API, 8 floats per vector)". */
    public String description() {
        return description;
    }

    /** A new operations object: one per model replica, since each keeps its own scratch. */
    public Ops newOps() {
        return ops.get();
    }

    public static Backend plain() {
        return new Backend("jvm", "jvm (plain reference kernels)", Ops::new);
    }

    /** Whether the Vector API module is in the boot layer (the launcher adds it). */
    public static boolean vectorApiPresent() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    }

    /** The default: the fast path if it can run here, else the plain kernels with one log line saying why. */
    public static Backend defaultBackend() {
        return select(null);
    }

    /**
     * The backend named on the command line ({@code null}: the default), unless the system
     * property {@value #PROPERTY} names another.
     */
    public static Backend select(String requested) {
        String name = System.getProperty(PROPERTY, requested);
        if (name == null) {
            name = "fast";
        }
        return switch (name) {
            case "jvm", "plain" -> plain();
            case "fast" -> fast();
            case "tornado" -> tornado();
            default -> throw new InputException("unknown backend '" + name + "': use one of " + String.join(", ", NAMES));
        };
    }

    private static Backend fast() {
        if (!vectorApiPresent()) {
            log.info("Vector API absent: running the plain kernels; add the JVM flag --add-modules jdk.incubator.vector "
                    + "(engine/target/mhc does) for the fast path");
            return plain();
        }
        Supplier<Ops> factory = reflectiveFactory("mhc.engine.jvm.FastOps");
        return new Backend("fast", "fast (Vector API JVM path)", factory);
    }

    private static Backend tornado() {
        throw new InputException("the tornado backend is not in this build: build with -Ptornado and TORNADOVM_HOME set "
                + "(see tornado-setup.sh), and run with the tornado launcher");
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
