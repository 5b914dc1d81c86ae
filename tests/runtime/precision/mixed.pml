# The model of the mixed-precision tests (precision_test.py): an MLP with every kind of
# op the precision table treats apart — products (16 bits, f32 accumulation), element-
# wise chains (gelu: 16 bits), a norm (f32 means), the row loss (f32) — cut into two
# stages so that an activation and its gradient cross between them (the tests replan it
# on one stage by its `stages = 2`).
import "nn"

model mixed(x: f32[B, 24]) -> f32[B, 10] {
    place = auto(stages = 2)
    h = gelu(linear(x, 48) as fc1)
    h = gelu(linear(h, 48) as fc2)
    h = layernorm(h) as norm
    return linear(h, 10) as head
}

train mixed {
    data = classes(features = 24, classes = 10, seed = 4)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-3, weight_decay = 0.01)
    batch = 32, microbatches = 4
    precision = bf16
    steps = 20, seed = 7
}
