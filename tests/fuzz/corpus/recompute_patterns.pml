import "nn"

model lm(idx: i32[B, T]) -> f32[B, T, 65] {
    h = embedding(idx, 65, 32) as wte
    repeat 2 { h = block(h, 2, 0.1) as blocks }
    return linear(h, 65) as head
}

train lm {
    data = markov(vocab = 65, order = 3, seed = 1)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 16, microbatches = 4
    T = 16
    recompute blocks.*.attn, blocks.[0-1].mlp.fc
}
