package mhc.engine.train;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import mhc.engine.InputException;

/**
 * The optimization settings of a run. Everything here that changes the numbers is saved in
 * training checkpoints, so a resumed run continues with the same schedule.
 *
 * @param steps           optimizer steps of the whole run (the cosine schedule ends there)
 * @param lr              peak learning rate
 * @param warmup          steps of linear warmup from lr/warmup to lr
 * @param minLrFraction   the cosine decays to this fraction of the peak (0.1)
 * @param weightDecay     AdamW decoupled weight decay on the 2-D+ weight matrices
 * @param beta1           AdamW first-moment decay
 * @param beta2           AdamW second-moment decay
 * @param eps             AdamW epsilon
 * @param clip            global gradient-norm clipping threshold
 * @param seed            seed of the batch sampler
 */
public record TrainSettings(int steps, double lr, int warmup, double minLrFraction, double weightDecay,
                            double beta1, double beta2, double eps, double clip, long seed) {

    public static TrainSettings defaults() {
        return new TrainSettings(1000, 3e-3, 50, 0.1, 0.1, 0.9, 0.95, 1e-8, 1.0, 1);
    }

    public TrainSettings {
        if (steps < 1) {
            throw new InputException("--steps must be >= 1, got " + steps);
        }
        if (!(lr > 0) || Double.isInfinite(lr)) {
            throw new InputException("--lr must be a positive number, got " + lr);
        }
        if (warmup < 0) {
            throw new InputException("--warmup must be >= 0, got " + warmup);
        }
    }

    /** Learning rate of step s (0-based): linear warmup, then cosine decay to minLrFraction * lr. */
    public double lrAt(int s) {
        if (s < warmup) {
            return lr * (s + 1) / warmup;
        }
        int decaySteps = Math.max(1, steps - warmup);
        double progress = Math.min(1.0, (double) (s - warmup) / decaySteps);
        double min = lr * minLrFraction;
        return min + 0.5 * (lr - min) * (1 + Math.cos(Math.PI * progress));
    }

    public TrainSettings withSteps(int s) {
        return new TrainSettings(s, lr, warmup, minLrFraction, weightDecay, beta1, beta2, eps, clip, seed);
    }

    public TrainSettings withLr(double x) {
        return new TrainSettings(steps, x, warmup, minLrFraction, weightDecay, beta1, beta2, eps, clip, seed);
    }

    public TrainSettings withWarmup(int w) {
        return new TrainSettings(steps, lr, w, minLrFraction, weightDecay, beta1, beta2, eps, clip, seed);
    }

    public TrainSettings withSeed(long s) {
        return new TrainSettings(steps, lr, warmup, minLrFraction, weightDecay, beta1, beta2, eps, clip, s);
    }

    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("steps", steps);
        o.addProperty("lr", lr);
        o.addProperty("warmup", warmup);
        o.addProperty("min_lr_fraction", minLrFraction);
        o.addProperty("weight_decay", weightDecay);
        o.addProperty("beta1", beta1);
        o.addProperty("beta2", beta2);
        o.addProperty("eps", eps);
        o.addProperty("clip", clip);
        o.addProperty("seed", seed);
        return o;
    }

    public static TrainSettings fromJson(String json) {
        JsonObject o = JsonParser.parseString(json).getAsJsonObject();
        return new TrainSettings(o.get("steps").getAsInt(), o.get("lr").getAsDouble(), o.get("warmup").getAsInt(),
                o.get("min_lr_fraction").getAsDouble(), o.get("weight_decay").getAsDouble(),
                o.get("beta1").getAsDouble(), o.get("beta2").getAsDouble(), o.get("eps").getAsDouble(),
                o.get("clip").getAsDouble(), o.get("seed").getAsLong());
    }
}
