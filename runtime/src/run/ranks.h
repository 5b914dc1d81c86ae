/* ranks.h — what the training driver does across ranks that the executor does not:
 * rank 0's outcome told to every rank (so that all go on or all stop), rank 0's bytes
 * sent to every rank, and the whole model onto rank 0 (to evaluate) or from it (after
 * it read --init or --resume). With one process (d NULL) every call succeeds at once.
 * Messages name what failed ("cannot reach the other ranks: ..."). */
#ifndef PML_RUN_RANKS_H
#define PML_RUN_RANKS_H

#include <stddef.h>

#include "exec/dist.h"
#include "exec/pipeline.h"

/* Rank 0's outcome `st` (with its message in *err) told to every rank: rank 0 gets `st`
 * back; the others PML_OK when rank 0 succeeded (whatever their own `st`), else
 * PML_ERR_PEER with rank 0's message. */
pml_status pml_run_agree(pml_dist *d, pml_status st, pml_err *err);
/* Rank 0's `bytes` at `buf` into every rank's `buf`. */
pml_status pml_run_share(pml_dist *d, void *buf, size_t bytes, pml_err *err);
/* The whole model (weights and optimizer state) onto rank 0, or from rank 0 to the
 * ranks that own each part. */
pml_status pml_run_gather(pml_dist *d, const pml_plan *pl, pml_pipeline *pipe, pml_err *err);
pml_status pml_run_scatter(pml_dist *d, const pml_plan *pl, pml_pipeline *pipe, pml_err *err);

/* CPU threads for this process by default: the machine's, shared by the ranks a
 * launcher (mpirun, torchrun, Slurm) says run on it. */
int pml_run_default_threads(void);

#endif
