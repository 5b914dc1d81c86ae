const BIG = 4611686018427387904
const TOO_BIG = BIG * 2
model m(x: f32[B, 4]) -> f32[B, 4] {
    assert TOO_BIG > 0, "positive"
    return x
}
