# `a @ b` needs a[..., m, k] and b[..., k, n]; batch dimensions broadcast.
model m(a: f32[B, 2, 3, 4], b: f32[2, 4, 5]) -> f32[B, 2, 3, 5] {
    param w: [5, 5] = xavier_uniform
    return (a @ b) @ w
}
# expect param w f32[5, 5]
