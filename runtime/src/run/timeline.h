/* timeline.h — the picture of one measured step (pml_run_options.timeline, `pmlc train
 * --timeline FILE.svg`): the plan's timetable as it ran, drawn as `pmlc plan --timeline`
 * draws the simulated one (pml/timeline_svg.h). One row per stage device of replica 0,
 * its forward, backward (or input- and weight-gradient halves) and update spans placed
 * at their measured times within the step; what is left of a row is the bubble. The
 * step drawn is the traced step of median length (the first, which warms caches, only
 * when it is the only one); the caption gives its length and bubble, the mean measured
 * bubble over the counted steps and the analytic one. */
#ifndef PML_RUN_TIMELINE_H
#define PML_RUN_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "plan/plan.h"

/* A timetable span of stage device `device`, in microseconds on one clock. `kind` is
 * the timetable instruction's (pipeline.h's pml_trace_event.kind); `chunk` the plan
 * chunk it ran. */
typedef struct pml_run_span {
    double t0, t1;
    int64_t step;
    int32_t mb, device, kind, chunk;
} pml_run_span;

/* Writes the SVG of the step to draw from `spans[0..n)` (any order; stage devices
 * 0..pml_plan_devices(pl) - 1 of one replica of micro_batches micro-batches) to `path`,
 * whole or not at all (formats/atomic_file.h). `mean_bubble` over `mean_steps` steps
 * and `analytic` go into the caption. */
pml_status pml_run_timeline_write(const char *path, const pml_plan *pl, const pml_run_span *spans, size_t n,
                                  int64_t micro_batches, double mean_bubble, int64_t mean_steps, double analytic,
                                  pml_err *err);

#endif
