# Selective recomputation on the CUDA backend: each block's attention (dropout
# included) runs again in the backward pass, from the block's input, as ordinary
# kernels of the backward graph; they compile with NVRTC and, on a GPU, train as the
# CPU does.
import "nn"

model gpt(idx: i32[B, T]) -> f32[B, T, 32] {
    place = auto(stages = 2)
    h = embedding(idx, 32, 64) as wte
    h = h + embedding(arange(dim(idx, 1)), 16, 64) as wpe
    repeat 2 { h = block(h, 4, dropout_p = 0.1) as blocks }
    return linear(layernorm(h) as ln_f, 32, has_bias = false) as lm_head
}

train gpt {
    data = markov(vocab = 32, order = 1, seed = 3)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 8, microbatches = 4
    T = 16
    steps = 1
    recompute blocks.*.attn
}
