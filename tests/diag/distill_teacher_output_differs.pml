import "nn"

model teacher(x: f32[B, 16]) -> f32[B, 5] { return linear(relu(linear(x, 64)), 5) }
model student(x: f32[B, 16]) -> f32[B, 4] { return linear(x, 4) }

train student {
    data = classes(features = 16, classes = 4)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8
    steps = 10
}

distill student from teacher("teacher.safetensors") { alpha = 0.5 }
