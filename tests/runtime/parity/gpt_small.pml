# A small GPT for the PyTorch parity test (parity_gpt.py): same layers as
# examples/gpt.pml, dropout off (its masks cannot match PyTorch's), f32, two stages.

import "nn"

const VOCAB = 65
const WIDTH = 32
const HEADS = 2
const LAYERS = 2
const CONTEXT = 16

model gpt(idx: i32[B, T]) -> f32[B, T, VOCAB] {
    place = auto(stages = 2)
    tok = embedding(idx, VOCAB, WIDTH) as wte
    pos = embedding(arange(dim(idx, 1)), CONTEXT, WIDTH) as wpe
    h = dropout(tok + pos, 0.0)
    repeat LAYERS { h = block(h, HEADS, dropout_p = 0.0) as blocks }
    h = layernorm(h) as ln_f
    return linear(h, VOCAB, has_bias = false) as lm_head
}

train gpt {
    data = markov(vocab = VOCAB, order = 2, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-3, weight_decay = 0.1)
    batch = 8, microbatches = 2
    schedule = 1f1b
    place = cpu
    steps = 10
    T = 16
}
