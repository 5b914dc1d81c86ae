# Reductions over one and all axes, attention-shaped batched matmuls, causal mask,
# reshape, permute, slicing and concat.
import "nn"

model m(x: f32[B, 4, 6]) -> f32[B, 4, 6] {
    param w: [6, 6] = normal(0.5)
    h = x @ w
    s = causal_mask(h @ transpose(h))
    e = exp(s - max(s, -1, keepdim = true))
    a = e / sum(e, -1, keepdim = true)
    y = a @ h + mean(h, 1, keepdim = true) + sum(h, -1, keepdim = true) * 0.1
    z = permute(reshape(y, [B, 4, 2, 3]), [0, 2, 1, 3])
    z = reshape(permute(z, [0, 2, 1, 3]), [B, 4, 6])
    c = concat([z[:, :, 0:3], z[:, :, 3:6] * 2.0 + z[:, 0:1, 0:3]], 2)
    d = concat([c[:, 0:4:2, :], c[:, 1:4:2, :] * 0.5], 1)
    return d + max(y, 2, keepdim = true) - mean(y) + reshape(z[:, 2, :], [B, 1, 6])
}

train m {
    data = "x.npy", labels = "y.npy"
    loss = mse
    optimizer = sgd(lr = 0.1)
    batch = 2
}
