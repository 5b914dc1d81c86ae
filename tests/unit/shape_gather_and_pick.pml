# gather(table[N, C], idx[...]) -> [..., C]; pick(x[..., V], idx[...]) -> [...].
import "nn"
model m(idx: i32[B, T]) -> f32[B, T, 16] {
    param table: [100, 16] = normal(0.02)
    e = gather(table, idx)                   # [B, T, 16]
    p = pick(e, idx)                         # [B, T]
    assert rank(p) == 2 and dim(p, 1) == dim(idx, 1), "pick drops the last axis"
    return e + reshape(p, [dim(p, 0), dim(p, 1), 1])
}
train m {
    data = markov(vocab = 16, order = 2)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 4
    steps = 1
    T = 16
}
# plan-args: --set T=12
# expect dimension T 12
# expect param table f32[100, 16]
