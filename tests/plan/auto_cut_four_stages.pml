# `place = auto(stages = 4)` over eight equal residual layers plus a stem and a head:
# the cut balances forward + backward FLOPs and reports the imbalance.
import "nn"
fn residual(x, hidden) {
    return x + mlp(layernorm(x) as norm, hidden) as mlp
}
model deep(x: f32[B, 32]) -> f32[B, 10] {
    place = auto(stages = 4)
    h = linear(x, 64) as stem
    repeat 8 { h = residual(h, 128) as layers }
    return linear(h, 10) as head
}
train deep {
    data = classes(features = 32, classes = 10)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1, momentum = 0.9)
    batch = 64, microbatches = 8
    schedule = gpipe
    place = [cpu, cpu, cpu, cpu]
    steps = 100
}
