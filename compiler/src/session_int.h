/* session_int.h — for tests and the runtime's in-process compile path only: the
 * elaborated graph and plan behind a checked session (see pmlc.h for the session). */
#ifndef PMLC_SESSION_INT_H
#define PMLC_SESSION_INT_H

#include "gpu/cuda_build.h"
#include "plan/placement.h"

/* The graph and plan of the model pmlc_session_plan would print (after a successful
 * check), or NULL after reporting why. Owned by the session. */
pmlc_graph *pmlc_session_graph(pmlc_session *s, const pmlc_plan **plan);

/* The program behind a session: its sources, diagnostics and symbol names. */
pmlc_program *pmlc_session_program(pmlc_session *s);

/* What `pmlc build --arch` runs, after a successful check of `s`: renders the kernels
 * of the model pmlc_session_plan would print into *m (owned by the session) and
 * compiles them for `archs` (NULL: the default) through the kernel cache the
 * environment names (PML_CACHE_DIR, PML_CACHE=0). Returns the number of errors
 * reported to the session's diagnostics (0: *images is set). */
int pmlc_session_cuda_build(pmlc_session *s, const char *archs, pmlc_cuda_module *m, pmlc_cuda_image **images,
                            int *n_images);

#endif
