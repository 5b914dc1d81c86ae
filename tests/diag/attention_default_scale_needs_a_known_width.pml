model m(x: f32[B, T, D]) -> f32[B, T, D] {
    return attention(x, x, x)
}
