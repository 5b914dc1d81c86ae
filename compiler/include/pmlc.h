/* pmlc.h — the compiler as a library: check a PML program and build its stage plan.
 *
 * A pmlc_session owns everything it makes (sources, AST, IR, plan) and frees it in
 * pmlc_session_destroy. Diagnostics go to the FILE* given in the options (NULL
 * discards them); the library never exits. A session is not thread-safe; separate
 * sessions may be used from separate threads.
 *
 * Arguments: every function checks its arguments and refuses a bad one without a
 * crash: a NULL session, pointer or out-pointer (unless its comment calls it optional), a
 * negative count, an enum value outside its enum, or a call in the wrong order (planning
 * before a program was checked). Functions that return an int then return -1, and say
 * why as an error diagnostic of the session ("pmlc: error: pmlc_session_plan: out is
 * NULL") when there is one; pmlc_session_create returns NULL (the reason goes to the
 * options' diag_out). pmlc_session_destroy accepts NULL.
 *
 * Exports: libpmlc is built with hidden visibility; a function is part of libpmlc.so's
 * interface only when its declaration here starts with PMLC_API, and every function
 * declared here carries it (install.the_shared_libraries_export_exactly_the_public_api
 * checks the dynamic symbol table against this header). */
#ifndef PMLC_H
#define PMLC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a function exported from libpmlc.so (see "Exports" above). */
#if defined(__GNUC__) || defined(__clang__)
#define PMLC_API __attribute__((visibility("default")))
#else
#define PMLC_API
#endif

typedef struct pmlc_session pmlc_session;

typedef struct pmlc_options {
    const char *const *include_dirs; /* -I folders, searched after the importer's folder */
    int n_include_dirs;
    FILE *diag_out;          /* where diagnostics are written; NULL: nowhere */
    int color;               /* 1: ANSI colours in diagnostics */
    int max_errors;          /* stop after this many errors; 0: the default (20) */
    const char *const *sets; /* "key=value" overrides of train fields (--set) */
    int n_sets;
    const char *model; /* which model to plan; NULL: the file's choice */
    /* Plan the training phase from this step: a freeze starting at or before it is
     * planned as static, so automatic placement balances the work left (0: step 0). */
    int64_t freeze_from;
    /* 1: the plan is for the CUDA backend as well (pmlc_session_plan_bytes_gpu,
     * pmlc_session_cuda_build), so fused ops it has no kernel for (attention) are planned
     * as the primitives they fuse, as they are for a train block placed on cuda devices.
     * 0: the CPU backend's plan. */
    int gpu_code;
} pmlc_options;

/* Output formats of pmlc_session_plan. TIMELINE: the simulated timetable as an SVG
 * picture (one row per stage; a schedule planned only has none, which is an error). */
typedef enum pmlc_plan_format { PMLC_PLAN_TEXT, PMLC_PLAN_JSON, PMLC_PLAN_DOT, PMLC_PLAN_TIMELINE } pmlc_plan_format;

PMLC_API const char *pmlc_version(void);
/* Whether a freeze-style name pattern (docs/language.md: `freeze`) selects the dotted
 * parameter name: 1 or 0. For tools that select parameters as `freeze` does. */
PMLC_API int pmlc_name_match(const char *pattern, const char *name);

/* `opt` is optional (NULL: every option its default). */
PMLC_API pmlc_session *pmlc_session_create(const pmlc_options *opt);
PMLC_API void pmlc_session_destroy(pmlc_session *s);

/* Loads, parses and checks the file at `path` (and its imports). Returns the number of
 * errors reported (0: the program is valid). */
PMLC_API int pmlc_session_check_file(pmlc_session *s, const char *path);

/* Same, for source text held in memory and named `path` in diagnostics (imports are
 * resolved against the folder of `path`). `text` need not be NUL-terminated. */
PMLC_API int pmlc_session_check_text(pmlc_session *s, const char *path, const char *text, size_t len);

/* After a successful check: partitions, costs and prints the stage plan to `out`.
 * Returns the number of errors reported while planning (0: printed). */
PMLC_API int pmlc_session_plan(pmlc_session *s, pmlc_plan_format fmt, FILE *out);

/* After a successful check: the plan-file bytes (pml/plan_format.h) of the model
 * pmlc_session_plan would print, in a malloc'ed buffer the caller frees. Hand them to
 * libpml's pml_plan_open_memory to train in the same process. Returns the number of
 * errors reported while planning (0: *bytes is set). */
PMLC_API int pmlc_session_plan_bytes(pmlc_session *s, unsigned char **bytes, size_t *len);

/* Same, with the model's GPU kernels in the plan: rendered as CUDA C and compiled by
 * NVRTC (loaded when needed) for each of `archs`, comma-separated NVRTC targets
 * ("sm_80,sm_90,compute_90" when NULL), through the kernel cache (PML_CACHE_DIR,
 * PML_CACHE=0 to bypass). `summary` (cap bytes) receives one line saying, per target,
 * whether it came from the cache or how long it compiled. Errors (no NVRTC, a bad
 * target, a kernel NVRTC refuses, shown at its .pml source) are reported like any
 * diagnostic; returns their number (0: *bytes is set). */
PMLC_API int pmlc_session_plan_bytes_gpu(pmlc_session *s, const char *archs, unsigned char **bytes, size_t *len,
                                         char *summary, size_t cap);

/* Whether GPU code can be compiled here: 1 when NVRTC loads, else 0 with the reason in
 * `why` (cap bytes; "NVRTC not found: ..."). pmlc build asks before choosing targets. */
PMLC_API int pmlc_gpu_available(char *why, size_t cap);

/* After a plan was made (pmlc_session_plan_bytes): where node `node` of its plan file
 * (pml/plan_format.h's node order) was made in the source, as "path:line:col", into
 * `buf` (cap bytes). A gradient node has the location of the forward expression it
 * differentiates. Returns 0; 1 (buf "") when the node has none; -1 past the last node
 * (or for a bad argument). */
PMLC_API int pmlc_session_node_where(pmlc_session *s, int node, char *buf, size_t cap);

/* The primitive operations, as `pmlc ops` lists them: op `i` (0, 1, ... in plan order). */
typedef struct pmlc_op_desc {
    const char *name;
    const char *op_class; /* "source", "elementwise", "reduce", "movement", "gather", "matmul", "row loss" */
    int min_inputs;
    int max_inputs; /* < 0: any number */
    const char *doc; /* what it computes, one line */
} pmlc_op_desc;

/* Fills *out for op `i`; returns 0, or -1 past the last op (*out untouched). */
PMLC_API int pmlc_op_describe(int i, pmlc_op_desc *out);

/* Number of errors reported so far (-1 for NULL). */
PMLC_API int pmlc_session_errors(const pmlc_session *s);

#ifdef __cplusplus
}
#endif
#endif
