/* halves.h — which part of a micro-batch's work runs each plan node, for every backend:
 * the forward pass, the backward pass, and, when the timetable splits backward passes
 * (zero bubble's bwd_input and bwd_weight instructions), the backward's input half and
 * its weight half, which may run later, in a bubble. */
#ifndef PML_PLAN_HALVES_H
#define PML_PLAN_HALVES_H

#include <stdint.h>

#include "plan/plan.h"

/* Whether pl's timetable splits backward passes into halves. */
int pml_plan_splits_backward(const pml_plan *pl);

/* half[0..n_nodes): 0 forward, 1 backward (with `split`, its input half), 2 the weight
 * half (with `split` only). A node runs in its pass's part, except weight-gradient work
 * that input-gradient work or another stage reads, which must be done when the input
 * half is sent: it runs in the input half, with every node of its kernel and the
 * weight-gradient work it reads. So the nodes of a kernel share a part, and no node
 * reads a node of a later part on its stage, or of a weight half on another. */
void pml_plan_halves(const pml_plan *pl, int split, uint8_t *half);

#endif
