model m(x: f32[B, 4], w: f32[5, 3]) -> f32[B, 3] {
    return x @ w
}
