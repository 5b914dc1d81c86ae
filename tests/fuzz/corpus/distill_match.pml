import "nn"

model teacher(x: f32[B, 16]) -> f32[B, 4] { return linear(relu(linear(x, 64) as hidden), 4) as head }
model student(x: f32[B, 16]) -> f32[B, 4] { return linear(relu(linear(x, 8) as hidden), 4) as head }

train student {
    data = classes(features = 16, classes = 4)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3)
    batch = 8
    steps = 10
}

distill student from teacher("teacher.safetensors") {
    temperature = 2.0, alpha = 0.5
    match(student = "hidden", teacher = "hidden", loss = cosine, weight = 0.5)
    match("head", "head", loss = mse)
}
