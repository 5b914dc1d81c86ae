# Every layer, activation and loss of stdlib/nn.pml in one trainable model, so the
# CUDA tests compile the kernels of each (forward and backward) with NVRTC.
import "nn"

model layers(idx: i32[B, T]) -> f32[B, T, 32] {
    h = embedding(idx, 32, 64) as wte
    h = block(h, 4, dropout_p = 0.1) as block
    h = rmsnorm(h) as rms
    h = silu(linear(h, 64) as a) + gelu_erf(linear(h, 64) as b)
    h = mlp(layernorm(h) as ln, 128, dropout_p = 0.2) as mlp
    h = h + softmax(linear(h, 64) as gate) * relu(h) + sigmoid(h) * tanh(h)
    h = causal_self_attention(h, 2) as attn
    return linear(h, 32, has_bias = false) as head
}

train layers {
    data = markov(vocab = 32, order = 1, seed = 3)
    loss = cross_entropy
    optimizer = sgd(lr = 0.01, momentum = 0.9, nesterov = true, weight_decay = 0.01)
    batch = 4, microbatches = 2
    T = 16
    steps = 1
}
