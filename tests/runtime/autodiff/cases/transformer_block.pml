# The standard library's pre-LN transformer block end to end: layernorm, causal
# multi-head attention, gelu MLP, residuals, then an lm head and cross-entropy.
import "nn"

model m(idx: i32[B, T]) -> f32[B, T, 11] {
    h = embedding(idx, 11, 8) as wte
    h = block(h, 2) as blk
    return linear(layernorm(h) as ln_f, 11) as head
}

train m {
    data = markov(vocab = 11, order = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 2
    T = 4
}
