# reshape (one -1 inferred), permute, transpose and concat.
model m(x: f32[B, 4, 6]) -> f32[B, 6, 8] {
    r = reshape(x, [B, -1])                  # [B, 24]
    assert dim(r, 1) == 24, "reshape infers -1"
    p = permute(x, [0, 2, 1])                # [B, 6, 4]
    t = transpose(x)                         # [B, 6, 4]
    return concat([p, t], 2)                 # [B, 6, 8]
}
