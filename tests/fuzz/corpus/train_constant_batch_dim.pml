# A constant batch dimension (4) that the train block's micro-batches (32 / 2 = 16)
# contradict: the data feed would write 16 rows into an input of 4.
import "nn"
model m(x: f32[4, 784]) -> f32[4, 10] {
    return linear(x, 10) as head
}
train m {
    data = "x.npy"
    labels = "y.npy"
    loss = cross_entropy
    optimizer = sgd(lr = 1e-2)
    batch = 32, microbatches = 2
}
