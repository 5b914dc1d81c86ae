/* cli_util.h — what the pmlc commands that run plans share: reporting a runtime error
 * and choosing the backend (--backend). Both print to stderr; this is the tool, not the
 * library. */
#ifndef PMLC_CLI_UTIL_H
#define PMLC_CLI_UTIL_H

#include "backend_ops.h"
#include "core/error.h"
#include "pml.h"

/* Prints "pmlc: error: WHAT[: the error's message]" to stderr; returns 1 (the exit status). */
int pmlc_cli_fail(const char *what, const pml_err *err);
/* The last message pmlc_cli_fail printed, without "pmlc: error: " ("" before any): the
 * reason a failing rank gives the others as it leaves (train_ranks.h). */
const char *pmlc_cli_last_error(void);

/* Resolves --backend (`want`) to the backend that will run `plan` and its table;
 * prints why not and returns 1 when the request cannot be met, else 0. */
int pmlc_cli_backend(pml_backend want, const pml_plan *plan, pml_backend *got, const pml_backend_ops **ops);

#endif
