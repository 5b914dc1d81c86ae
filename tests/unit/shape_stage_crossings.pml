# Values made in one stage and used in a later one cross the boundary with their
# shape: h crosses 0 -> 1 and 1 -> 2; x crosses 0 -> 1 too (the model input is made
# in stage 0).
import "nn"
model m(x: f32[B, 16]) -> f32[B, 8] {
    stage 0 { h = relu(linear(x, 32) as fc1) }
    stage 1 { h = relu(linear(h, 64) as fc2) + linear(x, 64) as skip }
    stage 2 { return linear(h, 8) as head }
}
train m {
    data = classes(features = 16, classes = 8)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 32, microbatches = 4
    place = [cpu, cpu, cpu]
    steps = 1
}
# expect stages 3
# expect param fc1.weight f32[32, 16]
# expect param fc2.weight f32[64, 32]
# expect param skip.weight f32[64, 16]
# expect param head.weight f32[8, 64]
# expect dimension B 8
# expect send 0 h f32[8, 32]
# expect send 0 x f32[8, 16]
# expect send 1 h f32[8, 64]
