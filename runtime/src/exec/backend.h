/* backend.h — which backend runs a plan: the one place that turns a requested
 * pml_backend (cpu, cuda, auto) into the one that will run, or a clear reason why the
 * request cannot be met. Used by pml_session_create and by `pmlc train/infer --backend`.
 *
 * CPU is always available. CUDA needs a usable device (the driver is dlopened, so every
 * build has the backend); AUTO takes CUDA when it would be accepted and the CPU
 * otherwise, and never fails. */
#ifndef PML_BACKEND_H
#define PML_BACKEND_H

#include <stddef.h>

#include "backend_ops.h"
#include "core/error.h"
#include "pml.h"

/* pml_backend_parse (the names "cpu", "cuda", "auto") is public: pml.h. */

/* Resolves `want` into *got (PML_BACKEND_CPU or PML_BACKEND_CUDA) for running `plan`
 * (NULL: any plan); on failure returns PML_ERR_UNSUPPORTED with the reason in err.
 * CUDA needs a device; AUTO takes it when the plan also has GPU code (a plan built
 * with --arch none runs on the CPU). */
pml_status pml_backend_select(pml_backend want, const pml_plan *plan, pml_backend *got, pml_err *err);

/* The table that runs a resolved backend (CPU or CUDA). */
const pml_backend_ops *pml_backend_ops_of(pml_backend b);

/* The GPU target of device 0 ("sm_90"), for compiling a model's kernels for it; returns
 * 0, or -1 when there is no usable device. */
int pml_backend_cuda_arch(char *buf, size_t cap);

#endif
