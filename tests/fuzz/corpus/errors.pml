model broken(x: f32[B, 4]) -> f32[B, 4] {
    h = x +
    y = lineer(x, 4)
    return x @ x
}
train broken { batch = 7, microbatches = 2, schedule = fifo, precision = f64 }
