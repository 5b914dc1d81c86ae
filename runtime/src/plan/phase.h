/* phase.h — which training work a step runs, given which parameters are frozen.
 *
 * A plan's backward pass is autodiff's for the parameters trained from step 0. A
 * scheduled freeze (`freeze ... after N steps`: params[].frozen_from) or an automatic
 * one (train/autofreeze.h) trains fewer later on; from then on a backward node runs only
 * when the gradient of a parameter still trained depends on it. That is the rule
 * autodiff applies to a static freeze, so after the boundary the step does what the
 * static freeze's plan does: frozen parameters get no weight-gradient work, nothing
 * below a frozen prefix gets an input gradient (the prefix runs forward only), and
 * their accumulators and optimizer state are left alone. The compiler costs the same
 * phases (`pmlc plan`, "phases").
 *
 * The automatic freeze (`freeze auto(every = K, threshold = t)`, conf.freeze_every and
 * conf.freeze_threshold), in the spirit of PipeTransformer: before every K-th step the
 * backend hands over each parameter's squared gradient norm of the step before; a
 * layer's gradient norm is the root of its parameters' sum, and its relative change is
 * |g - g'| / g', g' being its norm at the previous check. Walking the layers in model
 * order from the first, frozen layers (statically, by schedule or earlier checks) are
 * passed over, and each trained layer whose change is below t is frozen, up to the
 * first that is not: the frozen prefix grows, and no layer behind a trained one is
 * frozen, so freezing always removes input-gradient work. The last trained layer is
 * never frozen (training goes on), nor is anything at the first check after the start,
 * which only records norms. Frozen by a check is frozen for good. A checkpoint saves
 * this state (the layers it froze, the norms of the last check, the step checked last;
 * ckpt/checkpoint.h) and a resume restores it, so a resumed run checks as the
 * uninterrupted one would. Because a check reads the gradients of the step before, a
 * checkpoint taken where one is due runs it first (pml_phase_auto_check): it gives the
 * same result then as at the next begin, which then does not repeat it.
 *
 * Runnable sets are closed: a running node's backward inputs run, and a fused kernel
 * runs whole or not at all, so nothing that runs reads a value that did not. The
 * forward pass always runs whole.
 *
 * A pml_phase is owned by one backend context and changed only between steps (by
 * begin); workers read it during a step. */
#ifndef PML_PLAN_PHASE_H
#define PML_PLAN_PHASE_H

#include <stdint.h>

#include "plan/plan.h"

typedef struct pml_phase {
    uint8_t *frozen; /* per parameter: takes no gradient, accumulation or update this step */
    uint8_t *extra;  /* per parameter: frozen by the runtime (auto freeze), beyond the plan's schedule */
    uint8_t *runs;   /* per node: runs in this step (every forward node does) */
    int32_t *stack;  /* work list of pml_phase_at */
    uint8_t *kernel_done;
    int64_t n_frozen; /* frozen parameters */
    int64_t last;     /* the step of the last pml_phase_at, -1 none */
    /* The automatic freeze's state. */
    double *sq;      /* per parameter: its squared gradient norm, filled by the backend */
    int32_t *layer;  /* per parameter: its layer, numbered in model order */
    int n_layers;
    double *norm;     /* per layer: its gradient norm at the last check, -1 none */
    double *now;      /* per layer: scratch */
    int32_t *first;   /* per layer: its first parameter */
    uint8_t *trained; /* per layer: scratch, a parameter of it still trains */
    int64_t n_auto;   /* layers the automatic freeze has frozen */
    int64_t checked;  /* the step whose check has run, -1 none */
    /* With several processes each holds only its own stages' gradients: sum_sq adds
     * sq[0..n) over them before a check decides, so that every process decides on the
     * whole model's norms, and alike. NULL in one process. Set by the pipeline
     * (exec/pipeline.c) when it is given other ranks; called from begin, which every
     * rank runs for the same steps. */
    pml_status (*sum_sq)(void *ctx, double *sq, int n, pml_err *err);
    void *sum_sq_ctx;
} pml_phase;

/* Allocates the sets and sets them for step 0. */
pml_status pml_phase_init(pml_phase *ph, const pml_plan *pl, pml_err *err);
void pml_phase_free(pml_phase *ph); /* NULL-safe, and safe on a zeroed one */

/* The frozen set for `step` (the schedule's and `extra`'s); the runnable nodes are
 * recomputed when it changed. Returns 1 when it changed. Linear in the graph's size. */
int pml_phase_at(pml_phase *ph, const pml_plan *pl, int64_t step);

/* Whether the automatic freeze checks before step `step`: the plan has one, `step` is a
 * multiple of its period, the step before was trained by this context, so the
 * backend's gradients are that step's, and the check has not run yet. Call before
 * pml_phase_at(step). */
int pml_phase_auto_due(const pml_phase *ph, const pml_plan *pl, int64_t step);
/* The check before step `step`, with ph->sq filled by this process (summed over the
 * processes first through sum_sq): freezes layers (in `extra`; pml_phase_at(step) then
 * applies them). Fails only when sum_sq does. */
pml_status pml_phase_auto(pml_phase *ph, const pml_plan *pl, int64_t step, pml_err *err);
/* The check before `step` when it is due, its norms taken from `acc` (per parameter,
 * NULL or its gradient summed over the micro-batches, in host memory). */
pml_status pml_phase_auto_check(pml_phase *ph, const pml_plan *pl, int64_t step, float *const *acc, pml_err *err);
/* Sets the automatic freeze's state as a checkpoint saved it: per layer (model order)
 * whether a check froze it and its norm at the last check (-1 none), and the step
 * checked last. */
void pml_phase_auto_restore(pml_phase *ph, const pml_plan *pl, const uint8_t *frozen, const double *norm,
                            int64_t checked);

/* Copies the automatic freeze's state from `from`, a phase of a plan with the same
 * parameters (a re-planned phase: runtime/src/run/recut.h), into `to`. */
void pml_phase_auto_copy(pml_phase *to, const pml_phase *from, const pml_plan *pl);

/* What a backend's begin calls before a training step, while `acc` still holds the step
 * before's gradients: pml_phase_auto_check, then pml_phase_at. */
pml_status pml_phase_begin(pml_phase *ph, const pml_plan *pl, int64_t step, float *const *acc, pml_err *err);

/* Serving (FWD_SERVE) runs only the forward nodes the output depends on: per node, 1
 * for those. Malloc'ed (the caller frees it); NULL when out of memory. */
uint8_t *pml_phase_serving(const pml_plan *pl);

/* Whether a unit of work runs: node n (n >= 0) or plan kernel -(n + 1). */
static inline int pml_phase_runs(const pml_phase *ph, const pml_plan *pl, int n)
{
    return n >= 0 ? ph->runs[n] : ph->runs[pl->kernels[-n - 1].nodes[0]];
}

#endif
