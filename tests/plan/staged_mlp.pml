# A hand-staged MLP on two CPU stages with 1F1B: stage costs, the crossing tensor and
# the timetable.
import "nn"
model classifier(x: f32[B, 64]) -> f32[B, 10] {
    stage 0 { h = gelu(linear(x, 128) as fc1) }
    stage 1 { return linear(layernorm(h) as norm, 10) as head }
}
train classifier {
    data = classes(features = 64, classes = 10, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-4)
    batch = 32, microbatches = 4
    schedule = 1f1b
    place = [cpu, cpu]
    steps = 100
}
