/* memory.h — what a run's stage devices hold, against the plan's memory limit.
 *
 * The backend counts what each stage allocates (backend_ops.h's memory: its arena,
 * accumulators, optimizer state, derived weight copies, scratch, and its threads'
 * temporaries at their largest). A train block's `memory = SIZE` (conf.memory, bytes
 * per stage device) was checked at plan time against the compiler's estimate; the run
 * checks what the backend holds against it too, twice: before step 1 (every allocation
 * but the temporaries, which a step grows) and after the run's first step (the
 * temporaries too: every later step does the same work, so holds no more). Over the
 * limit is an error naming the stage device, what it holds, by kind, and the limit:
 * the limit is the device's memory, and a plan that passed on the estimate but does
 * not fit when run must not run on as if it did (docs/language.md, "memory"). A
 * backend that does not count (the CUDA backend) is not checked. Ranks: each checks
 * the stage devices it runs, and they agree on the outcome. */
#ifndef PML_RUN_MEMORY_H
#define PML_RUN_MEMORY_H

#include <stddef.h>

#include "exec/pipeline.h"
#include "plan/plan.h"

/* An error (PML_ERR_NOMEM) when a stage device this process runs holds more than
 * pl->conf.memory (none: PML_OK); `when` says which check it is ("before step 1"). */
pml_status pml_run_memory_check(pml_pipeline *p, const pml_plan *pl, const char *when, pml_err *err);

/* What every stage device this process runs holds, as a JSON object for the metrics
 * record of the run's first step (its "memory"): {"limit_bytes": L, "stages":
 * [{"stage": d, "bytes": total, "values": .., "grads": .., "optimizer": .., "derived":
 * .., "scratch": .., "temporaries": ..}, ...]}. Empty when the backend does not count,
 * or `cap` is too small. */
void pml_run_memory_record(pml_pipeline *p, const pml_plan *pl, char *out, size_t cap);

#endif
