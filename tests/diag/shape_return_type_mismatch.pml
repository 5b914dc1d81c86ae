import "nn"
model m(x: f32[B, 4]) -> f32[B, 8] {
    return linear(x, 10)
}
