# An MLP classifier cut by hand into two pipeline stages.
#
#   pmlc check examples/mlp.pml     # parse, resolve and shape-check
#   pmlc plan  examples/mlp.pml     # stages, their cost and memory, the 1F1B bubble
#
# Each `stage` block is one pipeline stage; `h` is made in stage 0 and crosses to
# stage 1. The cut puts about half the work on each side (the plan shows the
# imbalance). Parameters are named by their `as` scopes: fc1.weight, head.bias, ...

import "nn"

const FEATURES = 784
const CLASSES = 10

model classifier(x: f32[B, FEATURES]) -> f32[B, CLASSES] {
    stage 0 { h = gelu(linear(x, 512) as fc1) }
    stage 1 {
        h = gelu(linear(h, 512) as fc2)
        h = layernorm(h) as norm
        return linear(h, CLASSES) as head
    }
}

train classifier {
    data = classes(features = FEATURES, classes = CLASSES, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-4, weight_decay = 0.01)
    batch = 256, microbatches = 8
    schedule = 1f1b
    place = [cpu, cpu]              # or [cuda:0, cuda:1]
    steps = 1000
}
