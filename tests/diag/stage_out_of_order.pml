model m(x: f32[B, 4]) -> f32[B, 4] {
    stage 0 { h = relu(x) }
    stage 2 { return h }
}
