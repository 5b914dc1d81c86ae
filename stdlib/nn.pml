# nn — the standard layers, activations and losses, written in PML over the
# built-in primitives. Parameter names and layouts follow PyTorch, so a model's
# state dict reads like one from torch.nn: `blocks.3.attn.qkv.weight` is [3C, C].

# --- layers ------------------------------------------------------------------

# x[..., in] -> [..., out]: x @ weightᵀ + bias, weight [out, in], bias [out].
fn linear(x, out, has_bias = true) {
    param weight: [out, dim(x, -1)] = kaiming_uniform
    y = x @ transpose(weight)
    if has_bias {
        param bias: [out] = zeros
        y = y + bias
    }
    return y
}

# i32 idx[...] -> [..., dim]: rows of a learned table weight [num, dim].
fn embedding(idx, num, dim) {
    param weight: [num, dim] = normal(0.02)
    return gather(weight, idx)
}

# x[..., C] -> [..., C]: normalise the last axis to mean 0, variance 1, then scale
# by weight [C] and shift by bias [C].
fn layernorm(x, eps = 1e-5) {
    param weight: [dim(x, -1)] = ones
    param bias: [dim(x, -1)] = zeros
    xc = x - mean(x, -1, keepdim = true)
    variance = mean(xc * xc, -1, keepdim = true)
    return xc * rsqrt(variance + eps) * weight + bias
}

# x[..., C] -> [..., C]: divide by the root mean square of the last axis, then
# scale by weight [C].
fn rmsnorm(x, eps = 1e-6) {
    param weight: [dim(x, -1)] = ones
    return x * rsqrt(mean(x * x, -1, keepdim = true) + eps) * weight
}

# --- activations (relu, sigmoid, tanh, gelu_tanh and dropout are primitives) --

# x -> same shape: GELU, tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
# A primitive: one pass over x forward and one backward, where the same formula in
# element-wise ops kept its intermediates; it gives that formula's bits, op for op.
fn gelu(x) {
    return gelu_tanh(x)
}

# x -> same shape: GELU, exact form 0.5·x·(1 + erf(x/√2)).
fn gelu_erf(x) {
    return 0.5 * x * (1.0 + erf(x * (1.0 / sqrt(2.0))))
}

# x -> same shape: SiLU (swish), x·sigmoid(x).
fn silu(x) {
    return x * sigmoid(x)
}

# x -> same shape: exp(x) / Σ exp(x) along `axis`, computed after subtracting the max.
fn softmax(x, axis = -1) {
    e = exp(x - max(x, axis, keepdim = true))
    return e / sum(e, axis, keepdim = true)
}

# x -> same shape: x - log Σ exp(x) along `axis`, computed after subtracting the max.
fn log_softmax(x, axis = -1) {
    z = x - max(x, axis, keepdim = true)
    return z - log(sum(exp(z), axis, keepdim = true))
}

# --- blocks ------------------------------------------------------------------

# x[..., C] -> [..., C]: linear to `hidden` (fc), gelu, linear back to C (proj), dropout.
fn mlp(x, hidden, dropout_p = 0.0) {
    h = gelu(linear(x, hidden) as fc)
    return dropout(linear(h, dim(x, -1)) as proj, dropout_p)
}

# x[B, T, C] -> [B, T, C]: multi-head self-attention where position t sees only
# positions ≤ t; one qkv projection [3C, C], heads of width C / heads, output proj.
fn causal_self_attention(x, heads, dropout_p = 0.0) {
    B = dim(x, 0)
    T = dim(x, 1)
    C = dim(x, 2)
    assert C % heads == 0, "causal_self_attention: the width (last axis of x) must be a multiple of heads"
    hd = C / heads

    qkv = linear(x, 3 * C) as qkv                                    # [B, T, 3C]
    # fused: the heads split and merged in place, dropout on the attention weights
    # drawn inside, no [B, heads, T, T] value and no permuted copy made
    # (docs/language.md, `attention_qkv`)
    y = attention_qkv(qkv, heads, scale = 1.0 / sqrt(float(hd)), dropout = dropout_p)  # [B, T, C]
    y = linear(y, C) as proj
    return dropout(y, dropout_p)
}

# x[B, T, C] -> [B, T, C]: a pre-LayerNorm transformer block (GPT-2):
# x + attn(ln_1(x)), then x + mlp(ln_2(x)) with a 4C hidden layer.
fn block(x, heads, dropout_p = 0.0) {
    C = dim(x, -1)
    x = x + causal_self_attention(layernorm(x) as ln_1, heads, dropout_p) as attn
    x = x + mlp(layernorm(x) as ln_2, 4 * C, dropout_p) as mlp
    return x
}

# --- losses (each returns an f32[] scalar) -----------------------------------

# logits[..., V], i32 labels[...] -> []: mean over positions of -log softmax(logits)[label].
# xent is that per position, fused: its backward recomputes the softmax from the logits,
# so no [..., V] probabilities are kept between the passes.
fn cross_entropy(logits, labels: i32) {
    return mean(xent(logits, labels))
}

# pred, target of one shape -> []: mean of (pred - target)².
fn mse(pred, target) {
    d = pred - target
    return mean(d * d)
}

# student_logits, teacher_logits [..., V] -> []: distillation loss
#   T² · mean over rows of Σ_v p_v · (log p_v - log q_v),
#   p = softmax(teacher / T), q = softmax(student / T), T = temperature,
# i.e. KL(p ‖ q) scaled by T² so its gradients keep their size as T grows.
fn kl_div(student_logits, teacher_logits, temperature = 1.0) {
    log_p = log_softmax(teacher_logits / temperature)
    log_q = log_softmax(student_logits / temperature)
    kl = sum(exp(log_p) * (log_p - log_q), -1)
    return mean(kl) * (temperature * temperature)
}

# a, b [..., D] -> []: mean over positions of 1 - cos(a, b) along the last axis, with
# cos = a·b / sqrt(max(|a|²·|b|², eps²)) (PyTorch's cosine_similarity).
fn cosine_distance(a, b, eps = 1e-8) {
    ab = sum(a * b, -1)
    norms = sum(a * a, -1) * sum(b * b, -1)
    return mean(1.0 - ab * rsqrt(maximum(norms, eps * eps)))
}

# loss [], student, teacher [..., D] -> []: loss plus one hidden-state term of a
# distill block's match(...): weight · mse(student, teacher), or with cosine
# weight · cosine_distance(student, teacher).
fn hidden_match(loss, student, teacher, weight = 1.0, cosine = false) {
    if cosine {
        return loss + weight * cosine_distance(student, teacher)
    }
    return loss + weight * mse(student, teacher)
}

# student_logits, teacher_logits [..., V], hard_loss [] -> []: the loss `distill`
# trains a student with (docs/language.md):
#   alpha · kl_div(student, teacher, temperature) + (1 - alpha) · hard_loss,
# where hard_loss is the train block's loss of the student against the labels.
fn kd_loss(student_logits, teacher_logits, hard_loss, temperature = 1.0, alpha = 0.5) {
    return alpha * kl_div(student_logits, teacher_logits, temperature) + (1.0 - alpha) * hard_loss
}
