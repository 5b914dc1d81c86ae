# A small character-level GPT, cut automatically into four pipeline stages.
#
#   pmlc check examples/gpt.pml
#   pmlc plan  examples/gpt.pml              # T = 64 comes from the train block
#   pmlc plan  examples/gpt.pml --set T=128  # ... or from the command line
#   pmlc train examples/gpt.pml --set place=cpu --eval 4
#                                            # trains on the CPU, then held-out loss
#   pmlc train examples/gpt.pml --devices 0,0,0,0
#                                            # its four GPU stages on one GPU (without
#                                            # --devices: on GPUs 0 to 3, as `place` says)
#   pmlc train examples/gpt.pml --set 'data=tokens("train.bin")' \
#       --set 'eval_data=tokens("val.bin")' --set eval_every=100 --eval 4
#                                            # on your text: nanoGPT's or llm.c's token
#                                            # files (README, "Training a language model")
#
# Its text comes from an order-2 Markov source whose entropy, 2.233 nats per
# character, is the best loss any model can reach (log 65 = 4.17 is guessing, and a
# model that sees only the last character cannot do better than 3.15). On a 2-core CPU
# the 300 steps take a few minutes and end about 6% above the entropy (docs/perf.md).
# The data never repeats, so the model needs no dropout.
#
# The sequence length T is symbolic: the model is written for any T up to CONTEXT.
# `place = auto(stages = 4)` lets the compiler cut the model between its top-level
# statements (each block is one unit) so the four stages cost about the same.

import "nn"

const VOCAB = 65        # characters
const WIDTH = 128
const HEADS = 4
const LAYERS = 4
const CONTEXT = 256     # longest sequence the position table covers

model gpt(idx: i32[B, T]) -> f32[B, T, VOCAB] {
    place = auto(stages = 4)
    tok = embedding(idx, VOCAB, WIDTH) as wte                   # [B, T, WIDTH]
    pos = embedding(arange(dim(idx, 1)), CONTEXT, WIDTH) as wpe  # [T, WIDTH]
    h = tok + pos
    repeat LAYERS { h = block(h, HEADS) as blocks }
    h = layernorm(h) as ln_f
    return linear(h, VOCAB, has_bias = false) as lm_head
}

train gpt {
    data = markov(vocab = VOCAB, order = 2, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 5e-3, weight_decay = 0.1)
    lr_schedule = warmup_cosine(warmup = 30, min_lr = 1e-4)
    grad_clip = 1.0
    batch = 64, microbatches = 8
    schedule = 1f1b
    precision = f32                 # or bf16 / f16 on the CPU (docs/language.md, "Precision")
    place = [cuda:0, cuda:1, cuda:2, cuda:3]   # or `cpu` (--set place=cpu): without a GPU,
                                               # --backend auto refuses this placement
    steps = 300
    T = 64
}
