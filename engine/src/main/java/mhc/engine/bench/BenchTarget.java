package mhc.engine.bench;

import mhc.engine.model.Ops;

import java.util.function.Supplier;

/**
 * One device line of the benchmark: a name for the table ("jvm/1 thread", "fast/8 threads", a
 * TornadoVM device), the backend it belongs to, and how to make its {@link Ops}.
 *
 * @param name        shown in the table and the JSON; unique
 * @param backend     the backend's name ({@code jvm}, {@code fast}, {@code tornado})
 * @param threads     threads inside each call (1 for single-threaded or device backends)
 * @param description one line, e.g. "Vector API JVM path, 8 threads"
 * @param ops         a fresh operations object (called once per benchmark run)
 */
public record BenchTarget(String name, String backend, int threads, String description, Supplier<Ops> ops) {
}
