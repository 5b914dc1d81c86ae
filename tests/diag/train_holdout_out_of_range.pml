# holdout is a fraction below 1, and a number.
import "nn"
model m(x: f32[B, 4]) -> f32[B, 2] { return linear(x, 2) }
train m {
    data = "x.npy"
    labels = "y.npy"
    holdout = 1
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8
}
