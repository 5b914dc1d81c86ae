# A small two-stage classifier trained with SGD and momentum, with dropout: checkpoint tests.
import "nn"

model net(x: f32[B, 16]) -> f32[B, 4] {
    stage 0 { h = gelu(linear(x, 32) as fc1) }
    stage 1 {
        h = dropout(h, 0.1)
        return linear(h, 4) as head
    }
}

train net {
    data = classes(features = 16, classes = 4, seed = 3)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1, momentum = 0.9)
    batch = 32, microbatches = 4
    schedule = 1f1b
    place = [cpu, cpu]
    steps = 6
}
