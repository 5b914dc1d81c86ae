# bench/gpu/gpt2.pml — GPT-2 small as OpenAI and llm.c define it: a vocabulary of 50,257
# tokens, 12 layers 768 wide with 12 heads, sequences of 1,024, and the output projection
# tied to the token table (the table is read on the first stage and, transposed, on the
# last: a weight tied across stages, docs/language.md). 124 M parameters. Over 4 stages
# on one GPU (--devices 0,0,0,0), 16 sequences a step in 8 micro-batches of 2: llm.c runs
# 64 a GPU in bf16 with activation recomputation; this is f32, which needs its memory.
#
# The data is a token file (flat uint16 ids, nanoGPT's train.bin, or llm.c's .bin):
# bench/gpu/run.sh writes random tokens below 50,257 for a throughput run
# (--set 'data=tokens("FILE")'). The Markov source cannot make this vocabulary: its
# table would be 50,257² entries.

import "nn"

const VOCAB = 50257
const WIDTH = 768
const HEADS = 12
const LAYERS = 12
const CONTEXT = 1024

model gpt2(idx: i32[B, T]) -> f32[B, T, VOCAB] {
    place = auto(stages = 4)
    param wte: [VOCAB, WIDTH] = normal(0.02)
    h = gather(wte, idx)
    h = h + embedding(arange(dim(idx, 1)), CONTEXT, WIDTH) as wpe
    repeat LAYERS { h = block(h, HEADS) as blocks }
    h = layernorm(h) as ln_f
    return h @ transpose(wte)
}

train gpt2 {
    data = tokens("train.bin")
    loss = cross_entropy
    optimizer = adamw(lr = 6e-4, weight_decay = 0.1)
    grad_clip = 1.0
    batch = 16, microbatches = 8
    place = [cuda:0, cuda:1, cuda:2, cuda:3]
    schedule = 1f1b
    steps = 20
    T = 1024
}
