# A generator evaluates on fresh samples; held-out fields are an error, and so is a bad type.
import "nn"
model m(x: f32[B, 4]) -> f32[B, 2] { return linear(x, 2) }
train m {
    data = classes(features = 4, classes = 2)
    holdout = 0.1
    eval_every = "often"
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8
}
