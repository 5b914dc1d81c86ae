# The fused attention primitive: q, k and v made from parameters, causal and not, with
# a scale given and the default 1/sqrt(d), one attention's output read as the next one's
# q, over [B, 2 heads, 5, 3], and one of parameters alone ([5, 6, 6] slices of them).
import "nn"

model m(x: f32[B, 30]) -> f32[B, 30] {
    param wq: [30, 30] = normal(0.4)
    param wk: [30, 30] = normal(0.4)
    param wv: [30, 30] = normal(0.4)
    q = reshape(x @ wq, [B, 2, 5, 3])
    k = reshape(x @ wk, [B, 2, 5, 3])
    v = reshape(x @ wv, [B, 2, 5, 3])
    a = attention(q, k, v, causal = false, scale = 0.8)
    b = attention(a, k, q)
    c = attention(reshape(wq, [5, 6, 30])[:, :, 0:6], reshape(wk, [5, 6, 30])[:, :, 0:6],
                  reshape(wv, [5, 6, 30])[:, :, 0:6])
    return reshape(b, [B, 30]) + sum(c) * 0.1
}

train m {
    data = "x.npy", labels = "y.npy"
    loss = mse
    optimizer = sgd(lr = 0.1)
    batch = 3
}
