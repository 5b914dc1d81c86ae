# A small two-stage classifier trained with AdamW; another model than adamw.pml.
import "nn"

model net(x: f32[B, 16]) -> f32[B, 4] {
    stage 0 { h = gelu(linear(x, 24) as fc1) }
    stage 1 {
        h = dropout(h, 0.1)
        return linear(h, 4) as head
    }
}

train net {
    data = classes(features = 16, classes = 4, seed = 3)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3, weight_decay = 0.01)
    batch = 32, microbatches = 4
    schedule = 1f1b
    place = [cpu, cpu]
    steps = 6
    checkpoint_every = 2
}
