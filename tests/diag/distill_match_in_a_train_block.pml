import "nn"

model student(x: f32[B, 16]) -> f32[B, 4] { return linear(x, 4) as head }

train student {
    data = classes(features = 16, classes = 4)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8
    match(student = "head", teacher = "head")
}
