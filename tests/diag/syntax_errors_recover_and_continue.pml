# Two syntax errors in separate statements: both are reported.
model m(x: f32[B, 4]) -> f32[B, 4] {
    a = x +
    b = (x * 2
    return x
}
