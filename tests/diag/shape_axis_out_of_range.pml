model m(x: f32[B, 4]) -> f32[B] {
    return sum(x, 2)
}
