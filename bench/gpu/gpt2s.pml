# bench/gpu/gpt2s.pml — the GPT example scaled to GPT-2 small's body (12 layers, 768
# wide, 12 heads, sequences of 1024) for bench/gpu/run.sh; characters (vocabulary 65)
# from the example's Markov source, so no data is downloaded. 86 M parameters; 8
# sequences per step in 4 micro-batches of 2, over 4 stages (f32: ~5 TFLOP a step).

import "nn"

const VOCAB = 65
const WIDTH = 768
const HEADS = 12
const LAYERS = 12
const CONTEXT = 1024

model gpt2s(idx: i32[B, T]) -> f32[B, T, VOCAB] {
    place = auto(stages = 4)
    tok = embedding(idx, VOCAB, WIDTH) as wte
    pos = embedding(arange(dim(idx, 1)), CONTEXT, WIDTH) as wpe
    h = tok + pos
    repeat LAYERS { h = block(h, HEADS) as blocks }
    h = layernorm(h) as ln_f
    return linear(h, VOCAB, has_bias = false) as lm_head
}

train gpt2s {
    data = markov(vocab = VOCAB, order = 2, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-4, weight_decay = 0.1)
    grad_clip = 1.0
    batch = 8, microbatches = 4
    schedule = 1f1b
    steps = 20
    T = 1024
}
