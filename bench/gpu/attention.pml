# bench/gpu/attention.pml — the fused attention kernels at the sizes bench/gpu/run.sh
# reports (gpu_attention --bench): causal self-attention, head dim 64, GPT-2 small's 12
# heads at T = 1024 (batch 8: 96 matrices) and at T = 4096 (batch 2: 24 matrices), and
# head dim 128 (LLaMA's) with 16 heads at T = 1024 (batch 4: 64 matrices), the same
# shapes as bench/gpu/attention_torch.py gives PyTorch's SDPA. Only the attention ops are
# timed; the rest makes it a model that trains (so the backward ops exist).
import "nn"

model m(idx: i32[B, T]) -> f32[B, T, 8] {
    param q1: [8, 12, 1024, 64] = normal(0.5)
    param k1: [8, 12, 1024, 64] = normal(0.5)
    param v1: [8, 12, 1024, 64] = normal(0.5)
    param q4: [2, 12, 4096, 64] = normal(0.5)
    param k4: [2, 12, 4096, 64] = normal(0.5)
    param v4: [2, 12, 4096, 64] = normal(0.5)
    param qd: [4, 16, 1024, 128] = normal(0.5)
    param kd: [4, 16, 1024, 128] = normal(0.5)
    param vd: [4, 16, 1024, 128] = normal(0.5)
    a = sum(attention(q1, k1, v1)) + sum(attention(q4, k4, v4)) + sum(attention(qd, kd, vd))
    return linear(embedding(idx, 8, 8) as wte, 8) as head + a * 0.001
}

train m {
    data = markov(vocab = 8, order = 1, seed = 5)
    loss = cross_entropy
    optimizer = sgd(lr = 0.01)
    batch = 2
    T = 4
    steps = 1
}
