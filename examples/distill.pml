# Distillation: train a small GPT to imitate a larger one.
#
#   pmlc check examples/distill.pml
#   pmlc plan  examples/distill.pml
#
# `teacher` is the model of examples/gpt.pml (same parameter names), so a checkpoint
# of that model, saved as teacher.safetensors, is the teacher here. It runs forward
# only. The student is two blocks of width 64 on two stages; its loss is
#   alpha·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 - alpha)·cross_entropy.

import "nn"

const VOCAB = 65
const CONTEXT = 256

model teacher(idx: i32[B, T]) -> f32[B, T, VOCAB] {
    h = embedding(idx, VOCAB, 128) as wte
    h = h + embedding(arange(dim(idx, 1)), CONTEXT, 128) as wpe
    repeat 8 { h = block(h, 4) as blocks }
    return linear(layernorm(h) as ln_f, VOCAB, has_bias = false) as lm_head
}

model student(idx: i32[B, T]) -> f32[B, T, VOCAB] {
    place = auto(stages = 2)
    h = embedding(idx, VOCAB, 64) as wte
    h = h + embedding(arange(dim(idx, 1)), CONTEXT, 64) as wpe
    repeat 2 { h = block(h, 2) as blocks }
    return linear(layernorm(h) as ln_f, VOCAB, has_bias = false) as lm_head
}

train student {
    data = markov(vocab = VOCAB, order = 2, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-3, weight_decay = 0.1)
    batch = 64, microbatches = 4
    schedule = 1f1b
    place = [cpu, cpu]
    steps = 1000
    T = 64
}

distill student from teacher("teacher.safetensors") { temperature = 2.0, alpha = 0.5 }
