/* types.h — element types, symbolic sizes and shapes.
 *
 * A size is `coef · Π sym_i^pow_i`: a constant times a product of symbolic dimensions
 * (B, T). That is closed under the products and exact quotients shapes need
 * (reshape to [B*T, C], C/heads), and sums are defined only between sizes with the
 * same symbols. All arithmetic is checked for overflow. Symbols are numbered per
 * session; their names live in pmlc_symtab. */
#ifndef PMLC_TYPES_H
#define PMLC_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef enum pmlc_dtype { PMLC_F32, PMLC_BF16, PMLC_F16, PMLC_I32, PMLC_DTYPE_COUNT } pmlc_dtype;

const char *pmlc_dtype_name(pmlc_dtype t);
int pmlc_dtype_bytes(pmlc_dtype t);
int pmlc_dtype_from_name(const char *name); /* -1 when not a dtype */
static inline int pmlc_dtype_is_float(pmlc_dtype t) { return t != PMLC_I32; }

#define PMLC_MAX_SYMS 8
#define PMLC_MAX_RANK 8
/* Largest element count of one tensor. */
#define PMLC_MAX_ELEMS (INT64_C(1) << 48)

typedef struct pmlc_size {
    int64_t coef;
    uint8_t pow[PMLC_MAX_SYMS];
} pmlc_size;

typedef struct pmlc_symtab {
    const char *names[PMLC_MAX_SYMS];
    int n;
} pmlc_symtab;

typedef struct pmlc_shape {
    int rank;
    pmlc_size d[PMLC_MAX_RANK];
} pmlc_shape;

typedef enum pmlc_size_err {
    PMLC_SIZE_OK = 0,
    PMLC_SIZE_OVERFLOW,
    PMLC_SIZE_INEXACT, /* division leaves a remainder, or symbols do not divide */
    PMLC_SIZE_ZERO,    /* division by zero */
    PMLC_SIZE_SYMBOLIC /* a sum or comparison of sizes with different symbols */
} pmlc_size_err;

static inline pmlc_size pmlc_size_int(int64_t v)
{
    pmlc_size s = {v, {0}};
    return s;
}
pmlc_size pmlc_size_sym(int sym);
int pmlc_size_is_const(pmlc_size s);
int pmlc_size_eq(pmlc_size a, pmlc_size b);
pmlc_size_err pmlc_size_mul(pmlc_size a, pmlc_size b, pmlc_size *out);
pmlc_size_err pmlc_size_div(pmlc_size a, pmlc_size b, pmlc_size *out);
pmlc_size_err pmlc_size_mod(pmlc_size a, pmlc_size b, pmlc_size *out);
pmlc_size_err pmlc_size_add(pmlc_size a, pmlc_size b, int sign, pmlc_size *out);
/* Value with every symbol bound; PMLC_SIZE_OVERFLOW past INT64_MAX. */
pmlc_size_err pmlc_size_eval(pmlc_size s, const int64_t *binding, int64_t *out);

/* Writes "B*T*4" / "768"; returns `buf`. */
char *pmlc_size_str(pmlc_size s, const pmlc_symtab *syms, char *buf, size_t cap);
/* Writes "f32[B, 10]"; returns `buf`. */
char *pmlc_type_str(pmlc_dtype t, const pmlc_shape *sh, const pmlc_symtab *syms, char *buf, size_t cap);
/* Product of all dimensions (symbolic); error on overflow or past PMLC_MAX_ELEMS. */
pmlc_size_err pmlc_shape_numel(const pmlc_shape *sh, pmlc_size *out);

#endif
