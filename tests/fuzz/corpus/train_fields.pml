import "nn"

model lm(idx: i32[B, T]) -> f32[B, T, 65] {
    h = embedding(idx, 65, 32) as wte
    return linear(h, 65) as head
}

train lm {
    data = markov(vocab = 65, order = 3, seed = 1)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1, momentum = 0.9)
    lr_schedule = warmup_cosine(warmup = 10, min_lr = 1e-4)
    grad_clip = 1.0
    batch = 16, microbatches = 4
    schedule = gpipe
    precision = bf16
    place = cpu
    epochs = 2
    seed = 7
    T = 16
    recompute = true
    checkpoint_every = 100
    freeze wte after 10 steps
    freeze auto(every = 100, threshold = 0.01)
}
