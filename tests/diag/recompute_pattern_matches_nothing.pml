import "nn"
model m(x: f32[B, 16]) -> f32[B, 4] {
    h = relu(linear(x, 32) as fc1)
    h = mlp(h, 64) as mlp
    return linear(h, 4) as head
}
train m {
    data = classes(features = 16, classes = 4)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 32, microbatches = 4
    steps = 10
    recompute mlp.fc, mlp.fc3
}
