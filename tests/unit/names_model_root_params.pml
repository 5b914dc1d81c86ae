# Parameters declared in a model body are named from the root; built-in operations
# create no scope.
model m(x: f32[B, 4]) -> f32[B, 4] {
    param scale: [4] = ones
    param shift: bf16[4] = zeros
    return relu(exp(x) * scale) + cast(shift, f32)
}
# expect param scale f32[4]
# expect param shift bf16[4]
# expect params 2
