# GPT-2's tied embedding on four automatic stages: the token table `wte` is declared
# on stage 0 (read by the gather) and read again by the output projection on stage 3,
# which holds a copy of it (listed after its layers as "tied", counted in its
# parameters and optimizer state, and once in the model's total).
import "nn"
model lm(idx: i32[B, T]) -> f32[B, T, 32] {
    place = auto(stages = 4)
    param wte: [32, 16] = normal(0.02)
    h = gather(wte, idx)
    repeat 4 { h = block(h, 2) as blocks }
    h = layernorm(h) as ln_f
    return h @ transpose(wte)
}
train lm {
    data = markov(vocab = 32, order = 2, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 16, microbatches = 4
    place = cpu
    T = 8
}
