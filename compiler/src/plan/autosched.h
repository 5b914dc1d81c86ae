/* autosched.h — the memory limit (train field `memory`) and `schedule = auto`.
 *
 * A stage device's need is the compiler's memory estimate (memplan.h): the arena of
 * every model chunk it runs, summed (one chunk per device except under interleaved
 * 1F1B and ZB-V), parameters, gradients, optimizer state and the activations its timetable keeps
 * alive at once included. With `memory` given, a plan whose device needs more is
 * refused at plan time, whatever chose its schedule.
 *
 * `schedule = auto` plans every candidate and keeps the fastest that fits: schedules
 * gpipe, 1f1b, zero_bubble (not when `place` names CUDA devices, whose backend runs
 * whole backward passes only), or with chunks interleaved_1f1b and (two chunks, not on
 * CUDA) zero_bubble_v and dualpipe_v; the
 * micro-batch counts dividing the batch up to 4 per stage device and replica, unless `microbatches`
 * is given (then only it); recompute off and on (the whole model), unless `recompute`
 * is given in any form (then only it). Each candidate is a fresh elaboration of the
 * model planned as usual (placement, costs, autodiff, timetable and its check, memory
 * estimate), so the chosen plan is an ordinary plan: the runtime never sees `auto`.
 * Fastest is the smallest simulated step (the timetable check's makespan over the
 * plan's stage costs, schedule.h); ties go to the smaller need. Why at most 4 micro-
 * batches per device: the simulation charges nothing per micro-batch, so it always
 * prefers more of them, while real kernels slow down as micro-batches shrink; at 4S the
 * 1F1B bubble is already under (S − 1)/(5S − 1), a fifth. */
#ifndef PMLC_AUTOSCHED_H
#define PMLC_AUTOSCHED_H

#include "plan/placement.h"

/* The most bytes one stage device of `pl` holds and which device (*device); -1 when
 * the plan has no memory estimate. */
int64_t pmlc_plan_device_need(const pmlc_plan *pl, int *device);

/* With the train block's `memory`: refuses (error at the field, naming the stage device,
 * its need and the limit) a plan that needs more. Returns nonzero when refused. */
int pmlc_plan_check_memory(pmlc_program *P, const pmlc_plan *pl);

/* schedule = auto for `model` with train block `t` (and distillation `d`); `g0` is the
 * model's bound graph, which tells the stages, chunks and replicas. Plans each candidate
 * (the file's comment), then sets t's schedule, microbatches and recompute to the
 * chosen one's and returns its plan, whose graph is its own, with pl->auto_choice
 * saying why. NULL after reporting an error when nothing fits the limit (naming the
 * smallest need) or no candidate plans at all. */
pmlc_plan *pmlc_plan_auto(pmlc_program *P, const pmlc_graph *g0, pmlc_train *t, pmlc_distill *d);

#endif
