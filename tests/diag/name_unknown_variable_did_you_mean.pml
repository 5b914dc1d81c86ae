model m(x: f32[B, 4]) -> f32[B, 4] {
    hidden = relu(x)
    return hiden
}
