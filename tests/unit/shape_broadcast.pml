# Element-wise operations broadcast like NumPy: align from the right, 1 stretches.
# The declared output type is itself an assertion: the model checks only if the
# inferred shape is exactly f32[B, 3, 4].
model m(x: f32[B, 1, 4], y: f32[3, 1]) -> f32[B, 3, 4] {
    param s: [4] = ones
    return x * s + y - 1.0
}
# expect param s f32[4]
# expect input x f32[B, 1, 4]
