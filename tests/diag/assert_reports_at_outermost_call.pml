# A failed assert in a function is reported at the model's line that led to it,
# with notes through the calls in between down to the assertion.
fn split_heads(x, heads) {
    assert dim(x, -1) % heads == 0, "the width must be a multiple of heads"
    return x
}

fn attention(x, heads) {
    return split_heads(x, heads)
}

model m(x: f32[B, 30]) -> f32[B, 30] {
    return attention(x, 4)
}
