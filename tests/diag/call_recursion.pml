fn forever(x) {
    return forever(x)
}
model m(x: f32[B, 4]) -> f32[B, 4] {
    return forever(x)
}
