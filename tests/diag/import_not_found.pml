import "no_such_module"
model m(x: f32[B, 4]) -> f32[B, 4] {
    return x
}
