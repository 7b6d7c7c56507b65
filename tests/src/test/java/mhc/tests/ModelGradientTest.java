package mhc.tests;

import mhc.engine.Config;
import mhc.engine.ParamSpec;
import mhc.engine.model.f64.Model;
import mhc.engine.model.f64.Ops;
import mhc.engine.model.f64.Params;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Locale;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole-model finite-difference checks in double precision, on the double twin of the model
 * (the same source with float replaced by double; see tests/pom.xml). Central differences
 * with h = 1e-5 have truncation error ~h^2 and rounding ~1e-16/h, so analytic and numeric
 * derivatives agree to ~1e-9 when the backward is right; a wrong term shows as 1e-3 or more.
 */
class ModelGradientTest {
    static final double H = 1e-5;
    static final double ATOL = 1e-8;
    static final double RTOL = 1e-5;

    @ParameterizedTest(name = "{0}/{1}")
    @CsvSource({"residual,dense", "residual,moe", "hc,dense", "hc,moe", "mhc,dense", "mhc,moe"})
    void gradientMatchesFiniteDifferences(String connection, String ffn) {
        check(connection, ffn, new Ops());
    }

    /** MoE in the packed form that device backends take (grouped expert products, fixed shapes). */
    @ParameterizedTest(name = "{0}/moe packed")
    @CsvSource({"residual", "mhc"})
    void packedMoeGradientMatchesFiniteDifferences(String connection) {
        check(connection, "moe", new Ops() {
            @Override
            public boolean prefersFixedShapes() {
                return true;
            }
        });
    }

    private static void check(String connection, String ffn, Ops ops) {
        Config cfg = Models.small(connection, ffn);
        Params params = Models.toDouble(Models.perturbed(cfg, 7));
        int B = 2, T = 5;
        int[] tokens = Models.tokens(B, T, 11);
        Model model = new Model(params, ops);
        model.forward(tokens, B, T);
        model.backward();
        Random pick = new Random(3);
        int checked = 0;
        for (ParamSpec spec : params.specs()) {
            if (!spec.trainable() || spec.size() == 0) {
                continue;
            }
            double[] w = params.get(spec.name());
            double[] g = model.grads().get(spec.name());
            // Every entry of the small tensors, a random sample of the large ones.
            int samples = (int) Math.min(spec.size(), 12);
            for (int s = 0; s < samples; s++) {
                int i = spec.size() <= 12 ? s : pick.nextInt(w.length);
                double orig = w[i];
                w[i] = orig + H;
                double lp = model.forward(tokens, B, T);
                w[i] = orig - H;
                double lm = model.forward(tokens, B, T);
                w[i] = orig;
                double fd = (lp - lm) / (2 * H);
                double err = Math.abs(fd - g[i]);
                assertTrue(err <= ATOL + RTOL * Math.abs(fd), String.format(Locale.ROOT,
                        "%s/%s: d loss / d %s[%d]: backward %.10g, finite difference %.10g (diff %.2e)",
                        connection, ffn, spec.name(), i, g[i], fd, err));
                checked++;
            }
        }
        assertTrue(checked > 50, "only " + checked + " entries checked");
    }
}
