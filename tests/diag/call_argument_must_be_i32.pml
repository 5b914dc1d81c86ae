# A dtype annotation on a function parameter is checked at each call.
fn take(values, idx: i32) {
    return pick(values, idx)
}

model m(x: f32[B, 10]) -> f32[B] {
    return take(x, x)
}
