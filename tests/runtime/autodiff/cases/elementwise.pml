# Every element-wise op and broadcasting (add/sub/mul/div of [B, 6] with [6]).
import "nn"

model m(x: f32[B, 6]) -> f32[B, 6] {
    param w: [6, 6] = normal(0.5)
    param b: [6] = normal(0.5)
    h = x @ w + b
    p = exp(h * 0.3) + 0.5
    y = neg(h) + tanh(h) * sigmoid(h) + relu(h) + erf(h) + abs(h)
    y = y + log(p) + sqrt(p) + rsqrt(p) + recip(p) + pow(p, h * 0.1)
    y = y + maximum(h, b) - minimum(h, x) + where(h > 0.0, h, x * 2.0) / p
    return y - b * 0.5
}

train m {
    data = "x.npy", labels = "y.npy"
    loss = mse
    optimizer = sgd(lr = 0.1)
    batch = 3
}
