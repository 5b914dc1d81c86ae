# Parameter shapes may use constants, arithmetic and dim() of an operand.
const D = 24
fn proj(x, factor) {
    param weight: [factor * dim(x, -1), dim(x, -1)] = kaiming_uniform
    param bias: bf16[factor * dim(x, -1)] = zeros
    return x @ transpose(weight) + cast(bias, f32)
}
model m(x: f32[B, D]) -> f32[B, 72] {
    return proj(x, 3) as up
}
# expect param up.weight f32[72, 24]
# expect param up.bias bf16[72]
