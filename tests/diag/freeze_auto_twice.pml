import "nn"
model m(x: f32[B, 16]) -> f32[B, 16] {
    h = x
    repeat 4 { h = linear(h, 16) as layers }
    return h
}
train m {
    data = classes(features = 16, classes = 16)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 32
    steps = 10
    freeze auto(every = 2)
    freeze auto(every = 4, threshold = 0.1)
}
