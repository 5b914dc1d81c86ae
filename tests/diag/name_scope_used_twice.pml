import "nn"
model m(x: f32[B, 4]) -> f32[B, 4] {
    h = linear(x, 4) as fc
    return linear(h, 4) as fc
}
