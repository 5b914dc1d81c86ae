const C = 8 * 2   # a comment
/* a block
   comment */
model ops(x: f32[B, 4, C], idx: i32[B, 4]) -> f32[B, 4] {
    a = reshape(x, [-1, C])
    b = permute(x, [0, 2, 1])
    c = concat([x, x], 2)[:, :, 0:C]
    d = sum(x * 2.0 - 1, 2, keepdim = true)
    e = where(x > 0, x, neg(x))
    f = maximum(exp(x), sqrt(abs(x)))
    s = x[:, 0:4:2, -1]
    assert rank(x) == 3 and not false, "rank"
    p = pick(x, idx)
    return p + mean(e, 2) + max(f, 2) + sum(d, 2)
}
