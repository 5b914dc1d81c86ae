/* memplan.h — the compiler's memory estimate: how long every buffer of a stage lives over
 * that stage's timetable, and where it would sit in the stage's one arena. `pmlc plan`
 * reports its sizes (print.c); it is not written to the plan file. The memory a backend
 * allocates is the runtime's to plan (runtime/src/plan/memplan.h), over the values the
 * backend keeps after its own lowering, which the compiler does not know (docs/design.md,
 * "One memory plan"): this estimate counts the plan's materialised values at the
 * dtype each value is stored in (ir/precision.h), per micro-batch of the timetable.
 *
 * Time is the stage's timetable with each forward and backward instruction split into
 * its kernels (fuse.h), in running order. A buffer is
 *   - per step: parameters, their gradient accumulators and optimizer state, and values
 *     computed from parameters and constants alone (the runtime computes those once per
 *     step); they live the whole step and sit at the bottom of the arena;
 *   - per micro-batch: a materialised value (or a received copy of another stage's)
 *     lives from the kernel or instruction that writes it to the last kernel that reads
 *     it for the same micro-batch, or the send or accumulation that takes it away. A
 *     value saved for the backward pass thus lives from its forward to its micro-batch's
 *     backward, a temporary within its instruction. Such a buffer gets one slot per
 *     micro-batch alive at once, and micro-batch m uses slot m % slots.
 * Values that stay inside a kernel take no memory, and a reshape is its input's memory.
 *
 * A stage on the CPU is planned as the CPU backend keeps it (memplan.c's cpu_rules,
 * docs/design.md, "The memory estimate follows the CPU backend"): values that outlive
 * their instruction keep their slots for the whole step, at the bottom of the arena
 * above the per-step state (the runtime's planner does not reuse them between
 * micro-batches); values another stage or the executor reads, and the operands of the
 * deferred weight-gradient GEMMs, have a slot per micro-batch of the step; transposes
 * read by matmuls, weight gradients added to their accumulators by the GEMM and
 * received copies take no memory. So on a CPU stage the arena is what the CPU backend
 * allocates for that stage's values.
 * Slots are placed greedily, largest first, each at the best-fitting gap among the slots
 * alive at any of the same times, 64-byte aligned. A slot's readers and writer of one
 * kernel count as the same time, so no kernel writes over what it reads. */
#ifndef PMLC_MEMPLAN_H
#define PMLC_MEMPLAN_H

#include "plan/placement.h"

#define PMLC_MEM_ALIGN 64

/* What a buffer holds. */
typedef enum pmlc_buf_role {
    PMLC_BUF_VALUE,    /* the node's value on its own stage */
    PMLC_BUF_RECV,     /* a copy of another stage's value received here */
    PMLC_BUF_GRAD_ACC, /* a parameter's gradient summed over micro-batches (f32) */
    PMLC_BUF_OPT_M,    /* optimizer state: momentum, or AdamW's first moment (f32) */
    PMLC_BUF_OPT_V     /* AdamW's second moment (f32) */
} pmlc_buf_role;

typedef struct pmlc_buffer {
    int stage, node; /* node: the value's; for accumulators and optimizer state the parameter's */
    pmlc_buf_role role;
    int per_step;    /* one value for the whole step */
    int slots;       /* micro-batch m uses slot m % slots; 1 when per_step */
    int64_t bytes;   /* of one slot */
    int64_t *offset; /* per slot, from the arena's start */
} pmlc_buffer;

typedef struct pmlc_stage_memory {
    int64_t arena;       /* bytes the stage allocates once */
    int64_t state;       /* the per-step buffers (aligned) */
    int64_t kept;        /* on a CPU stage: the slots kept for the whole step, above state (0 elsewhere) */
    int64_t activations; /* most bytes of values that outlive their instruction alive at once */
    int64_t temporaries; /* most bytes of values within one instruction alive at once */
    int64_t peak;        /* most per-micro-batch bytes alive at once: the arena less state is at least this */
    int in_flight;       /* most micro-batches with a value saved for backward alive at once */
} pmlc_stage_memory;

typedef struct pmlc_memplan {
    int n_stages;
    pmlc_stage_memory *stages;
    int n_buffers;
    pmlc_buffer *buffers; /* ordered by stage, node, role */
    /* What the CPU backend's lowering changes (memplan.c, cpu_rules), per node: whose
     * buffer holds its value (a reshape's input's; on a CPU stage, a transpose that only
     * matmuls read is its input's too), and whether it is a weight gradient a CPU
     * stage's GEMM adds to its accumulator (no buffer). A CPU stage reads another CPU
     * stage's values in place (no received copy); the maker keeps them all step. */
    int32_t *root;
    uint8_t *direct;
} pmlc_memplan;

/* Plans the memory of `pl`; every value is as wide as its node's dtype, which the
 * precision pass made its storage dtype (ir/precision.h). Allocates in `A`. NULL when `pl` has no timetable or one too large
 * to plan (millions of micro-batches). */
pmlc_memplan *pmlc_memplan_build(pmlc_arena *A, const pmlc_plan *pl);

#endif
