# Unnamed calls are named function_N, counting per function within the enclosing
# scope in call order; nested scopes count afresh.
import "nn"
model m(x: f32[B, 16]) -> f32[B, 16] {
    h = linear(x, 8)                 # linear_0
    h = linear(h, 16)                # linear_1
    h = layernorm(h)                 # layernorm_0
    h = mlp(h, 32)                   # mlp_0, containing fc and proj
    return linear(h, 16)             # linear_2
}
# expect param linear_0.weight f32[8, 16]
# expect param linear_1.weight f32[16, 8]
# expect param linear_2.weight f32[16, 16]
# expect param layernorm_0.weight f32[16]
# expect param mlp_0.fc.weight f32[32, 16]
# expect param mlp_0.proj.weight f32[16, 32]
# expect no-param linear_3.weight
