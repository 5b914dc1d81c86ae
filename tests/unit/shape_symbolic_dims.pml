# Symbolic dimensions: dim(x, axis) is a size, arange gives i32[n], and T gets its
# value from the train block.
import "nn"
model m(idx: i32[B, T]) -> f32[B, T, 32] {
    tok = embedding(idx, 50, 32) as wte
    pos = embedding(arange(dim(idx, 1)), 128, 32) as wpe   # [T, 32]
    return tok + pos
}
train m {
    data = markov(vocab = 32, order = 2)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8
    steps = 1
    T = 16
}
# expect param wte.weight f32[50, 32]
# expect param wpe.weight f32[128, 32]
# expect dimension T 16
# expect input idx i32[B, T]
