model m(x: f32[B, 4]) -> f32[B, 4] {
    h = relu(x)
    stage 0 { h = tanh(h) }
    stage 1 { return h }
}
