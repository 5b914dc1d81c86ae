model m(x: f32[B, 8, 4]) -> f32[B, 8, 4] {
    k = x[:, 0:6, :]
    return attention(x, k, x)
}
