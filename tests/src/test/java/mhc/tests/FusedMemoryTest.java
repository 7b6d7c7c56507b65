package mhc.tests;

import mhc.engine.Config;
import mhc.engine.jvm.FusedOps;
import mhc.engine.model.Model;
import mhc.engine.model.Params;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Activation memory per token ({@link Model#activationBytes()}: what the model keeps from forward
 * to backward) of each connection at gpt-small's shape (C=256, L=6, H=4, n=4, dense F=688,
 * T=256, B=1). Checks {@code activationBytes} against the count by hand of every kept array,
 * prints the table, and asserts the bound: mHC keeps, over the residual baseline, at
 * most 2L x (n*C stream state + 4 n*n coefficient floats) floats per token.
 */
class FusedMemoryTest {

    @Test
    void activationBytesPerToken() {
        Map<String, Double> perToken = new LinkedHashMap<>();
        Config base = Config.preset("gpt-small").with("ffn", "dense");
        int C = base.width(), L2 = base.sublayers(), H = base.heads(), F = base.ffnHidden(), V = base.vocab();
        int B = 1, T = 256, N = B * T;
        for (String connection : new String[]{"residual", "hc", "mhc"}) {
            Config cfg = base.with("connection", connection);
            int n = cfg.n(), nn = n * n, M = nn + 2 * n;
            Model m = new Model(new Params(cfg), new FusedOps());
            assertEquals(0, m.activationBytes(), "activationBytes before any forward");
            m.forward(Models.tokens(B, T, 5), B, T);
            long bytes = m.activationBytes();
            // By hand, floats (and 4-byte ints) per token:
            long perTok = (long) (L2 + 1) * n * C              // xs: the stream states
                    + (long) L2 * (2 * n + nn + 3 * C + 1)     // Sub: hpre, hpost, hres, u, rstd, a, y
                    + (long) (L2 / 2) * (6 * C + (long) H * T) // attention: qraw, kraw, q, k, v, o; att (H*T per token)
                    + (long) (L2 / 2) * 3 * F                  // dense FFN: h1, h3, g
                    + 2 + 2 * C + 1 + 2L * V + 1;              // inputs, targets, uf, rstdf, af, logits, probs, losses
            if (connection.equals("mhc")) {
                perTok += (long) L2 * (1 + M + nn);          // rms, h, zres
            } else if (connection.equals("hc")) {
                perTok += (long) L2 * (n * C + 3 * n + nn);  // xbar, xrstd, tpre, tpost, tres
            }
            assertEquals(perTok * 4 * N, bytes, connection + ": activationBytes vs the count by hand");
            perToken.put(connection, (double) bytes / N);
        }
        Config mc = base.with("connection", "mhc");
        int n = mc.n(), nn = n * n;
        double res = perToken.get("residual");
        double boundFloats = (double) L2 * (n * C + 4 * nn);
        System.out.printf(Locale.ROOT, "Activation bytes per token, gpt-small (C=%d, L=%d, H=%d, n=%d, dense F=%d, T=%d, B=%d):%n",
                C, L2 / 2, H, n, F, T, B);
        System.out.printf(Locale.ROOT, "  %-9s %12s %14s %12s%n", "connection", "bytes/token", "extra vs res", "x residual");
        for (Map.Entry<String, Double> e : perToken.entrySet()) {
            System.out.printf(Locale.ROOT, "  %-9s %12.0f %14.0f %12.3f%n", e.getKey(), e.getValue(), e.getValue() - res,
                    e.getValue() / res);
        }
        System.out.printf(Locale.ROOT, "  bound on mhc's extra: 2L x (n*C + 4 n*n) floats = %.0f bytes/token%n", 4 * boundFloats);
        double mhcExtra = perToken.get("mhc") - res;
        assertTrue(mhcExtra <= 4 * boundFloats, String.format(Locale.ROOT,
                "mhc keeps %.0f bytes/token more than residual, over the bound %.0f", mhcExtra, 4 * boundFloats));
        // HC as the engine allocates it keeps xbar (n*C per sublayer) as well; FusedOps never reads
        // or writes it, so what the fused HC path needs is within the same bound.
        double hcExtra = perToken.get("hc") - res;
        double xbar = 4.0 * L2 * n * C;
        System.out.printf(Locale.ROOT, "  hc extra without xbar (unused by FusedOps): %.0f bytes/token%n", hcExtra - xbar);
        assertTrue(hcExtra - xbar <= 4 * boundFloats, "hc without xbar over the bound");
    }
}
