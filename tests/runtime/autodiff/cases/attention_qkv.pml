# attention on a packed qkv product: causal and not, a scale given and the default
# 1/sqrt(d), leading axes [B] and [B, 2], heads 1 and 3, one output read as the next
# call's qkv (through a product); dropout on the weights of one (its mask the same in
# the backward pass); and the gradient reaching the product's weight.
import "nn"

model m(x: f32[B, 4, 6]) -> f32[B, 4, 6] {
    param w1: [6, 18] = normal(0.4)
    param w2: [6, 9] = normal(0.4)
    a = attention_qkv(x @ w1, 3)                                # [B, 4, 6], heads of 2
    b = attention_qkv(a @ w1, 1, scale = 0.7, causal = false)   # one head of 6
    c = attention_qkv(reshape(x, [B, 2, 2, 6]) @ w1, 2)         # [B, 2, 2, 6]
    d = attention_qkv(b[:, :, 0:3] @ w2[0:3, :], 1, causal = false)  # [B, 4, 3]
    e = attention_qkv(x @ w1, 3, dropout = 0.4)
    return a + b * 0.5 + reshape(c, [B, 4, 6]) * 0.3 + concat([d, d], 2) * 0.2 + e * 0.7
}

train m {
    data = "x.npy", labels = "y.npy"
    loss = mse
    optimizer = sgd(lr = 0.1)
    batch = 3
}
