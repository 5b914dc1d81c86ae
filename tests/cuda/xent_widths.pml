# The fused cross-entropy kernels in each of their shapes, so the CUDA tests compile
# every variant with NVRTC: rows wider than 1024 (a block per row) of odd width (no
# 16-byte loads), rows of 1024 (a warp per row, 16-byte loads) in f32 and in bf16.
import "nn"

fn xent_variants(logits, labels: i32) {
    wide = mean(xent(logits, labels))
    narrow = logits[:, :, 0:1024]
    clipped = minimum(labels, 1023)
    f32_rows = mean(xent(narrow, clipped))
    bf16_rows = mean(cast(xent(cast(narrow, bf16), clipped), f32))
    return wide + f32_rows + bf16_rows
}

model wide(idx: i32[B, T]) -> f32[B, T, 1027] {
    h = embedding(idx, 1027, 16) as wte
    return linear(h, 1027) as head
}

train wide {
    data = markov(vocab = 1027, order = 1, seed = 5)
    loss = xent_variants
    optimizer = sgd(lr = 0.01)
    batch = 2
    T = 8
    steps = 1
}
