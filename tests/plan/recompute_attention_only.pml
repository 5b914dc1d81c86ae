# Megatron-style selective recomputation: only the attention of each block is
# recomputed in the backward pass, from its input; each stage shows what it keeps per
# micro-batch with and without recomputing, and what recomputing costs.
import "nn"
model gpt(idx: i32[B, T]) -> f32[B, T, 65] {
    place = auto(stages = 2)
    h = embedding(idx, 65, 64) as wte
    h = h + embedding(arange(dim(idx, 1)), 128, 64) as wpe
    repeat 4 { h = block(h, 4, 0.1) as blocks }
    return linear(layernorm(h) as ln_f, 65, has_bias = false) as lm_head
}
train gpt {
    data = markov(vocab = 65, order = 2, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 16, microbatches = 4, schedule = 1f1b
    place = [cpu, cpu]
    steps = 100, T = 128
    recompute blocks.*.attn
}
