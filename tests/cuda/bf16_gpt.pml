# precision = bf16 on the CUDA backend: 16-bit activations, sends and weight copies,
# f32 master weights, gradients and optimizer state; kernels read and write bf16 and
# compute in f32 (the fused attention on the tensor cores), and the products run on cuBLAS's
# bf16 paths with f32 accumulation. On a GPU it trains as the CPU backend does in bf16,
# within bf16's rounding.
import "nn"

model gpt(idx: i32[B, T]) -> f32[B, T, 32] {
    place = auto(stages = 2)
    h = embedding(idx, 32, 64) as wte
    h = h + embedding(arange(dim(idx, 1)), 16, 64) as wpe
    repeat 2 { h = block(h, 4) as blocks }
    return linear(layernorm(h) as ln_f, 32, has_bias = false) as lm_head
}

train gpt {
    data = markov(vocab = 32, order = 1, seed = 3)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    precision = bf16
    batch = 8, microbatches = 4
    place = [cuda:0, cuda:1]
    T = 16
    steps = 1
}
