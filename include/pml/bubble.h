/* bubble.h — each schedule's analytic bubble: the share of a step a stage device idles,
 * with equal stage costs and F = B = W (a backward twice a forward, its input and
 * weight halves equal). The compiler prints it beside its timetable's simulated bubble
 * (plan/placement.c) and the runtime's trace beside the measured one (run/trace.c);
 * the timetable tests check the simulation reaches it (tests/core). Schedules are
 * numbered as in the plan file's CONF (pml/plan_format.h). */
#ifndef PML_BUBBLE_H
#define PML_BUBBLE_H

#include <stdint.h>

#include "pml/plan_format.h"

/* D stage devices of V chunks each, M micro-batches (per replica). GPipe and 1F1B idle
 * (D − 1) forward-and-backward slots of M + D − 1; interleaved 1F1B V times fewer
 * (idle over work (D − 1)/(V·M)); ZB-H1 about a third of 1F1B's, W filling the rest
 * ((D − 1)(F + B − W) over 3M units). ZB-V in units of one chunk's F (= B = W, so a
 * micro-batch is 6 units per device): the step takes 6M + D − 1 (the ramp of D − 1
 * forwards down the V) or, when M is too small to fill the V, the round trip of the
 * last micro-batch, 4M + 4D − 2, whichever is longer; the simulation of
 * schedule.c's ZB-V timetable gives exactly this for every D and M, and of its
 * DualPipeV timetable (M >= 2D, each overlapped pair run forward then backward) too. */
static inline double pml_analytic_bubble(int schedule, int D, int V, int64_t M)
{
    if (D <= 1 || M < 1) return 0;
    double p = D - 1, m = (double)M;
    switch (schedule) {
    case 2: /* interleaved_1f1b */
        return p / (V * m + p);
    case 3: /* zero_bubble (ZB-H1) */
        return p / (3 * m + p);
    case PML_PLAN_SCHEDULE_DUALPIPE_V: /* M >= 2D: ZB-V's, its pairs run one after the other */
    case PML_PLAN_SCHEDULE_ZERO_BUBBLE_V: {
        double full = 6 * m + p, trip = 4 * m + 4 * (double)D - 2;
        return 1 - 6 * m / (full > trip ? full : trip);
    }
    default: /* gpipe, 1f1b */
        return p / (m + p);
    }
}

#endif
