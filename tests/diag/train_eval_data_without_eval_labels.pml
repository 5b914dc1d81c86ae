# Held-out .npy inputs need their labels.
import "nn"
model m(x: f32[B, 4]) -> f32[B, 2] { return linear(x, 2) }
train m {
    data = "x.npy"
    labels = "y.npy"
    eval_data = "x_val.npy"
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8
}
