# `place = auto(stages = 2, replicas = 2)`: two copies of a two-stage pipeline, each
# running half of the 8 micro-batches on its own ranks (mpirun -np 4 pmlc train ...).
# The plan shows the replicas, in text and JSON; the stage cut is the same as without.
import "nn"
model wide(x: f32[B, 32]) -> f32[B, 10] {
    place = auto(stages = 2, replicas = 2)
    h = gelu(linear(x, 64) as fc1)
    h = gelu(linear(h, 64) as fc2)
    return linear(h, 10) as head
}
train wide {
    data = classes(features = 32, classes = 10)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 64, microbatches = 8
    steps = 10
}
