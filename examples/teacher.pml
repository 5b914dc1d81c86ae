# Step 1 of the distillation walkthrough: train the teacher and keep its weights.
#
#   pmlc train examples/teacher.pml --eval 8 --out runs/teacher
#
# runs/teacher/model.safetensors is what examples/distill.pml distills from.

import "models/kd"

train teacher {
    data = classes(features = FEATURES, classes = CLASSES, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-4, weight_decay = 0.01)
    batch = 256, microbatches = 8
    schedule = 1f1b
    steps = 300
}
