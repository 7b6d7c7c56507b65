package mhc.libtorch;

import mhc.engine.Config;
import mhc.engine.ParamSpec;
import mhc.engine.model.Params;
import mhc.engine.train.TrainSettings;
import mhc.kernels.Rope;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.OptimizerParamGroup;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * MODEL.md's model written the way a PyTorch user would write it, in libtorch tensor operations
 * with autograd (the C++ API through the JavaCPP presets): the baseline that the engine's
 * training step is compared with. Dense FFN; {@code residual} and {@code mhc} connections.
 *
 * <p>The mHC connection is the straightforward composition: the projection as one batched
 * matmul, the sigmoids, Sinkhorn-Knopp as {@code sinkhorn_iters} pairs of divisions by sums
 * (autograd keeps every iterate for the backward), the aggregate and the mix as small
 * batched matmuls over the n streams. This is the unfused form whose cost the mHC paper
 * reports (about +56% over residual in its PyTorch measurement).
 *
 * <p>The training step is {@code zero_grad}, forward, {@code backward}, {@code clip_grad_norm_}
 * and libtorch's AdamW with the engine's settings: decoupled weight decay on the tensors that
 * {@link ParamSpec#decay()} marks, the same warmup and cosine schedule. Temporary tensors of a
 * step live in a {@link PointerScope} and are freed at its end; the parameters, their gradients
 * and the optimizer state live until {@link #close()}.
 */
final class TorchModel implements AutoCloseable {
    private final Config cfg;
    private final TrainSettings settings;
    private final Map<String, Tensor> params = new LinkedHashMap<>();
    private final TensorVector all = new TensorVector();
    private final Tensor cos, sin;
    private final AdamW optimizer;
    private int step;

    /** A copy of {@code initial} as libtorch parameters. */
    TorchModel(Params initial, TrainSettings settings) {
        this.cfg = initial.config();
        this.settings = settings;
        if (cfg.isMoe() || !(cfg.connection().equals("residual") || cfg.connection().equals("mhc"))) {
            throw new IllegalArgumentException("the libtorch model has a dense FFN and residual or mhc connections; got "
                    + cfg.ffn() + " and " + cfg.connection());
        }
        TensorVector decay = new TensorVector(), noDecay = new TensorVector();
        for (ParamSpec s : initial.specs()) {
            long[] shape = new long[s.shape().length];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = s.shape()[i];
            }
            Tensor t = Tensor.create(initial.get(s.name()).clone(), shape);
            t.set_requires_grad(true);
            params.put(s.name(), t);
            all.push_back(t);
            (s.decay() ? decay : noDecay).push_back(t);
        }
        // The engine's rotary tables, so that both rotate by the same floats.
        int T = cfg.seqLen(), D = cfg.width() / cfg.heads(), half = D / 2;
        float[] c = new float[T * half], s = new float[T * half];
        Rope.ropeTables(c, s, T, D);
        cos = Tensor.create(c, T, half);
        sin = Tensor.create(s, T, half);
        optimizer = new AdamW(decay, options(settings.weightDecay()));
        optimizer.add_param_group(new OptimizerParamGroup(noDecay, options(0)));
    }

    private AdamWOptions options(double weightDecay) {
        AdamWOptions o = new AdamWOptions(settings.lr());
        o.betas().put(0, settings.beta1()).put(1, settings.beta2());
        o.eps().put(settings.eps());
        o.weight_decay().put(weightDecay);
        return o;
    }

    /** Forward and backward of one batch (B rows of T+1 tokens); the gradients replace the previous ones. Returns the mean loss. */
    double forwardBackward(int[] batch) {
        try (PointerScope ignored = new PointerScope()) {
            optimizer.zero_grad();
            Tensor loss = loss(batch);
            loss.backward();
            return loss.item_float();
        }
    }

    /** One training step as the engine's: forward, backward, clipping, AdamW at the schedule's rate. Returns the loss. */
    double trainStep(int[] batch) {
        try (PointerScope ignored = new PointerScope()) {
            optimizer.zero_grad();
            Tensor loss = loss(batch);
            loss.backward();
            torch.clip_grad_norm_(all, settings.clip());
            double lr = settings.lrAt(step++);
            for (long g = 0; g < optimizer.param_groups().size(); g++) {
                optimizer.param_groups().get(g).options().set_lr(lr);
            }
            optimizer.step();
            return loss.item_float();
        }
    }

    /** The gradient of a parameter after {@link #forwardBackward}, copied out. */
    float[] grad(String name) {
        Tensor p = params.get(name);
        float[] out = new float[(int) p.numel()];
        try (PointerScope ignored = new PointerScope()) {
            FloatBuffer b = p.grad().contiguous().createBuffer();
            b.get(out);
        }
        return out;
    }

    List<String> names() {
        return new ArrayList<>(params.keySet());
    }

    private Tensor p(String name) {
        return params.get(name);
    }

    private Tensor loss(int[] batch) {
        int B = cfg.batchSize(), T = cfg.seqLen(), C = cfg.width(), V = cfg.vocab(), n = cfg.n();
        if (batch.length != B * (T + 1)) {
            throw new IllegalArgumentException("batch of " + batch.length + " tokens, expected " + B * (T + 1));
        }
        long[] in = new long[B * T], target = new long[B * T];
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                in[b * T + t] = batch[b * (T + 1) + t];
                target[b * T + t] = batch[b * (T + 1) + t + 1];
            }
        }
        Tensor tokens = Tensor.create(in, B * T), targets = Tensor.create(target, B * T);
        Tensor e = torch.embedding(p("embed"), tokens).view(B, T, C);
        boolean mhc = cfg.connection().equals("mhc");
        Tensor x = mhc ? e.unsqueeze(2).expand(B, T, n, C) : e;               // [B,T,n,C] or [B,T,C]
        for (int l = 0; l < cfg.sublayers(); l++) {
            String pre = ParamSpec.sublayerPrefix(l);
            x = mhc ? mhcSublayer(x, l, pre) : x.add(sublayer(rms(x, p(pre + "norm")), l, pre));
        }
        Tensor u = mhc ? x.mean(2) : x;
        Tensor logits = rms(u, p("final_norm")).matmul(p("head"));
        return torch.cross_entropy(logits.view(B * T, V), targets);
    }

    /** One mHC sublayer on the streams x [B,T,n,C]: coefficients, aggregate, sublayer, mix. */
    private Tensor mhcSublayer(Tensor x, int l, String pre) {
        int B = cfg.batchSize(), T = cfg.seqLen(), C = cfg.width(), n = cfg.n();
        Tensor v = x.reshape(B, T, n * C);
        Tensor r = v.square().mean(new long[]{-1}, true, new ScalarTypeOptional()).add(new Scalar(1e-6)).sqrt(); // [B,T,1]
        Tensor h = v.matmul(p(pre + "mhc.phi")).div(r);                       // [B,T,n*n+2n]
        Tensor alpha = p(pre + "mhc.alpha"), bias = p(pre + "mhc.bias");
        Tensor z = torch.cat(new TensorVector(
                h.narrow(-1, 0, n).mul(alpha.narrow(0, 0, 1)),
                h.narrow(-1, n, n).mul(alpha.narrow(0, 1, 1)),
                h.narrow(-1, 2 * n, n * n).mul(alpha.narrow(0, 2, 1))), -1).add(bias);
        Tensor hPre = z.narrow(-1, 0, n).sigmoid();                            // [B,T,n]
        Tensor hPost = z.narrow(-1, n, n).sigmoid().mul(new Scalar(2.0));
        Tensor zRes = z.narrow(-1, 2 * n, n * n).reshape(B, T, n, n);
        Tensor m = zRes.sub(zRes.amax(new long[]{-2, -1}, true)).exp();
        for (int it = 0; it < cfg.sinkhornIters(); it++) {
            m = m.div(m.sum(new long[]{-2}, true, new ScalarTypeOptional()));   // columns
            m = m.div(m.sum(new long[]{-1}, true, new ScalarTypeOptional()));   // rows
        }
        Tensor u = hPre.unsqueeze(-2).matmul(x).squeeze(-2);                   // [B,T,C]
        Tensor y = sublayer(rms(u, p(pre + "norm")), l, pre);
        return m.matmul(x).add(hPost.unsqueeze(-1).mul(y.unsqueeze(-2)));
    }

    private Tensor rms(Tensor x, Tensor w) {
        return torch.rms_norm(x, new long[]{cfg.width()}, new TensorOptional(w), new DoubleOptional(1e-6));
    }

    /** Attention (even l) or the dense SwiGLU FFN (odd l) on a [B,T,C]. */
    private Tensor sublayer(Tensor a, int l, String pre) {
        int B = cfg.batchSize(), T = cfg.seqLen(), C = cfg.width(), H = cfg.heads(), D = C / H;
        if (l % 2 == 1) {
            return torch.silu(a.matmul(p(pre + "w1"))).mul(a.matmul(p(pre + "w3"))).matmul(p(pre + "w2"));
        }
        Tensor q = rope(a.matmul(p(pre + "wq")).view(B, T, H, D).transpose(1, 2));
        Tensor k = rope(a.matmul(p(pre + "wk")).view(B, T, H, D).transpose(1, 2));
        Tensor v = a.matmul(p(pre + "wv")).view(B, T, H, D).transpose(1, 2);
        Tensor o = torch.scaled_dot_product_attention(q, k, v, new TensorOptional(), 0.0, true, new DoubleOptional(), false);
        return o.transpose(1, 2).reshape(B, T, C).matmul(p(pre + "wo"));
    }

    /** Rotary embedding of [B,H,T,D]: the halves (x_i, x_{i+D/2}) rotated by t * theta_i. */
    private Tensor rope(Tensor x) {
        int half = cfg.width() / cfg.heads() / 2;
        Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
        return torch.cat(new TensorVector(x1.mul(cos).sub(x2.mul(sin)), x1.mul(sin).add(x2.mul(cos))), -1);
    }

    @Override
    public void close() {
        optimizer.close();
        for (Tensor t : params.values()) {
            t.close();
        }
        all.close();
        cos.close();
        sin.close();
    }
}
