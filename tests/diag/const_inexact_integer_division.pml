const HEADS = 3
const WIDTH = 128
const HEAD_DIM = WIDTH / HEADS
model m(x: f32[B, HEAD_DIM]) -> f32[B, HEAD_DIM] {
    return x
}
