# Interleaved 1F1B on the CUDA backend: two stage devices of two chunks each (chunk c on
# device c mod 2), each chunk a stage of its device's GPU with its own stream; on a GPU
# it trains as the CPU backend does.
import "nn"

model gpt(idx: i32[B, T]) -> f32[B, T, 32] {
    place = auto(stages = 2, chunks = 2)
    h = embedding(idx, 32, 64) as wte
    h = h + embedding(arange(dim(idx, 1)), 16, 64) as wpe
    repeat 4 { h = block(h, 4) as blocks }
    return linear(layernorm(h) as ln_f, 32, has_bias = false) as lm_head
}

train gpt {
    data = markov(vocab = 32, order = 1, seed = 3)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 8, microbatches = 4
    schedule = interleaved_1f1b
    place = [cuda:0, cuda:1]
    T = 16
    steps = 1
}
