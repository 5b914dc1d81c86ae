/* memplan.h — the one memory planner of the runtime: where each value a backend keeps
 * for a stage sits in one arena, so that values alive at the same time never share a
 * byte and a dead value's bytes are used again. Both backends call it at create with
 * the values they keep after their own lowering (which values exist at all is each
 * backend's decision: docs/design.md, "One memory plan").
 *
 * Time is the stage's work in the order its backend runs it. A stage runs one pass at
 * a time (a micro-batch's forward pass, or its backward pass), in its timetable's
 * order, and within a pass its units (kernels, GEMMs, fused groups) in one fixed order.
 * The backend numbers the units of its forward list 0.., then those of its backward
 * list on from there; a unit's number is a tick. A value made and read within one pass
 * has one buffer that every micro-batch reuses: it lives from the tick that writes it
 * to the last tick that reads it (pml_mem_live for each), and is dead between passes,
 * since each pass writes it before it reads it. Every other value lives throughout
 * (pml_mem_always): parameters, constants, values computed once per step, values the
 * executor or another stage reads on its own time, and values kept from a micro-batch's
 * forward pass to its backward pass, with one slot per micro-batch in flight
 * (pml_mem_in_flight) laid end to end. Such a value's slots, together, live from the
 * first micro-batch's forward pass to the last one's backward pass, which in a GPipe or
 * 1F1B timetable holds every pass between, so a clock finer than this (per micro-batch
 * of the timetable, as the compiler's estimate keeps) would place nothing differently.
 * A value whose ticks are not all in one pass, or that was never given one, lives
 * throughout too: the planner does not guess when it is free.
 *
 * Placement: values that live throughout are stacked at the bottom in the order given;
 * the others, largest first, each at the smallest gap that fits (best fit) among the
 * values already placed whose lifetimes meet its own, each offset a multiple of its
 * alignment. A unit's reads and writes share its tick, so no unit writes over what it
 * reads. The arena's start must be aligned to the largest alignment asked for. */
#ifndef PML_PLAN_MEMPLAN_H
#define PML_PLAN_MEMPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "plan/plan.h"

typedef struct pml_mem_value {
    size_t bytes;        /* all of its slots (0: takes no room, offset 0) */
    size_t align;        /* a power of two; 0 means 1 */
    int32_t first, last; /* its ticks (set by pml_mem_live / pml_mem_always) */
    size_t offset;       /* from the arena's start: set by pml_mem_plan */
} pml_mem_value;

/* A value of `bytes` aligned to `align`, not yet used. */
pml_mem_value pml_mem_value_init(size_t bytes, size_t align);
/* Value v is read or written at `tick` (>= 0). */
void pml_mem_live(pml_mem_value *v, int32_t tick);
/* Value v lives throughout. */
void pml_mem_always(pml_mem_value *v);
/* Whether v lives throughout (always, never given a tick, or ticks in both passes;
 * `pass_end`: the first tick of the backward list). */
int pml_mem_lives_throughout(const pml_mem_value *v, int32_t pass_end);

/* Places values v[0..n) of one stage (pass_end: the number of forward ticks) and sets
 * *arena to the bytes they need. Fails only for want of memory. */
pml_status pml_mem_plan(pml_mem_value *v, int n, int32_t pass_end, size_t *arena, pml_err *err);

/* Places the values of every stage of `pl`, one per node (val[i] is node i's, on its
 * node's stage; pass_end[s]: stage s's forward ticks), and lays the stages' arenas one
 * after another, each starting at a multiple of `align` (at least every value's):
 * base[s] gets where stage s's arena starts, *total the bytes of them all; a value's
 * place is base[its stage] + its offset. */
pml_status pml_mem_plan_stages(const pml_plan *pl, pml_mem_value *val, const int32_t *pass_end, size_t align,
                               size_t *base, size_t *total, pml_err *err);

/* The most micro-batches stage s holds between their forward and last backward
 * instruction (bwd, or bwd_weight where backwards are split) at once, by its timetable
 * (at least 1, at most the step's micro-batches): the slots a value kept for the
 * backward pass needs. */
int64_t pml_mem_in_flight(const pml_plan *pl, int s);
/* The same until their input-gradient half (bwd, or bwd_input): the slots of a value
 * kept for the backward pass that the weight half (bwd_weight) never reads. Equal to
 * pml_mem_in_flight where backwards are whole. */
int64_t pml_mem_in_flight_input(const pml_plan *pl, int s);

#endif
