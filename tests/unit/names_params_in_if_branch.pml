# A parameter declared inside an `if` belongs to the enclosing call's scope.
fn affine(x, out, has_bias = true) {
    param weight: [out, dim(x, -1)] = kaiming_uniform
    y = x @ transpose(weight)
    if has_bias {
        param bias: [out] = zeros
        y = y + bias
    }
    return y
}
model m(x: f32[B, 4]) -> f32[B, 2] {
    h = affine(x, 3) as a
    return affine(h, 2, has_bias = false) as b
}
# expect param a.weight f32[3, 4]
# expect param a.bias f32[3]
# expect param b.weight f32[2, 3]
# expect no-param b.bias
