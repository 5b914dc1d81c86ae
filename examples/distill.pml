# Step 2 of the distillation walkthrough: train the student of examples/student.pml to
# imitate the teacher trained by examples/teacher.pml.
#
#   pmlc plan  examples/distill.pml        # where the teacher's forward pass runs
#   pmlc train examples/distill.pml --eval 8 --out runs/distilled
#
# The teacher runs forward only, inside the student's pipeline: its parameters
# (teacher.*) are loaded from the file named below, a path relative to the current
# folder, and are never trained or saved. The loss is
#   alpha·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − alpha)·cross_entropy
# and runs/distilled/model.safetensors holds the student only.

import "models/kd"

train student {
    data = classes(features = FEATURES, classes = CLASSES, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-3, weight_decay = 0.01)
    batch = 256, microbatches = 8
    schedule = 1f1b
    steps = 300
}

distill student from teacher("runs/teacher/model.safetensors") { temperature = 4.0, alpha = 0.7 }
