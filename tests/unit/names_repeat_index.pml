# Inside `repeat`, an explicit name gets the loop index: blocks.0 ... blocks.3.
import "nn"
model m(x: f32[B, 8, 32]) -> f32[B, 8, 32] {
    h = x
    repeat 4 { h = block(h, 4) as blocks }
    return h
}
# expect param blocks.0.ln_1.weight f32[32]
# expect param blocks.3.attn.qkv.weight f32[96, 32]
# expect param blocks.3.attn.proj.weight f32[32, 32]
# expect param blocks.3.mlp.fc.weight f32[128, 32]
# expect param blocks.3.mlp.proj.bias f32[32]
# expect no-param blocks.4.attn.qkv.weight
