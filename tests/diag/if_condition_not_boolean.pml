model m(x: f32[B, 4]) -> f32[B, 4] {
    if 1 {
        x = relu(x)
    }
    return x
}
