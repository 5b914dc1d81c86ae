/* precision.h — mixed precision as storage dtypes and explicit casts in the graph IR
 * (docs/language.md, "Precision"; docs/design.md, "Mixed precision is storage").
 *
 * The graph is elaborated and differentiated with every floating-point value in its
 * declared dtype (f32 unless a program wrote bf16/f16). Under `precision = bf16|f16`
 * (or `teacher_precision` for the teacher's nodes) this pass then gives every node the
 * dtype its output is *stored* in, by one table (pmlc_precision_rule, in precision.c):
 * element-wise ops and matrix products are stored in 16 bits, reductions, the row loss,
 * scatter_add and constants in f32, layout ops as their operand; in the backward pass,
 * element-wise ops store f32 (a gradient rule's intermediates, such as rsqrt's y^3,
 * overflow f16 and are never kept) and products store the gradients in 16 bits. Every op computes in f32 from its operands as stored and rounds
 * (to nearest even) only when it stores. Whatever the table says, the model's inputs,
 * output and loss and every parameter gradient stay f32, and a parameter stays f32
 * (the master weights the optimizer updates).
 *
 * Two kinds of cast node are inserted, each right after the value it converts and on
 * its stage: a parameter's 16-bit copy, which every reader of the parameter reads (a
 * value of parameters alone, so backends compute it once per update); and a 16-bit copy
 * of an f32 value a matrix product reads, since products take 16-bit operands only.
 * A parameter declared `bf16[...]`/`f16[...]` gets the same treatment in any precision:
 * an f32 master and a 16-bit copy (ir_param.dtype keeps the declared dtype).
 *
 * With f32 everywhere (no 16-bit precision, no 16-bit declaration) the pass changes
 * nothing. */
#ifndef PMLC_PRECISION_H
#define PMLC_PRECISION_H

#include "ir/ir.h"
#include "front/program.h"

/* How an op's output is stored under a 16-bit precision. */
typedef enum pmlc_prec_rule {
    PMLC_PREC_HALF,    /* in the 16-bit precision */
    PMLC_PREC_F32,     /* in f32: reductions and losses */
    PMLC_PREC_FOLLOW,  /* as its floating-point operands (f32 if any is f32): layout ops */
    PMLC_PREC_DECLARED /* as elaborated: inputs (fed as declared), parameters (f32 masters), casts */
} pmlc_prec_rule;

/* The table: op's rule in the forward pass (backward = 0) or the backward pass. */
pmlc_prec_rule pmlc_precision_rule(pmlc_opcode op, int backward);
const char *pmlc_precision_rule_name(pmlc_prec_rule r);

/* Applies `precision` (and `teacher_precision` to nodes [teacher_begin, teacher_end))
 * to `g` after autodiff. Nodes move when casts are inserted: remap[old] gets each old
 * node's new index when remap is not NULL (g->nodes.n entries before the call).
 * Returns the number of casts inserted. */
int pmlc_precision_apply(pmlc_program *P, pmlc_graph *g, pmlc_dtype precision, pmlc_dtype teacher_precision,
                         int32_t **remap);

#endif
