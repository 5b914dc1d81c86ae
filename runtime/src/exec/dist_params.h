/* dist_params.h — parameters and optimizer state between the ranks of a run (dist.h):
 * gathered to one rank (which then holds the whole model, to evaluate on its own;
 * checkpoints are written in shards by their owners instead, ckpt/checkpoint.h), or
 * scattered from one rank to the ranks that own them (after it loaded a checkpoint). This relies on every rank's backend holding host copies of
 * every parameter, which the CPU backend does (it allocates every stage in every
 * process); only the owners' copies are current between gathers.
 *
 * Every rank calls the same function with the same arguments, between steps. */
#ifndef PML_TRAIN_DIST_PARAMS_H
#define PML_TRAIN_DIST_PARAMS_H

#include "exec/dist.h"
#include "exec/pipeline.h"

/* Each trained or frozen parameter (not a distillation teacher's, which every rank
 * loads itself), with its optimizer state, from the rank owning its stage to `root`. */
pml_status pml_dist_params_gather(pml_dist *d, const pml_plan *plan, pml_pipeline *p, int root, pml_err *err);
/* The reverse: from `root` to each parameter's owner. */
pml_status pml_dist_params_scatter(pml_dist *d, const pml_plan *plan, pml_pipeline *p, int root, pml_err *err);

#endif
