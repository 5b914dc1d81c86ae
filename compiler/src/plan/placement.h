/* placement.h — the stage plan: where every op runs, what each stage costs per
 * micro-batch, and what crosses between stages. Built from an elaborated graph and
 * its train block; printed as text, JSON (docs/plan-json.md) or Graphviz.
 *
 * Costs use the op table's FLOP and memory model (ops.h) with every symbolic
 * dimension bound: the batch dimension to the micro-batch size, the others from the
 * train block. Backward work is split into input-gradient (B) and weight-gradient (W)
 * FLOPs; frozen parameters get no W work and a frozen prefix no B work. */
#ifndef PMLC_PLAN_H
#define PMLC_PLAN_H

#include "ir/fuse.h"
#include "sema/train_blocks.h"

#define PMLC_PLAN_JSON_VERSION 1

typedef struct pmlc_send {
    int node;
    const char *name;
    pmlc_dtype dtype;
    pmlc_cshape shape;
    int64_t bytes;
} pmlc_send;

typedef struct pmlc_stage_cost {
    double fwd, bwd_b, bwd_w; /* FLOPs per micro-batch (bwd_b with recomputation's) */
    double fwd_bytes;         /* bytes the forward ops read and write, per micro-batch */
    int64_t act_bytes;        /* saved for backward, per micro-batch */
    int64_t trainable;        /* parameters updated in this phase */
} pmlc_stage_cost;

typedef struct pmlc_stage_plan {
    int index;
    pmlc_device device;
    PMLC_VEC(const char *) layers;
    int64_t params, param_bytes, opt_bytes;
    int n_ops;                                /* forward primitive ops */
    int n_bwd_ops;                            /* backward primitive ops (autodiff), 0 without a loss */
    int n_kernels, n_bwd_kernels;             /* after fusion (fuse.h) */
    int64_t fwd_written, fwd_written_unfused; /* bytes the forward pass writes, fused and not */
    pmlc_stage_cost cost;                     /* at step 0 */
    int in_flight;                            /* micro-batches whose activations are alive at once */
    /* The distillation teacher's share (graph nodes teacher_begin..end): forward only. */
    int n_teacher_ops;
    double teacher_fwd, teacher_bwd; /* FLOPs per micro-batch; bwd is what the cost model gives its nodes */
    int64_t teacher_params, teacher_grads, teacher_opt_bytes; /* grads: teacher parameters autodiff reached */
    PMLC_VEC(pmlc_send) sends;                /* to the next stage */
    /* With recomputation (g->copy_of): the bytes per micro-batch the backward pass would
     * keep without it (cost.act_bytes is what it keeps with it), and the FLOPs per
     * micro-batch its backward pass spends recomputing. */
    int64_t act_bytes_plain;
    double recompute_flops;
} pmlc_stage_plan;

/* A training phase: from `step`, the parameters frozen by then stay frozen. */
typedef struct pmlc_phase {
    int64_t step;
    int64_t frozen; /* parameters (elements) frozen */
    pmlc_stage_cost *stages; /* with the stages cut for step 0 */
    /* With automatic placement, after step 0: the stages cut again for this phase's
     * costs, as `pmlc train` re-cuts them (runtime/src/run/recut.h); NULL otherwise. */
    pmlc_stage_cost *recut;
} pmlc_phase;

typedef struct pmlc_plan {
    pmlc_graph *g;
    pmlc_train *train;     /* NULL: a model without a train block */
    pmlc_distill *distill; /* this model is a distillation student; g holds the teacher */
    double teacher_fwd;    /* FLOPs per micro-batch, all stages */
    int64_t teacher_params;
    int n_stages; /* model stages; with chunks, the chunks, placed by pmlc_plan_device_of */
    int chunks;   /* model chunks per stage device (place = auto(..., chunks = V)); 1 when not given */
    int replicas; /* data-parallel pipelines (place = auto(..., replicas = R)); 1 when not given */
    pmlc_stage_plan *stages;
    int64_t binding[PMLC_MAX_SYMS];
    int64_t microbatch, microbatches, batch;
    pmlc_schedule schedule;
    pmlc_dtype precision;
    int casts; /* 16-bit copies the precision pass inserted (ir/precision.h) */
    double bubble;
    double imbalance; /* slowest stage over the mean, minus 1 */
    int64_t total_params;
    PMLC_VEC(pmlc_phase) phases;
    struct pmlc_timetable *timetable; /* NULL for schedules planned analytically only */
    const struct pmlc_timetable *by_chunk; /* the timetable per model stage (schedule.h: pmlc_timetable_by_chunk) */
    pmlc_fusion fusion;               /* of every node of g, forward and backward */
    struct pmlc_memplan *memory;      /* memplan.h; NULL without a timetable */
    const char *auto_choice;          /* schedule = auto: what the search chose and why, one line (autosched.h) */
} pmlc_plan;

/* The stage device that runs the plan's stage (model chunk) s: s itself without chunks;
 * with them, pml_plan_chunk_device's, the runtime's too. */
static inline int pmlc_plan_device_of(const pmlc_plan *pl, int s)
{
    return pml_plan_chunk_device(s, pl->n_stages / (pl->chunks > 1 ? pl->chunks : 1), (int)pl->schedule);
}

/* Places, costs and checks the plan of `g` (with its train block and distill, when
 * given; a student's graph already holds its teacher's forward pass). `lenient` sizes symbolic dimensions that have no size as 1 instead of
 * reporting them: checking a model needs its placement, not its true costs.
 * Returns NULL after reporting errors. */
pmlc_plan *pmlc_plan_build(pmlc_program *P, pmlc_graph *g, pmlc_train *t, pmlc_distill *d, int lenient);

/* "1.5 GiB", "512 B": a size as `pmlc plan` shows it. */
const char *pmlc_fmt_bytes(int64_t b, char *buf, size_t cap);

void pmlc_plan_print_text(const pmlc_program *P, const pmlc_plan *pl, FILE *out);
void pmlc_plan_print_json(const pmlc_program *P, const pmlc_plan *pl, FILE *out);
void pmlc_plan_print_dot(const pmlc_program *P, const pmlc_plan *pl, FILE *out);

#endif
