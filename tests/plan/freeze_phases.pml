# Freezing by pattern in two phases: the stem from the start, layers 0-1 after 50 steps.
import "nn"
model deep(x: f32[B, 16]) -> f32[B, 4] {
    place = auto(stages = 2)
    h = relu(linear(x, 32) as stem)
    repeat 4 { h = h + relu(linear(h, 32) as layers) }
    return linear(h, 4) as head
}
train deep {
    data = classes(features = 16, classes = 4)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 16, microbatches = 4
    place = [cpu, cpu]
    steps = 100
    freeze stem
    freeze layers.[0-1] after 50 steps
}
