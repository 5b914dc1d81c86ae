# Nested loops append each index: grid.1.2.
import "nn"
model m(x: f32[B, 4]) -> f32[B, 4] {
    h = x
    for i in 0..2 {
        for j in 0..3 { h = linear(h, 4) as grid }
    }
    return h
}
# expect param grid.0.0.weight f32[4, 4]
# expect param grid.1.2.weight f32[4, 4]
# expect param grid.1.2.bias f32[4]
# expect no-param grid.2.0.weight
# expect params 12
