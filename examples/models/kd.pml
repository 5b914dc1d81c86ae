# The two models of the distillation walkthrough (README, "Distillation walkthrough"):
# a teacher and a student under a tenth of its size, for the 784-feature, 10-class
# data of classes(seed = 1). No train block: teacher.pml, student.pml and distill.pml
# import these definitions and train them, so the names of the teacher's parameters
# in its checkpoint are the ones distill.pml expects.

import "nn"

const FEATURES = 784
const CLASSES = 10

# 784 → 512 → 512 → 10 with GELU and a LayerNorm: 670k parameters, on two pipeline
# stages when trained alone (distilling places it with the student instead).
model teacher(x: f32[B, FEATURES]) -> f32[B, CLASSES] {
    place = auto(stages = 2)
    h = gelu(linear(x, 512) as fc1)
    h = gelu(linear(h, 512) as fc2)
    h = layernorm(h) as norm
    return linear(h, CLASSES) as head
}

# 784 → 48 → 10: 38k parameters, on two pipeline stages.
model student(x: f32[B, FEATURES]) -> f32[B, CLASSES] {
    place = auto(stages = 2)
    h = gelu(linear(x, 48) as fc1)
    return linear(h, CLASSES) as head
}
