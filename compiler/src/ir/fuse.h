/* fuse.h — fusion: which primitive ops run together as one kernel.
 *
 * Fusion is scheduling (tinygrad's view): cut the graph where a kernel must end, fuse
 * the rest. A group is one of
 *   - an element-wise kernel: a chain of element-wise ops over one iteration space
 *     (smaller operands broadcast into it);
 *   - a row kernel: reductions over the last axis of tensors with the same rows, with
 *     the element-wise work around them (softmax, layernorm, cross-entropy): one pass
 *     per row, the row in cache;
 *   - a single op that is its own kernel: matmul (BLAS / cuBLAS, epilogues later),
 *     gather and scatter, pick and unpick, permute, concat, slice, pad, reductions over
 *     other axes, expand and sum_to.
 * Sources (parameters, inputs, constants) and reshapes (views) run no code: each is a
 * kernel of its own of kind NONE, so that every node has a kernel. Groups never cross
 * a stage or a pass (forward, input-gradient, weight-gradient), so each instruction of
 * the timetable runs whole kernels; kernels are numbered in an order they can run in
 * (each after every kernel it reads), which is also the order of their last nodes. A value is written to memory only
 * when it must be: read outside its group, saved for the backward pass, sent to another stage, or the model's output,
 * loss or a parameter's gradient; everything else stays in registers or cache. */
#ifndef PMLC_FUSE_H
#define PMLC_FUSE_H

#include "ir/ir.h"
#include "pml/plan_format.h"

/* The plan file's values (pml/plan_format.h). */
typedef enum pmlc_kernel_kind {
    PMLC_KERNEL_NONE = PML_PLAN_KERNEL_NONE, /* sources and views: no code runs */
    PMLC_KERNEL_ELEMWISE = PML_PLAN_KERNEL_ELEMWISE,
    PMLC_KERNEL_ROW = PML_PLAN_KERNEL_ROW,
    PMLC_KERNEL_SINGLE = PML_PLAN_KERNEL_SINGLE
} pmlc_kernel_kind;

typedef struct pmlc_fusion {
    int32_t *group;        /* per node: its kernel, in running order */
    uint8_t *materialized; /* per node: its value is written to memory */
    int n_groups;
    pmlc_kernel_kind *kind; /* per group */
} pmlc_fusion;

/* Groups every node of `g` (forward and, after autodiff, backward) into kernels. */
void pmlc_fuse(pmlc_arena *A, const pmlc_graph *g, pmlc_fusion *out);

#endif
