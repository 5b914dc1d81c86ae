# bench/precision/wide_mlp.pml — an MLP of width 1024 whose step is nearly all matrix
# products (4 hidden layers of 1024 x 1024 on 256 rows a step), for the bf16 vs f32
# comparison of bench/precision/run.sh. One stage, so the step is one core's work.

import "nn"

const FEATURES = 1024
const WIDTH = 1024
const CLASSES = 16

model wide(x: f32[B, FEATURES]) -> f32[B, CLASSES] {
    stage 0 {
        h = gelu(linear(x, WIDTH) as fc1)
        h = gelu(linear(h, WIDTH) as fc2)
        h = gelu(linear(h, WIDTH) as fc3)
        h = gelu(linear(h, WIDTH) as fc4)
        return linear(h, CLASSES) as head
    }
}

train wide {
    data = classes(features = FEATURES, classes = CLASSES, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-4, weight_decay = 0.01)
    batch = 256, microbatches = 4
    schedule = 1f1b
    precision = f32                 # run.sh sets bf16 / f32
    place = cpu
    steps = 30
}
