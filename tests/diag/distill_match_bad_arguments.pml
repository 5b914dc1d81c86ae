import "nn"

model teacher(x: f32[B, 16]) -> f32[B, 4] {
    h = relu(linear(x, 64) as hidden)
    return linear(h, 4) as head
}
model student(x: f32[B, 16]) -> f32[B, 4] {
    h = relu(linear(x, 8) as hidden)
    return linear(h, 4) as head
}

train student {
    data = classes(features = 16, classes = 4)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8
    steps = 10
}

distill student from teacher("teacher.safetensors") {
    match(student = hidden, teacher = "hidden")
    match(student = "hidden", teacher = "hidden", weight = 0)
    match("hidden", loss = mse)
    matches(student = "hidden", teacher = "hidden")
}
