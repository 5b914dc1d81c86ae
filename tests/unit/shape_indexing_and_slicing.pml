# x[i] drops a dimension; slices keep it with (b - a) / s entries; negatives count
# from the end.
model m(x: f32[B, 10, 8]) -> f32[B, 4] {
    a = x[:, 0]            # [B, 8]
    b = a[:, 2:6]          # [B, 4]
    c = x[:, -1, 0:8:2]    # [B, 4]
    d = x[:, 1:9:4, -4:]   # [B, 2, 4]
    assert dim(d, 1) == 2 and dim(d, 2) == 4, "slice dims"
    return b + c
}
