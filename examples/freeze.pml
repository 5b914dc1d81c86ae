# Freezing: train only part of a deep residual MLP, and freeze more of it later.
#
#   pmlc check examples/freeze.pml
#   pmlc plan  examples/freeze.pml
#
# `freeze` takes name patterns: `layers.[0-2]` matches every parameter under
# layers.0, layers.1 and layers.2. The stem and the first three layers are frozen
# from the start; layers 3-6 join them after 500 steps. Frozen parameters get no
# gradient and no optimizer state, and a frozen prefix of the model needs no
# backward pass at all: the automatic cut gives stage 0 the frozen prefix plus one
# trained layer, and the plan's phases show the work each stage has left later and,
# since `pmlc train` cuts the stages again when the second freeze starts, the cost of
# each stage after that re-cut.

import "nn"

const FEATURES = 256
const CLASSES = 10
const WIDTH = 512

# x[B, C] -> [B, C]: a pre-LayerNorm residual MLP layer.
fn residual(x, hidden) {
    return x + mlp(layernorm(x) as norm, hidden) as mlp
}

model deep(x: f32[B, FEATURES]) -> f32[B, CLASSES] {
    place = auto(stages = 4)
    h = gelu(linear(x, WIDTH) as stem)
    repeat 10 { h = residual(h, 4 * WIDTH) as layers }  # layers.0 ... layers.9
    h = layernorm(h) as norm
    return linear(h, CLASSES) as head
}

train deep {
    data = classes(features = FEATURES, classes = CLASSES)
    loss = cross_entropy
    optimizer = sgd(lr = 0.05, momentum = 0.9)
    batch = 512, microbatches = 16
    schedule = gpipe
    place = [cpu, cpu, cpu, cpu]
    steps = 1000
    freeze stem, layers.[0-2]
    freeze layers.[3-6] after 500 steps
}
