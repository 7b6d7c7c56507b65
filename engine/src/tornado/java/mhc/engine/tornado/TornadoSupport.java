package mhc.engine.tornado;

import mhc.engine.InputException;
import uk.ac.manchester.tornado.api.TornadoBackend;
import uk.ac.manchester.tornado.api.TornadoDeviceMap;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.exceptions.TornadoMemoryException;
import uk.ac.manchester.tornado.api.exceptions.TornadoOutOfMemoryException;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The TornadoVM side of backend selection: device discovery, {@code --device B:D} parsing,
 * and one-line errors for device failures. Loaded reflectively by {@link mhc.engine.Backend}
 * so that the engine links without TornadoVM.
 */
public final class TornadoSupport {
    private TornadoSupport() {
    }

    /** One line per device: "tornado:B:D  NAME  (BACKEND, global X GB, local Y KB)". */
    public static List<String> describeDevices() {
        List<String> out = new ArrayList<>();
        TornadoDeviceMap map = TornadoExecutionPlan.getTornadoDeviceMap();
        List<TornadoBackend> backends = map.getAllBackends();
        for (int b = 0; b < backends.size(); b++) {
            TornadoBackend backend = backends.get(b);
            for (int d = 0; d < backend.getNumDevices(); d++) {
                TornadoDevice dev = backend.getDevice(d);
                out.add(String.format(Locale.ROOT, "tornado:%d:%d  %s  (%s, global memory %.1f GB, local memory %d KB)",
                        b, d, dev.getPhysicalDevice().getDeviceName(), dev.getTornadoVMBackend(),
                        dev.getMaxGlobalMemory() / 1e9, dev.getDeviceLocalMemorySize() / 1024));
            }
        }
        return out;
    }

    /** The device named "B:D" (backend and device index, as {@code tornado --devices} numbers them), or the default for null. */
    public static TornadoDevice device(String spec) {
        if (spec == null || spec.isEmpty()) {
            return TornadoExecutionPlan.DEFAULT_DEVICE;
        }
        String[] parts = spec.split(":");
        try {
            if (parts.length != 2) {
                throw new NumberFormatException();
            }
            int b = Integer.parseInt(parts[0]), d = Integer.parseInt(parts[1]);
            List<TornadoBackend> backends = TornadoExecutionPlan.getTornadoDeviceMap().getAllBackends();
            if (b < 0 || b >= backends.size() || d < 0 || d >= backends.get(b).getNumDevices()) {
                throw new InputException("no TornadoVM device " + spec + "; 'mhc devices' lists them (--device B:D)");
            }
            return backends.get(b).getDevice(d);
        } catch (NumberFormatException e) {
            throw new InputException("--device must be B:D (backend and device index, e.g. 0:0), got '" + spec + "'");
        }
    }

    public static TornadoOps newOps(String spec) {
        return new TornadoOps(device(spec));
    }

    /** A device failure as one line that names the kernel, the device and what to change. */
    static RuntimeException failure(String kernel, TornadoDevice device, RuntimeException e) {
        String dev = device.getPhysicalDevice().getDeviceName();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof TornadoOutOfMemoryException || t instanceof TornadoMemoryException) {
                return new InputException("kernel " + kernel + " ran out of memory on " + dev
                        + "; raise -Dtornado.device.memory=NGB, choose another --device, or use a smaller --batch-size", e);
            }
        }
        return new InputException("kernel " + kernel + " failed on " + dev + " (" + firstLine(e)
                + "); choose another --device or --backend fast", e);
    }

    private static String firstLine(Throwable e) {
        String m = String.valueOf(e.getMessage());
        int nl = m.indexOf('\n');
        return e.getClass().getSimpleName() + ": " + (nl >= 0 ? m.substring(0, nl) : m);
    }
}
