import "nn"

model mlp(x: f32[B, 784]) -> f32[B, 10] {
    stage 0 { h = gelu(linear(x, 512) as fc1) }
    stage 1 { return linear(layernorm(h) as norm, 10) as head }
}

train mlp {
    data = classes(features = 784, classes = 10)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-4, weight_decay = 0.01)
    batch = 256, microbatches = 8, schedule = 1f1b
    place = [cpu, cpu]
    steps = 1000
}
