fn scale(x, factor, shift = 0.0) {
    return x * factor + shift
}
model m(x: f32[B, 4]) -> f32[B, 4] {
    return scale(x, shift = 1.0)
}
