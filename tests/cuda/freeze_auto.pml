# The automatic freeze on the GPU (tests/cuda, gpu_train_test.py): gradient norms taken
# on the device at steps 4 and 8; with this threshold the check at step 8 freezes every
# layer but the head (a threshold near the measured changes could decide differently on
# the two backends by rounding), and the backward work it removes is skipped from then on.
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
    freeze auto(every = 4, threshold = 1e9)
}
