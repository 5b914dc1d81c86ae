/* timeline.h — the picture of a plan's simulated timetable (`pmlc plan --timeline
 * FILE.svg`): one row per stage, time left to right as the timetable check simulated it
 * with the plan's stage costs (schedule.h), a box per forward (F), backward or its
 * input-gradient half (B) and weight-gradient half (W), coloured by kind and shaded and
 * labelled by micro-batch, and the optimizer step; what is left of a row is the bubble.
 * The caption gives the schedule and the analytic and simulated bubbles. */
#ifndef PMLC_TIMELINE_H
#define PMLC_TIMELINE_H

#include <stdio.h>

#include "plan/placement.h"

/* Writes the SVG document of `pl`'s timetable to `out`; `pl` must have one. */
void pmlc_plan_print_timeline(const pmlc_plan *pl, FILE *out);

#endif
