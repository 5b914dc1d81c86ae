# Embedding rows (gather -> scatter_add), class picking (pick -> unpick) through the
# stdlib cross-entropy, and dropout's mask reused in its backward pass.
import "nn"

model m(idx: i32[B, T]) -> f32[B, T, 7] {
    param emb: [7, 5] = normal(0.5)
    param pos: [3, 5] = normal(0.5)
    param w: [7, 5] = normal(0.5)
    h = gather(emb, idx) + gather(pos, arange(dim(idx, 1)))
    return dropout(h, 0.25) @ transpose(w)
}

train m {
    data = markov(vocab = 7, order = 1)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 2
    T = 3
}
