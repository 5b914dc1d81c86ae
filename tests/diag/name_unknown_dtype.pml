model m(x: f64[B, 4]) -> f32[B, 4] {
    return x
}
