# tokens(...) feeds windows of token ids: the input must be i32[B, T], the output [B, T, V].
import "nn"
model m(x: f32[B, 4]) -> f32[B, 2] { return linear(x, 2) }
train m {
    data = tokens("train.bin")
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8
}
