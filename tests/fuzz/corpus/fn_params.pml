fn affine(x, out, has_bias = true) {
    param weight: [out, dim(x, -1)] = kaiming_uniform
    y = x @ transpose(weight)
    if has_bias {
        param bias: [out] = zeros
        y = y + bias
    } else {
        y = y * 1.0
    }
    return y
}

model m(x: f32[B, 32]) -> f32[B, 8] {
    h = relu(affine(x, 16) as a)
    return affine(h, 8, has_bias = false)
}
