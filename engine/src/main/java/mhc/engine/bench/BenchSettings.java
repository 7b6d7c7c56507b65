package mhc.engine.bench;

import mhc.engine.Config;

import java.util.List;
import java.util.regex.Pattern;

/**
 * What {@code mhc bench} runs.
 *
 * @param config       the model whose shapes the ops use and whose training step is timed
 * @param warmup       seconds of untimed calls per (op, device) line
 * @param minTime      seconds of timed calls per line, at least
 * @param reps         timed calls per line, at least
 * @param seed         inputs, initial parameters and batches
 * @param ops          which ops (matched anywhere in the op's name), null: all
 * @param targets      which devices besides the reference (matched anywhere in the name), null: all
 * @param threads      threads of the multi-threaded targets and of the training step
 * @param runOps       whether to run the per-op table
 * @param stepBackends backends of the training step ({@code jvm}, {@code fast}, ...); empty: no step
 * @param stepWarmup   untimed steps per connection
 * @param stepSteps    timed steps per connection
 * @param quick        small shapes and few runs (tests)
 */
public record BenchSettings(Config config, double warmup, double minTime, int reps, long seed, Pattern ops, Pattern targets,
                            int threads, boolean runOps, List<String> stepBackends, int stepWarmup, int stepSteps,
                            boolean quick) {
}
