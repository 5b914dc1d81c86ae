/* api_test.h — the API conformance harness: a program built only against the installed
 * package (pml.h, pmlc.h, libpml, libpmlc; tests/install/install_test.py builds it by
 * pkg-config), whose cases each become one ctest test, api.NAME. The files named
 * *_mpi.c use pml_mpi.h too: they are built, with libpml_mpi, only when PML was built
 * with MPI.
 *
 * A case is written in any .c file of tests/api as
 *     API_CASE(pml_plan_open_names_a_missing_file) { ... CHECK(...); return 0; }
 * and needs no other registration: tests/api/CMakeLists.txt reads the API_CASE lines, and
 * the program finds the case by its name at run time. A case returns 0 when it passes;
 * the CHECK macros print the file, line and what failed, and return 1. Paths a case may
 * need: api_examples() (the source tree's examples/ folder, for .pml files only),
 * api_work() (an empty scratch folder of its own), api_pmlc() (the installed pmlc, for
 * comparisons with the CLI). */
#ifndef PML_API_TEST_H
#define PML_API_TEST_H

#include <stdio.h>
#include <string.h>

#include "pml.h"
#include "pmlc.h"

typedef int (*api_case_fn)(void);
void api_register(const char *name, api_case_fn fn);
const char *api_examples(void);
const char *api_work(void);
const char *api_pmlc(void);
/* A path under api_examples() / api_work(), in a static buffer of 8 (rotating). */
const char *api_example_path(const char *name);
const char *api_work_path(const char *name);
/* Compiles examples/NAME to plan bytes through pmlc.h (diagnostics to stderr); the caller
 * frees *bytes. Returns 0 on success. */
int api_compile_example(const char *name, unsigned char **bytes, size_t *len);
void api_failed(const char *file, int line, const char *fmt, ...);
/* A context, examples/mlp.pml's plan and a CPU session on it (seed 1234); returns 0 on
 * success. api_close_mlp frees the three. */
int api_open_mlp(pml_context **ctx, pml_plan **plan, pml_session **s);
void api_close_mlp(pml_context *ctx, pml_plan *plan, pml_session *s);

#define API_CASE(name)                                                                                                \
    static int name(void);                                                                                            \
    __attribute__((constructor)) static void name##_register(void) { api_register(#name, name); }                     \
    static int name(void)

#define CHECK(cond)                                                                                                   \
    do {                                                                                                              \
        if (!(cond)) {                                                                                                \
            api_failed(__FILE__, __LINE__, "%s", #cond);                                                              \
            return 1;                                                                                                 \
        }                                                                                                             \
    } while (0)

/* `expr` returns the pml_status `want`. */
#define CHECK_STATUS(expr, want)                                                                                      \
    do {                                                                                                              \
        pml_status got_ = (expr);                                                                                     \
        if (got_ != (want)) {                                                                                         \
            api_failed(__FILE__, __LINE__, "%s gave '%s', expected '%s'", #expr, pml_status_name(got_),               \
                       pml_status_name(want));                                                                        \
            return 1;                                                                                                 \
        }                                                                                                             \
    } while (0)

/* The context's last error message contains `text`. */
#define CHECK_ERROR_SAYS(ctx, text)                                                                                   \
    do {                                                                                                              \
        const char *msg_ = pml_context_error(ctx);                                                                    \
        if (!strstr(msg_, (text))) {                                                                                  \
            api_failed(__FILE__, __LINE__, "the error '%s' does not say '%s'", msg_, (text));                         \
            return 1;                                                                                                 \
        }                                                                                                             \
    } while (0)

/* `expr` is refused as PML_ERR_INVALID_ARG with a message in ctx saying `text`. */
#define CHECK_REFUSED(ctx, expr, text)                                                                                \
    do {                                                                                                              \
        CHECK_STATUS(expr, PML_ERR_INVALID_ARG);                                                                      \
        CHECK_ERROR_SAYS(ctx, text);                                                                                  \
    } while (0)

#endif
