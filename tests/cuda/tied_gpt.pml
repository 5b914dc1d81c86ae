# GPT-2's weight tying on the CUDA backend: the token table is gathered on the first
# of four stages and read again, transposed, by the output projection on the last,
# which holds a copy; before each step the copy's gradient and the table's are summed
# on the device (cuBLAS axpy, peer copies between GPUs), so the two stay equal and
# training matches the CPU backend's, which sums them on the host.
import "nn"

model gpt(idx: i32[B, T]) -> f32[B, T, 32] {
    place = auto(stages = 4)
    param wte: [32, 64] = normal(0.02)
    h = gather(wte, idx)
    h = h + embedding(arange(dim(idx, 1)), 16, 64) as wpe
    repeat 2 { h = block(h, 4) as blocks }
    h = layernorm(h) as ln_f
    return h @ transpose(wte)
}

train gpt {
    data = markov(vocab = 32, order = 1, seed = 3)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    grad_clip = 0.5
    batch = 8, microbatches = 4
    place = [cuda:0, cuda:1, cuda:2, cuda:3]
    T = 16
    steps = 1
}
