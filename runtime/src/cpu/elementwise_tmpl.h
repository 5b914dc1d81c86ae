/* elementwise_tmpl.h — the element-wise kernels for one element type, included by
 * elementwise.c once per type with these macros defined:
 *   T         the element type
 *   F(name)   name with the type's suffix (name##_f32)
 *   T_FLOAT   1 for floating-point types (the math ops), 0 for i32
 *   T_ADD, T_SUB, T_MUL   arithmetic (wrapping for i32, so overflow is defined)
 *   M(fn)     the libm function for T (expf for float)
 *   T_TANH(x) tanh for T (a vectorisable rational function for float)
 *   T_EXP(x)  e^x for T (a vectorisable one for float, elementwise.c)
 *   T_GELU(x), T_GELU_GRAD(x, dy)  gelu_tanh and its gradient for T (math_f32.h)
 * and, for 16-bit storage with f32 math (elementwise_half.c's binary kernels,
 * elementwise.c's bf16 unary one), where only one kernel is made:
 *   SA, SB, SO        the stored element types of its inputs and output
 *   LDA(v), LDB(v)    an input element to T; ST(v) T to an output element
 *   BINARY_ONLY       defined: the binary kernel only
 *   UNARY_ONLY        defined: the unary kernel only (SB and LDB unused)
 * (T's own elements where SO is not defined; the six are undefined at the end).
 * No include guard: it is meant to be included more than once. */
#ifndef SO
#define SA T
#define SB T
#define SO T
#define LDA(v) (v)
#define LDB(v) (v)
#define ST(v) (v)
#endif

#if !defined(BINARY_ONLY) && !defined(UNARY_ONLY)

static void F(fill)(T *o, int64_t n, T v)
{
    for (int64_t i = 0; i < n; i++) o[i] = v;
}

static void F(arange)(T *o, int64_t n)
{
    for (int64_t i = 0; i < n; i++) o[i] = (T)i;
}

#endif

#if T_FLOAT && !defined(BINARY_ONLY)
PML_VECTOR_CLONES static pml_status F(unary)(pml_opcode op, SO *o, const SA *x, int64_t n)
{
#define UNARY(EXPR)                   \
    for (int64_t i = 0; i < n; i++) { \
        T v = LDA(x[i]);              \
        o[i] = ST(EXPR);              \
    }                                 \
    return PML_OK
    switch (op) {
    case PML_OP_NEG:
        UNARY(-v);
    case PML_OP_EXP:
        UNARY(T_EXP(v));
    case PML_OP_LOG:
        UNARY(M(log)(v));
    case PML_OP_SQRT:
        UNARY(M(sqrt)(v));
    case PML_OP_RSQRT:
        UNARY((T)1 / M(sqrt)(v));
    case PML_OP_TANH:
        UNARY(T_TANH(v));
    case PML_OP_SIGMOID:
        UNARY((T)1 / ((T)1 + T_EXP(-v)));
    case PML_OP_RELU:
        UNARY(v < 0 ? (T)0 : v);
    case PML_OP_ERF:
        UNARY(M(erf)(v));
    case PML_OP_RECIP:
        UNARY((T)1 / v);
    case PML_OP_ABS:
        UNARY(M(fabs)(v));
    case PML_OP_GELU_TANH:
        UNARY(T_GELU(v));
#define PML_CASE(e) case PML_OP_##e:
#define PML_OWN_UNARY
#include "pml/op_cases.h"
        break;
    }
    return PML_ERR_UNSUPPORTED;
#undef UNARY
}
#endif

#if T_FLOAT && !defined(BINARY_ONLY) && !defined(UNARY_ONLY)

static void F(dropout)(T *o, const T *x, int64_t n, double p, uint64_t seed, uint64_t key)
{
    T scale = (T)(1.0 / (1.0 - p));
    for (int64_t j = 0; j < n; j++)
        o[j] = (double)pml_rng_uniform_f32(seed, key, (uint64_t)j) >= p ? x[j] * scale : (T)0;
}

static void F(causal_mask)(T *o, const T *x, int64_t mats, int64_t rows, int64_t cols, T fill)
{
    for (int64_t b = 0; b < mats; b++)
        for (int64_t i = 0; i < rows; i++) {
            const T *xr = x + (b * rows + i) * cols;
            T *orow = o + (b * rows + i) * cols;
            int64_t keep = i + 1 < cols ? i + 1 : cols;
            for (int64_t j = 0; j < keep; j++) orow[j] = xr[j];
            for (int64_t j = keep; j < cols; j++) orow[j] = fill;
        }
}
#endif

/* One row of a binary op: o[i] = EXPR(x = a[i * sa], y = b[i * sb]), specialised for the
 * strides that broadcasting makes common (both 1, one of them 0). */
#ifndef UNARY_ONLY
#define BIN_ROW(EXPR)                           \
    do {                                        \
        if (sa == 1 && sb == 1)                 \
            for (int64_t i = 0; i < len; i++) { \
                T x = LDA(a[i]), y = LDB(b[i]); \
                o[i] = ST(EXPR);                \
            }                                   \
        else if (sa == 0 && sb == 1) {          \
            T x = LDA(a[0]);                    \
            for (int64_t i = 0; i < len; i++) { \
                T y = LDB(b[i]);                \
                o[i] = ST(EXPR);                \
            }                                   \
        } else if (sa == 1 && sb == 0) {        \
            T y = LDB(b[0]);                    \
            for (int64_t i = 0; i < len; i++) { \
                T x = LDA(a[i]);                \
                o[i] = ST(EXPR);                \
            }                                   \
        } else                                  \
            for (int64_t i = 0; i < len; i++) { \
                T x = LDA(a[i * sa]);           \
                T y = LDB(b[i * sb]);           \
                o[i] = ST(EXPR);                \
            }                                   \
    } while (0)

/* One row of a binary op, o[i] = op(a[i * sa], b[i * sb]) for i < len; inlined into
 * each caller, so it is compiled for the caller's vector clone. */
static inline __attribute__((always_inline)) pml_status F(binary_row)(pml_opcode op, SO *o, const SA *a, int64_t sa,
                                                                      const SB *b, int64_t sb, int64_t len)
{
    switch (op) {
    case PML_OP_ADD:
        BIN_ROW(T_ADD(x, y));
        break;
    case PML_OP_SUB:
        BIN_ROW(T_SUB(x, y));
        break;
    case PML_OP_MUL:
        BIN_ROW(T_MUL(x, y));
        break;
    /* NaN wins, as in NumPy: x != x only for a NaN x; a NaN y fails x > y. */
    case PML_OP_MAXIMUM:
        BIN_ROW(x > y || x != x ? x : y);
        break;
    case PML_OP_MINIMUM:
        BIN_ROW(x < y || x != x ? x : y);
        break;
#if T_FLOAT
    case PML_OP_DIV:
        BIN_ROW(x / y);
        break;
    case PML_OP_POW:
        BIN_ROW(M(pow)(x, y));
        break;
    case PML_OP_GELU_TANH_GRAD:
        BIN_ROW(T_GELU_GRAD(x, y));
        break;
#endif
    case PML_OP_LT:
        BIN_ROW((T)(x < y));
        break;
    case PML_OP_LE:
        BIN_ROW((T)(x <= y));
        break;
    case PML_OP_GT:
        BIN_ROW((T)(x > y));
        break;
    case PML_OP_GE:
        BIN_ROW((T)(x >= y));
        break;
    case PML_OP_EQ:
        BIN_ROW((T)(x == y));
        break;
    case PML_OP_NE:
        BIN_ROW((T)(x != y));
        break;
#if !T_FLOAT
    case PML_OP_DIV: /* PML_OPF_FLOAT */
    case PML_OP_POW:
    case PML_OP_GELU_TANH_GRAD:
#endif
#define PML_CASE(e) case PML_OP_##e:
#define PML_OWN_BINARY
#include "pml/op_cases.h"
        return PML_ERR_UNSUPPORTED;
    }
    return PML_OK;
}

PML_VECTOR_CLONES static pml_status F(binary)(pml_opcode op, pml_cpu_iter *it, SO *out, const SA *in_a, const SB *in_b)
{
    int64_t rows = pml_cpu_iter_rows(it), len = it->dims[it->rank - 1];
    int64_t sa = it->st[1][it->rank - 1], sb = it->st[2][it->rank - 1];
    for (int64_t r = 0; r < rows; r++, pml_cpu_iter_next(it)) {
        pml_status s = F(binary_row)(op, out + it->off[0], in_a + it->off[1], sa, in_b + it->off[2], sb, len);
        if (s) return s;
    }
    return PML_OK;
}
#undef BIN_ROW
#endif /* UNARY_ONLY */

#if !defined(BINARY_ONLY) && !defined(UNARY_ONLY)

/* where(c, a, b) with a condition of element type CT. */
#define WHERE_ROWS(CT)                                                                       \
    do {                                                                                     \
        const CT *cond = cv;                                                                 \
        for (int64_t r = 0; r < rows; r++, pml_cpu_iter_next(it)) {                          \
            T *o = out + it->off[0];                                                         \
            const CT *c = cond + it->off[1];                                                 \
            const T *a = in_a + it->off[2], *b = in_b + it->off[3];                          \
            for (int64_t i = 0; i < len; i++) o[i] = c[i * sc] != 0 ? a[i * sa] : b[i * sb]; \
        }                                                                                    \
    } while (0)

static void F(where)(pml_cpu_iter *it, T *out, pml_dtype ct, const void *cv, const T *in_a, const T *in_b)
{
    int64_t rows = pml_cpu_iter_rows(it), len = it->dims[it->rank - 1];
    int64_t sc = it->st[1][it->rank - 1], sa = it->st[2][it->rank - 1], sb = it->st[3][it->rank - 1];
    if (ct == PML_F32)
        WHERE_ROWS(float);
    else if (ct == PML_F64)
        WHERE_ROWS(double);
    else
        WHERE_ROWS(int32_t);
}
#undef WHERE_ROWS
#endif

#undef SA
#undef SB
#undef SO
#undef LDA
#undef LDB
#undef ST
