# tokens(...) takes a path in quotes.
import "nn"
model m(idx: i32[B, T]) -> f32[B, T, 16] { return linear(embedding(idx, 16, 8), 16) }
train m {
    data = tokens(3)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8
    T = 4
}
