/* plan_write.h — a plan as the bytes of a plan file (pml_plan_format.h). */
#ifndef PMLC_PLAN_WRITE_H
#define PMLC_PLAN_WRITE_H

#include "plan.h"

/* Serialises `pl` (graph, parameters, inputs, timetable, training configuration) into
 * a malloc'ed buffer the caller frees. Returns nonzero after reporting an error. */
int pmlc_plan_serialize(pmlc_program *P, const pmlc_plan *pl, unsigned char **out, size_t *len);

#endif
