# The fused attention kernels (compiler/src/gpu/cuda_attention.c) in the shapes that
# exercise their tiles: head dims 2, 16, 64, 100 (padded to 112) and 128 (each tile
# size), T below, above and not a multiple of every tile (1, 5, 33, 50, 77, 130), causal
# and not, rank 3 and 4; and a head dim of 129, which the kernels do not take (written
# out as matmuls and a softmax instead); dropout on the weights (the kernels draw the
# CPU's mask). attention_qkv too: heads of 64 and 16 read from packed rows, and of 129
# (written out, from a rank-8 qkv: its leading axes merged). The CUDA tests compile them
# all with NVRTC; on a GPU gpu_attention checks each forward and backward against the
# CPU's.
import "nn"

model m(idx: i32[B, T]) -> f32[B, T, 8] {
    param q64: [2, 3, 77, 64] = normal(0.5)
    param k64: [2, 3, 77, 64] = normal(0.5)
    param v64: [2, 3, 77, 64] = normal(0.5)
    param q128: [1, 2, 130, 128] = normal(0.5)
    param k128: [1, 2, 130, 128] = normal(0.5)
    param v128: [1, 2, 130, 128] = normal(0.5)
    param q100: [3, 33, 100] = normal(0.5)
    param k100: [3, 33, 100] = normal(0.5)
    param v100: [3, 33, 100] = normal(0.5)
    param q16: [2, 50, 16] = normal(0.5)
    param k16: [2, 50, 16] = normal(0.5)
    param v16: [2, 50, 16] = normal(0.5)
    param q2: [1, 5, 2] = normal(0.5)
    param k2: [1, 5, 2] = normal(0.5)
    param v2: [1, 5, 2] = normal(0.5)
    param q8: [3, 1, 8] = normal(0.5)
    param k8: [3, 1, 8] = normal(0.5)
    param v8: [3, 1, 8] = normal(0.5)
    param q129: [2, 9, 129] = normal(0.5)
    param k129: [2, 9, 129] = normal(0.5)
    param v129: [2, 9, 129] = normal(0.5)
    param qkv64: [2, 77, 576] = normal(0.5)
    param qkv16: [50, 96] = normal(0.5)
    param qkv129: [1, 1, 2, 1, 1, 1, 9, 387] = normal(0.5)
    a = sum(attention(q64, k64, v64)) + sum(attention(q64, k64, v64, causal = false, scale = 0.3))
    a = a + sum(attention(q128, k128, v128)) + sum(attention(q100, k100, v100))
    a = a + sum(attention(q16, k16, v16, causal = false)) + sum(attention(q2, k2, v2))
    a = a + sum(attention(q8, k8, v8, causal = false)) + sum(attention(q129, k129, v129))
    a = a + sum(attention(q16, k16, v16, dropout = 0.3)) + sum(attention_qkv(qkv64, 3, dropout = 0.1))
    a = a + sum(attention_qkv(qkv64, 3)) + sum(attention_qkv(qkv16, 2, causal = false))
    a = a + sum(attention_qkv(qkv129, 1))
    h = linear(embedding(idx, 8, 8) as wte, 8) as head
    return h + a * 0.001
}

train m {
    data = markov(vocab = 8, order = 1, seed = 5)
    loss = cross_entropy
    optimizer = sgd(lr = 0.01)
    batch = 2
    T = 4
    steps = 1
}
