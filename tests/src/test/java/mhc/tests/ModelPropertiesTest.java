package mhc.tests;

import mhc.engine.Checkpoint;
import mhc.engine.Config;
import mhc.engine.Init;
import mhc.engine.ParamSpec;
import mhc.engine.model.Gains;
import mhc.engine.model.Model;
import mhc.engine.model.Params;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Properties of the model that follow from MODEL.md's definitions. */
class ModelPropertiesTest {

    /**
     * HC's init is the residual network: Hpre one-hot, Hpost = 1, Hres = I and every stream starts
     * equal, so every stream carries the residual stream. Same sublayer weights, same loss.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"dense", "moe"})
    void hcAtInitComputesTheResidualLoss(String ffn) {
        Config hcCfg = Config.preset("tiny").withAll(Map.of("connection", "hc", "ffn", ffn, "width", 32,
                "seq_len", 16, "experts", 4, "expert_hidden", 24));
        Config resCfg = hcCfg.with("connection", "residual");
        Params hc = Init.initialize(hcCfg, 5);
        Params res = new Params(resCfg);
        for (String name : res.names()) {
            System.arraycopy(hc.get(name), 0, res.get(name), 0, res.get(name).length);
        }
        int[] tokens = Models.tokens(3, 16, 9);
        double lossHc = new Model(hc).forward(tokens, 3, 16);
        double lossRes = new Model(res).forward(tokens, 3, 16);
        assertEquals(lossRes, lossHc, 1e-6 * lossRes, "hc at init vs residual");
    }

    @Test
    void residualGainsAreOne() {
        Config cfg = Models.small("residual", "dense");
        Model m = new Model(Models.perturbed(cfg, 3));
        m.forward(Models.tokens(2, 5, 4), 2, 5);
        Gains g = m.gains();
        for (int l = 0; l < cfg.sublayers(); l++) {
            assertEquals(1.0, g.forward()[l], 0.0);
            assertEquals(1.0, g.backward()[l], 0.0);
            assertEquals(1.0, g.compositeForward()[l], 0.0);
            assertEquals(1.0, g.compositeBackward()[l], 0.0);
        }
    }

    /**
     * mHC's Hres is doubly stochastic: row sums are exactly 1 (forward gain 1), column sums
     * 1 within the Sinkhorn error, and so are products of such matrices.
     */
    @Test
    void mhcGainsStayNearOne() {
        Config cfg = Models.small("mhc", "dense");
        Model m = new Model(Models.perturbed(cfg, 3));
        m.forward(Models.tokens(2, 5, 4), 2, 5);
        Gains g = m.gains();
        for (int l = 0; l < cfg.sublayers(); l++) {
            assertEquals(1.0, g.forward()[l], 1e-6, "forward gain of layer " + l);
            assertEquals(1.0, g.compositeForward()[l], 1e-5, "composite forward gain of layer " + l);
            assertEquals(1.0, g.backward()[l], 1e-2, "backward gain of layer " + l);
        }
    }

    /** HC's Hres is unconstrained: with perturbed weights its composite gain leaves 1. */
    @Test
    void hcGainsAreNotConstrained() {
        Config cfg = Models.small("hc", "dense");
        Model m = new Model(Models.perturbed(cfg, 3));
        m.forward(Models.tokens(2, 5, 4), 2, 5);
        assertTrue(m.gains().maxCompositeForward() > 1.1, "hc composite gain " + m.gains().maxCompositeForward());
    }

    @ParameterizedTest(name = "{0}/{1}")
    @CsvSource({"residual,dense", "hc,moe", "mhc,dense", "mhc,moe"})
    void saveLoadRoundTripKeepsTheLoss(String connection, String ffn, @TempDir Path dir) {
        Config cfg = Models.small(connection, ffn);
        Params p = Init.initialize(cfg, 17);
        int[] tokens = Models.tokens(2, 6, 1);
        double before = new Model(p).forward(tokens, 2, 6);
        Path file = dir.resolve("ck.safetensors");
        Checkpoint.save(file, p);
        Params q = Checkpoint.load(file);
        assertEquals(cfg, q.config());
        for (ParamSpec s : p.specs()) {
            assertArrayEquals(p.get(s.name()), q.get(s.name()), s.name());
        }
        assertEquals(before, new Model(q).forward(tokens, 2, 6), 0.0, "loss after reload");
    }

    /** The spec's init: the mhc bias pattern of sublayer l, and Hres's diagonal sinkhorn(+-3) ~ 0.9926. */
    @Test
    void mhcInitFollowsTheSpec() {
        Config cfg = Config.preset("tiny");
        Params p = Init.initialize(cfg, 1);
        int n = cfg.n();
        float[] bias = p.get("blocks.1.ffn.mhc.bias"); // sublayer 3: pre +3 at stream 3
        for (int j = 0; j < n; j++) {
            assertEquals(j == 3 ? 3f : -3f, bias[j]);
            assertEquals(0f, bias[n + j]);
        }
        Model m = new Model(p);
        m.forward(Models.tokens(1, 8, 2), 1, 8);
        float[] hres = m.hres(0);
        assertEquals(0.9926, hres[0], 1e-4);
        assertEquals(1.0, m.gains().forward()[0], 1e-6);
    }

    /**
     * MoE's packed form (what a device backend runs: all routed rows in one block, grouped
     * expert products, no size that depends on the routing) gives the same bits as the
     * per-expert form: every output sums the same terms in the same order. Also the same loads.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"residual", "hc", "mhc"})
    void packedMoeEqualsPerExpertMoeBitForBit(String connection) {
        Config cfg = Models.small(connection, "moe");
        Params p = Models.perturbed(cfg, 13);
        int[] tokens = Models.tokens(3, 7, 2);
        Model perExpert = new Model(p);
        Model packed = new Model(p, new mhc.engine.model.Ops() {
            @Override
            public boolean prefersFixedShapes() {
                return true;
            }
        });
        assertEquals(perExpert.forward(tokens, 3, 7), packed.forward(tokens, 3, 7));
        perExpert.backward();
        packed.backward();
        for (String name : p.names()) {
            assertArrayEquals(perExpert.grads().get(name), packed.grads().get(name), name);
        }
        for (int l = 1; l < cfg.sublayers(); l += 2) {
            assertArrayEquals(perExpert.expertLoads(l), packed.expertLoads(l), "loads of sublayer " + l);
            assertTrue(java.util.Arrays.stream(perExpert.expertLoads(l)).min().getAsInt() >= 0);
        }
    }
}
