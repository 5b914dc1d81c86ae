/* build_cmd.h — `pmlc build FILE -o OUT.plan`, and loading a plan from either a plan
 * file or a program (build_cmd.c). */
#ifndef PMLC_BUILD_CMD_H
#define PMLC_BUILD_CMD_H

#include <stdint.h>

#include "pml.h"
#include "pmlc.h"

/* Compiles `file` and writes its plan file to `out` atomically: `out` is either left
 * as it was or holds the complete plan. `arch`: the GPU targets to compile the
 * kernels for ("sm_80,sm_90"), "none", or NULL for the default targets when NVRTC is
 * found (a note on stderr when it is not). Diagnostics go to opt->diag_out, other
 * errors to stderr. Returns the exit status: 0 written, 1 otherwise. */
int pmlc_build_main(const char *file, const pmlc_options *opt, const char *out, const char *arch);

/* The plan of `file`, opened in `ctx`: a plan file (recognised by its magic bytes) is
 * read as it is and `opt` is not used (--set and --model apply only when compiling);
 * anything else is compiled as a program and opened from the plan-file bytes, so both
 * give what `pmlc build` would write. Reports errors to stderr (diagnostics to
 * opt->diag_out) and returns nonzero on failure; *out is then NULL. The caller closes
 * the plan with pml_plan_close. A program compiled for the backend `want` gets GPU code
 * for this machine's GPU when it will run there (cuda; auto with a device and NVRTC). */
int pmlc_plan_from_file(pml_context *ctx, const char *file, const pmlc_options *opt, pml_backend want,
                        pml_plan **out);
/* Whether `file` starts with the plan file's magic bytes. */
int pmlc_is_plan_file(const char *file);
/* The same, and a 64-bit hash (FNV-1a, include/pml/hash.h) of the plan-file bytes in
 * *hash: what ranks compare at start-up to know that they run one plan. */
int pmlc_plan_from_file_hash(pml_context *ctx, const char *file, const pmlc_options *opt, pml_backend want,
                             pml_plan **out, uint64_t *hash);
/* The same, and, when `file` is compiled (not a plan file: *where NULL), where each
 * node of the plan was made in the source: (*where)[n] is "path:line:col" or "", a
 * NULL-terminated array for pml_session_options.node_where, freed by pmlc_where_free. */
int pmlc_plan_from_file_where(pml_context *ctx, const char *file, const pmlc_options *opt, pml_backend want,
                              pml_plan **out, uint64_t *hash, char ***where);
void pmlc_where_free(char **where);

#endif
