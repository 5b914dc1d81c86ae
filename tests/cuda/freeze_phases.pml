# Scheduled freezes on the GPU (tests/cuda, gpu_train_test.py): from step 5 the stem and
# from step 10 two more layers stop training; pmlc train re-cuts the two stages at each
# boundary and moves the weights, and the backward work the freeze removes is skipped.
import "nn"

fn residual(x, hidden) {
    return x + mlp(layernorm(x) as norm, hidden) as mlp
}

model net(x: f32[B, 32]) -> f32[B, 4] {
    place = auto(stages = 2)
    h = gelu(linear(x, 64) as stem)
    repeat 4 { h = residual(h, 128) as layers }
    return linear(h, 4) as head
}

train net {
    data = classes(features = 32, classes = 4, seed = 5)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 64, microbatches = 4
    schedule = 1f1b
    steps = 20
    freeze stem after 5 steps
    freeze layers.[0-1] after 10 steps
}
