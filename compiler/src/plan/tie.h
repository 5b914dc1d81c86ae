/* tie.h — weights tied across stages: a parameter read on stages other than its own
 * (GPT-2's token table, read by the embedding on the first stage and by the output
 * projection on the last) gets a copy on each such stage.
 *
 * A copy is a parameter of its own (ir_param.tie names the one it copies, its root)
 * with the root's name, shape, initializer and freeze, and a node on the reading stage
 * placed right after the root's node; that stage's reads go to it. So every backend
 * keeps, differentiates and updates it as any parameter of the stage, and the runtime
 * keeps the copies equal: they start from the same values (initialised by name, loaded
 * by name), and before each optimizer step every copy's gradient and the root's are
 * summed, in stage order, into each of them (docs/design.md, "Weights tied across
 * stages"), so the same update keeps the same bits. Files hold the root only. */
#ifndef PMLC_PLAN_TIE_H
#define PMLC_PLAN_TIE_H

#include "front/program.h"
#include "ir/ir.h"

/* Gives each stage that reads a parameter of another stage its own copy (after
 * placement, before autodiff). Returns the number of copies made. */
int pmlc_tie_params(pmlc_program *P, pmlc_graph *g);

#endif
