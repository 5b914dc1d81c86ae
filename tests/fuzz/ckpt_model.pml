# The fixed model fuzz.checkpoint reads checkpoints against: tiny (so a checkpoint is a few
# hundred bytes), two stages, AdamW (two optimizer tensors per parameter) and an automatic
# freeze (trainer.json carries its state), and a periodic checkpoint (make_seeds.py's seed).
import "nn"

model net(x: f32[B, 4]) -> f32[B, 3] {
    stage 0 { h = relu(linear(x, 2) as fc1) }
    stage 1 { return linear(h, 3) as head }
}

train net {
    data = classes(features = 4, classes = 3, seed = 3)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-2)
    batch = 4, microbatches = 2
    place = [cpu, cpu]
    steps = 4
    checkpoint_every = 2
    freeze auto(every = 2, threshold = 0.2)
}
