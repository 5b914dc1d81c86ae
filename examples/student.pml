# The student trained alone, on the labels only: the baseline distillation is measured
# against, and the program `pmlc infer` serves a distilled student with (its checkpoint
# is an ordinary model file of this model).
#
#   pmlc train examples/student.pml --eval 8 --out runs/student
#   pmlc infer examples/student.pml --weights runs/distilled --input x.npy --bench

import "models/kd"

train student {
    data = classes(features = FEATURES, classes = CLASSES, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-3, weight_decay = 0.01)
    batch = 256, microbatches = 8
    schedule = 1f1b
    steps = 300
}
