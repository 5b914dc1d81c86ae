/* backend.h — which backend runs a plan: the one place that turns a requested
 * pml_backend (cpu, cuda, auto) into the one that will run, or a clear reason why the
 * request cannot be met. Used by pml_session_create and by `pmlc train/infer --backend`.
 *
 * CPU is always available. CUDA needs this build's CUDA support and a usable device;
 * AUTO takes CUDA when CUDA would be accepted and the CPU otherwise, and never fails. */
#ifndef PML_BACKEND_H
#define PML_BACKEND_H

#include "error.h"
#include "pml.h"

/* Parses a name as the command line spells it ("cpu", "cuda", "auto"); returns 0 and
 * sets *out, or -1 for an unknown name. */
int pml_backend_parse(const char *name, pml_backend *out);

/* Resolves `want` into *got (PML_BACKEND_CPU or PML_BACKEND_CUDA); on failure returns
 * PML_ERR_UNSUPPORTED with the reason in err. */
pml_status pml_backend_select(pml_backend want, pml_backend *got, pml_err *err);

#endif
