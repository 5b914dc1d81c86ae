import "nn"
model m(x: f32[B, 16]) -> f32[B, 4] {
    stage 0 { h = relu(linear(x, 32) as fc1) }
    stage 1 { return linear(h, 4) as head }
}
train m {
    data = classes(features = 16, classes = 4)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 32, microbatches = 4
    memory = 1KiB
    steps = 10
}
