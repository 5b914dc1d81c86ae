/* cpu_test.h — the harness of the CPU kernel tests: tensors made, filled and poisoned
 * by the test, a seeded generator, NumPy-style index helpers for the naive references,
 * and the tolerance check (|got - ref| <= tol + |ref| * eps, as llm.c's validate_result).
 * Every reference is plain index arithmetic in double precision. */
#ifndef PML_CPU_TEST_H
#define PML_CPU_TEST_H

#include <stdint.h>
#include <stdio.h>

#include "cpu/kernels.h"

extern int t_failures, t_checks;

#define TCHECK(cond, ...)                                                            \
    do {                                                                             \
        t_checks++;                                                                  \
        if (!(cond)) {                                                               \
            t_failures++;                                                            \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fprintf(stderr, "\n");                                                   \
        }                                                                            \
    } while (0)

/* The test generator (xorshift-style, seeded per test). */
void t_seed(uint64_t s);
uint64_t t_u64(void);
int t_int(int lo, int hi); /* inclusive */
double t_unit(void);       /* [0, 1) */

/* A tensor of dtype and shape, filled with poison (NaN; INT32_MIN + 7 for i32). */
pml_view t_new(pml_dtype t, int rank, const int64_t *dims);
void t_free(pml_view *v);
int64_t t_numel(const pml_view *v);
double t_get(const pml_view *v, int64_t i);
void t_set(pml_view *v, int64_t i, double x);
void t_fill_rand(pml_view *v, double lo, double hi); /* i32: integers in [lo, hi] */
/* A random shape of `rank` with dims in [lo, hi]. */
void t_rand_dims(int rank, int64_t *dims, int lo, int hi);
const char *t_dims_str(int rank, const int64_t *dims);

/* Flat index -> multi-index over `dims`. */
void t_unravel(int64_t i, int rank, const int64_t *dims, int64_t *idx);
/* Flat index into `v` of the multi-index `idx` over a shape of rank `rank` that `v`
 * broadcasts to (aligned right, size-1 dims read index 0). */
int64_t t_bcast_index(const pml_view *v, int rank, const int64_t *idx);

/* Runs one op; returns its status. */
pml_status t_run(pml_opcode op, const pml_view *in, int n_in, pml_view *out, const int64_t *attr, int n_attr,
                 double fval, pml_err *err);
/* As t_run, and a check that it returned PML_OK. */
int t_run_ok(pml_opcode op, const pml_view *in, int n_in, pml_view *out, const int64_t *attr, int n_attr, double fval);

/* Compares out with ref (both NaN, or equal infinities, pass); reports the first few
 * mismatches under `what`; returns the number of mismatches. */
int t_compare(const char *what, const pml_view *out, const double *ref, double tol, double eps);
/* With the dtype's default tolerance: f32 1e-5 + 1e-5|ref|, f64 1e-12 + 1e-12|ref|, i32 exact. */
int t_compare_default(const char *what, const pml_view *out, const double *ref);

/* The three types every float op runs in, for loops. */
extern const pml_dtype t_float_types[2];

#endif
