"""distill_programs.py — PML text the distillation tests share and that needs no torch
(match_ranks_test.py runs without it): the student 16 -> 16 -> 5 on two stages, with
the named calls fc1, norm and head that matches refer to."""

STUDENT_MODEL = """model student(x: f32[B, 16]) -> f32[B, 5] {
    place = auto(stages = 2)
    h = gelu(linear(x, 16) as fc1)
    h = layernorm(h) as norm
    return linear(h, 5) as head
}
"""
