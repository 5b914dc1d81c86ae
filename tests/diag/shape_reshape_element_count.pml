model m(x: f32[B, 12]) -> f32[B, 5, 2] {
    return reshape(x, [B, 5, 2])
}
