model m(x: f32[B, 4, 24]) -> f32[B, 4, 8] {
    return attention_qkv(x, 5)
}
