/* ckpt_freeze.h — the automatic freeze's state in a checkpoint's trainer.json.
 *
 * `freeze auto` decides at run time (plan/phase.h), so its state is trainer state:
 * without it a resumed run would start its checks afresh and freeze later than the
 * uninterrupted one. For a plan with `freeze auto`, trainer.json (version 2) holds
 *   "auto_freeze": {"layers": ["stem", ...], "frozen": ["stem", ...],
 *                   "norms": [g or -1, ...], "checked": STEP}
 * with every layer of the plan in model order (the phase's numbering), the layers the
 * checks froze, each layer's gradient norm at the last check (-1: none, or frozen) as
 * a number printed with 17 significant digits so it reads back exactly, and the step
 * whose check has run (-1: none). A check due at the checkpoint's step is run before
 * the state is taken (pml_pipeline_phase), so no gradient needs saving.
 *
 * Reading validates against the pipeline's phase first (the layer list must be the
 * plan's, each frozen name a layer, norms numbers, checked an integer >= -1) and
 * changes nothing; applying then sets the phase. Errors are PML_ERR_FORMAT with
 * "PATH: what is wrong". */
#ifndef PML_TRAIN_CKPT_FREEZE_H
#define PML_TRAIN_CKPT_FREEZE_H

#include "exec/pipeline.h"
#include "formats/json.h"
#include "plan/plan.h"

/* Appends `,\n  "auto_freeze": {...}` to `b`; nothing for a plan without `freeze auto`. */
pml_status pml_ckpt_freeze_write(const pml_plan *plan, pml_pipeline *p, pml_json_buf *b, pml_err *err);

/* Checks `v` (trainer.json's "auto_freeze", NULL when absent) of file `path`; with
 * `apply`, then sets the pipeline's phase from it. A plan with `freeze auto` needs it
 * (unless `old`, a version-1 file written before it existed: its checks start afresh),
 * a plan without refuses it. */
pml_status pml_ckpt_freeze_read(const pml_plan *plan, pml_pipeline *p, const pml_json *v, const char *path, int old,
                                int apply, pml_err *err);

#endif
