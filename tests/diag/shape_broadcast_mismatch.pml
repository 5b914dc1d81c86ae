model m(x: f32[B, 4], y: f32[B, 5]) -> f32[B, 4] {
    return x + y
}
