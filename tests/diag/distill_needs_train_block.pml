import "nn"

model teacher(x: f32[B, 16]) -> f32[B, 4] { return linear(relu(linear(x, 64)), 4) }
model student(x: f32[B, 16]) -> f32[B, 4] { return linear(x, 4) }

distill student from teacher("teacher.safetensors") { temperature = 2.0 }
