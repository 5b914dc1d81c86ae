const D = 64
const N = 4

fn block(x, width) {
    param w: bf16[width, width] = normal(0.02)
    return tanh(x @ cast(w, f32)) + x
}

model deep(x: f32[B, D]) -> f32[B, D] {
    place = auto(stages = 2)
    h = x
    repeat N { h = block(h, D) as blocks }
    for i in 0..2 { h = block(h, D) as extra }
    for w in [D, D] { h = block(h, w) }
    return h
}
