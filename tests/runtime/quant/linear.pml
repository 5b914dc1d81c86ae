# One linear layer with a bias, odd sizes (k = 100, n = 37: the vector loops' tails), for
# quant_test.py's checks of int8 products against their own arithmetic and a bound.
import "nn"

model lin(x: f32[B, 100]) -> f32[B, 37] {
    return linear(x, 37) as fc
}

train lin {
    data = classes(features = 100, classes = 37, seed = 3)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 32, microbatches = 4
    steps = 5
}
