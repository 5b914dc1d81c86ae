import "nn"
model m(x: f32[B, 4]) -> f32[B, 10] {
    return lineer(x, 10)
}
