# Unnamed calls inside a loop keep counting per function: linear_0, linear_1, ...
import "nn"
model m(x: f32[B, 16]) -> f32[B, 4] {
    h = x
    for w in [12, 8, 4] { h = relu(linear(h, w)) }
    return h
}
# expect param linear_0.weight f32[12, 16]
# expect param linear_1.weight f32[8, 12]
# expect param linear_2.weight f32[4, 8]
