/* cli_util.h — what the pmlc commands that run plans share: reporting an error,
 * choosing the backend (--backend) and saying how to resume a run. Both print to stderr; this is the tool, not the
 * library. */
#ifndef PMLC_CLI_UTIL_H
#define PMLC_CLI_UTIL_H

#include "pml.h"

/* Prints "pmlc: error: WHAT[: WHY]" to stderr (WHY: a library message, or NULL);
 * returns 1 (the exit status). */
int pmlc_cli_fail(const char *what, const char *why);

/* Applies --devices to the context: `local` (--devices local) puts every stage device
 * on the launcher's local rank's GPU (pml_context_set_devices_local), else gpus[0..n)
 * remaps the plan's cuda:N (n 0: none). Prints why not and returns 1, else 0. */
int pmlc_cli_devices(pml_context *ctx, const int *gpus, int n, int local);

/* Resolves --backend (`want`) to the backend that will run `plan` (pml_backend_choose,
 * with the context's --devices);
 * prints why not and returns 1 when the request cannot be met, else 0. */
int pmlc_cli_backend(pml_context *ctx, pml_backend want, const pml_plan *plan, pml_backend *got);

/* Prints "resume with: COMMAND\n" to stderr: argv as typed, without --resume and
 * --init (a resume brings its own weights), with --resume DIR; `world` > 1 adds that
 * the ranks may resume on any number of ranks. */
void pmlc_cli_say_resume(int argc, char *const *argv, const char *dir, int world);

#endif
