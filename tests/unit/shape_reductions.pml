# Reductions drop their axis, keep it with keepdim, and reduce everything without one.
model m(x: f32[B, 6, 8]) -> f32[B, 6] {
    a = sum(x, 2)                    # [B, 6]
    k = mean(x, -1, keepdim = true)  # [B, 6, 1]
    t = max(x, 1)                    # [B, 8]
    all = sum(x)                     # []
    assert rank(k) == 3 and rank(t) == 2 and rank(all) == 0, "reduction ranks"
    assert dim(k, 2) == 1 and dim(t, 1) == 8, "reduction dims"
    return a + reshape(k, [B, 6]) + all
}
