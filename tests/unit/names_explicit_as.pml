# `call(...) as NAME` names the call's scope; parameters are path.leaf.
import "nn"
model m(x: f32[B, 16]) -> f32[B, 4] {
    h = gelu(linear(x, 32) as fc1)
    h = layernorm(h) as norm
    return linear(h, 4, has_bias = false) as head
}
# expect param fc1.weight f32[32, 16]
# expect param fc1.bias f32[32]
# expect param norm.weight f32[32]
# expect param norm.bias f32[32]
# expect param head.weight f32[4, 32]
# expect no-param head.bias
# expect params 5
