# cast changes the element type and keeps the shape; comparisons keep the dtype.
model m(x: f32[B, 4]) -> bf16[B, 4] {
    y = cast(x, bf16)
    return where(y > 0, y, y * cast(x < 0, bf16))
}
