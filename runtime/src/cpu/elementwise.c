/* elementwise.c — const, arange, the unary and binary math ops, comparisons, where,
 * cast, dropout and causal_mask. Each kernel is written once in elementwise_tmpl.h and
 * instantiated here for f32, f64 and (where the op allows) i32. */
#include "core/vectorize.h"

#include "cpu.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/half.h"
#include "core/rng.h"
#include "isa.h"
#include "math_f32.h"

#define WRAP32(op, x, y) ((int32_t)((uint32_t)(x)op(uint32_t)(y)))

/* e^x for f32 (exp and sigmoid), the same steps in scalar code and in AVX-512: in
 * double, z = x log2(e) split as k + r by the 1.5 * 2^52 rounding trick (|r| <= 1/2),
 * 2^r as e^(r ln 2) by its Taylor series to the 9th power (truncation under 1e-11
 * relative), times 2^k put in the exponent bits, rounded once to f32: the correctly
 * rounded e^x but within about 1e-11 of a rounding boundary. Checked on every f32
 * input against (float)exp((double)x) (2026-12-06): 1,285 of 4.28e9 one ulp off, none
 * more; glibc's expf, which this replaces (7% of the GPT example's forward, scalar
 * calls in the softmax), is off that reference in 170,648. x is clamped to [-104, 89]
 * first, where the answers are already 0 and inf in f32, so k fits a double's
 * exponent; a NaN is passed through. The scalar form (no AVX-512: GCC does not
 * vectorise its NaN-preserving selects) may differ from the vector one by an ulp where
 * it rounds p * r + c twice instead of fusing it. */
#define EXP_LOG2E 1.4426950408889634074
#define EXP_LN2 0.69314718055994530942
#define EXP_SHIFT 6755399441055744.0 /* 1.5 * 2^52 */
static const double exp_taylor[10] = {2.7557319223985893e-6, 2.4801587301587302e-5, 1.9841269841269841e-4,
                                      1.3888888888888889e-3, 8.3333333333333333e-3, 4.1666666666666667e-2,
                                      1.6666666666666667e-1, 0.5, 1.0, 1.0}; /* 1/9!, 1/8!, ..., 1/1!, 1/0! */

static inline float fast_expf(float x0)
{
    float x = x0 > -104.0f ? x0 : -104.0f; /* a NaN compares false: clamped, then restored */
    x = x < 89.0f ? x : 89.0f;
    double z = (double)x * EXP_LOG2E, kd = (z + EXP_SHIFT) - EXP_SHIFT, r = (z - kd) * EXP_LN2, p = exp_taylor[0];
    for (int i = 1; i < 10; i++) p = p * r + exp_taylor[i];
    int64_t bits = ((int64_t)kd + 1023) << 52; /* k in [-151, 129]: a normal double */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = (float)(p * scale);
    return x0 == x0 ? y : x0;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EXP_AVX512 __attribute__((target("avx512f,avx512dq")))

EXP_AVX512 static inline __m256 exp_half_avx512(__m256 x)
{
    __m512d z = _mm512_mul_pd(_mm512_cvtps_pd(x), _mm512_set1_pd(EXP_LOG2E));
    __m512d kd = _mm512_sub_pd(_mm512_add_pd(z, _mm512_set1_pd(EXP_SHIFT)), _mm512_set1_pd(EXP_SHIFT));
    __m512d r = _mm512_mul_pd(_mm512_sub_pd(z, kd), _mm512_set1_pd(EXP_LN2)), p = _mm512_set1_pd(exp_taylor[0]);
    for (int i = 1; i < 10; i++) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(exp_taylor[i]));
    __m512i bits = _mm512_slli_epi64(_mm512_add_epi64(_mm512_cvttpd_epi64(kd), _mm512_set1_epi64(1023)), 52);
    return _mm512_cvtpd_ps(_mm512_mul_pd(p, _mm512_castsi512_pd(bits)));
}

/* o = e^x, or with `sigmoid` 1 / (1 + e^-x), over n floats, 16 at a time (the last
 * ones masked). */
EXP_AVX512 static void exp_avx512(float *o, const float *x, int64_t n, int sigmoid)
{
    const __m512 lo = _mm512_set1_ps(-104.0f), hi = _mm512_set1_ps(89.0f), one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x + i);
        if (sigmoid) x0 = _mm512_sub_ps(_mm512_setzero_ps(), x0);
        __m512 c = _mm512_min_ps(_mm512_max_ps(x0, lo), hi); /* max(NaN, lo) is lo: clamped, restored below */
        __m512 y = _mm512_insertf32x8(_mm512_castps256_ps512(exp_half_avx512(_mm512_castps512_ps256(c))),
                                      exp_half_avx512(_mm512_extractf32x8_ps(c, 1)), 1);
        y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x0, x0, _CMP_UNORD_Q), y, x0);
        if (sigmoid) y = _mm512_div_ps(one, _mm512_add_ps(one, y));
        _mm512_mask_storeu_ps(o + i, m, y);
    }
}

static int have_exp_avx512(void) { return pml_cpu_isa_offered() >= PML_ISA_AVX512; }
#endif

#define T float
#define F(name) name##_f32
#define T_TANH(x) pml_tanhf(x)
#define T_EXP(x) fast_expf(x)
#define T_GELU(x) pml_gelu_tanhf(x)
#define T_GELU_GRAD(x, dy) pml_gelu_tanh_gradf(x, dy)
#define T_FLOAT 1
#define T_ADD(x, y) ((x) + (y))
#define T_SUB(x, y) ((x) - (y))
#define T_MUL(x, y) ((x) * (y))
#define M(fn) fn##f
#include "elementwise_tmpl.h"
#undef F

/* The unary ops on bf16 storage, widened and rounded in registers around the f32
 * expressions above: one pass where widening to f32, running unary_f32 and rounding
 * took three (pml_cpu_unary_bf16). */
#define F(name) name##_bf16
#define SA uint16_t
#define SO uint16_t
#define LDA(v) pml_bf16_to_f32(v)
#define ST(v) pml_f32_to_bf16(v)
#define UNARY_ONLY
#include "elementwise_tmpl.h"
#undef UNARY_ONLY
#undef T
#undef F
#undef M
#undef T_TANH
#undef T_EXP
#undef T_GELU
#undef T_GELU_GRAD

#define T double
#define F(name) name##_f64
#define T_TANH(x) tanh(x)
#define T_EXP(x) exp(x)
#define T_GELU(x) pml_gelu_tanh(x)
#define T_GELU_GRAD(x, dy) pml_gelu_tanh_grad(x, dy)
#define M(fn) fn
#include "elementwise_tmpl.h"
#undef T
#undef F
#undef M
#undef T_TANH
#undef T_EXP
#undef T_GELU
#undef T_GELU_GRAD
#undef T_FLOAT
#undef T_ADD
#undef T_SUB
#undef T_MUL

#define T int32_t
#define F(name) name##_i32
#define T_FLOAT 0
#define T_ADD(x, y) WRAP32(+, x, y)
#define T_SUB(x, y) WRAP32(-, x, y)
#define T_MUL(x, y) WRAP32(*, x, y)
#include "elementwise_tmpl.h"
#undef T
#undef F
#undef T_FLOAT
#undef T_ADD
#undef T_SUB
#undef T_MUL

static pml_status cast(const pml_op_call *c, pml_err *err)
{
    int64_t n = pml_cpu_numel(&c->out);
    pml_dtype ti = c->in[0].dtype, to = c->out.dtype;
    const void *x = c->in[0].data;
    void *o = c->out.data;
#define CAST(TI, TO, CONV)                                   \
    do {                                                     \
        const TI *xi = x;                                    \
        TO *oo = o;                                          \
        for (int64_t i = 0; i < n; i++) oo[i] = CONV(xi[i]); \
        return PML_OK;                                       \
    } while (0)
#define PLAIN(v) (v)
    if (ti == PML_F32 && to == PML_F32) CAST(float, float, PLAIN);
    if (ti == PML_F32 && to == PML_F64) CAST(float, double, PLAIN);
    if (ti == PML_F32 && to == PML_I32) CAST(float, int32_t, pml_i32_of);
    if (ti == PML_F64 && to == PML_F32) CAST(double, float, (float));
    if (ti == PML_F64 && to == PML_F64) CAST(double, double, PLAIN);
    if (ti == PML_F64 && to == PML_I32) CAST(double, int32_t, pml_i32_of);
    if (ti == PML_I32 && to == PML_F32) CAST(int32_t, float, (float));
    if (ti == PML_I32 && to == PML_F64) CAST(int32_t, double, PLAIN);
    if (ti == PML_I32 && to == PML_I32) CAST(int32_t, int32_t, PLAIN);
#undef PLAIN
#undef CAST
    return pml_err_set(err, PML_ERR_UNSUPPORTED, "cast: %s to %s is not supported on the CPU", pml_dtype_name(ti),
                       pml_dtype_name(to));
}

static int is_compute_type(pml_dtype t) { return t == PML_F32 || t == PML_F64 || t == PML_I32; }

static pml_status binary(const pml_op_call *c, pml_err *err)
{
    pml_dtype t = c->out.dtype;
    const char *name = pml_op_name(c->op);
    if (c->in[0].dtype != t || c->in[1].dtype != t)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: inputs %s and %s, output %s: element types must match", name,
                           pml_dtype_name(c->in[0].dtype), pml_dtype_name(c->in[1].dtype), pml_dtype_name(t));
    const pml_view *in[2] = {&c->in[0], &c->in[1]};
    pml_cpu_iter it;
    if (pml_cpu_iter_init(&it, &c->out, 2, in, name, err)) return err ? err->code : PML_ERR_INVALID_ARG;
    pml_status s = PML_ERR_UNSUPPORTED;
    if (t == PML_F32) s = binary_f32(c->op, &it, c->out.data, c->in[0].data, c->in[1].data);
    if (t == PML_F64) s = binary_f64(c->op, &it, c->out.data, c->in[0].data, c->in[1].data);
    if (t == PML_I32) s = binary_i32(c->op, &it, c->out.data, c->in[0].data, c->in[1].data);
    return s == PML_OK ? s : pml_cpu_unsupported(c, t, err);
}

static pml_status where(const pml_op_call *c, pml_err *err)
{
    pml_dtype t = c->out.dtype;
    if (c->in[1].dtype != t || c->in[2].dtype != t || !is_compute_type(c->in[0].dtype) || !is_compute_type(t))
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "where: condition %s, values %s and %s, output %s: not supported",
                           pml_dtype_name(c->in[0].dtype), pml_dtype_name(c->in[1].dtype),
                           pml_dtype_name(c->in[2].dtype), pml_dtype_name(t));
    const pml_view *in[3] = {&c->in[0], &c->in[1], &c->in[2]};
    pml_cpu_iter it;
    if (pml_cpu_iter_init(&it, &c->out, 3, in, "where", err)) return err ? err->code : PML_ERR_INVALID_ARG;
    if (t == PML_F32) where_f32(&it, c->out.data, c->in[0].dtype, c->in[0].data, c->in[1].data, c->in[2].data);
    if (t == PML_F64) where_f64(&it, c->out.data, c->in[0].dtype, c->in[0].data, c->in[1].data, c->in[2].data);
    if (t == PML_I32) where_i32(&it, c->out.data, c->in[0].dtype, c->in[0].data, c->in[1].data, c->in[2].data);
    return PML_OK;
}

/* An f32 unary op over n elements: exp and sigmoid on the AVX-512 exp where the CPU has
 * it, the rest (and those elsewhere) on the kernel loop. */
static pml_status unary_f32_any(pml_opcode op, float *o, const float *x, int64_t n)
{
#ifdef EXP_AVX512
    if ((op == PML_OP_EXP || op == PML_OP_SIGMOID) && have_exp_avx512()) {
        exp_avx512(o, x, n, op == PML_OP_SIGMOID);
        return PML_OK;
    }
#endif
    return unary_f32(op, o, x, n);
}

/* Unary ops, dropout and causal_mask: one input of the output's shape and type. */
static pml_status same_shape_float(const pml_op_call *c, pml_err *err)
{
    pml_dtype t = c->out.dtype;
    const char *name = pml_op_name(c->op);
    char s1[160], s2[160];
    if (t != PML_F32 && t != PML_F64) return pml_cpu_unsupported(c, t, err);
    if (c->in[0].dtype != t)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: input %s, output %s: element types must match", name,
                           pml_dtype_name(c->in[0].dtype), pml_dtype_name(t));
    if (!pml_cpu_same_shape(&c->in[0], &c->out))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: input %s and output %s differ in shape", name,
                           pml_cpu_shape_str(&c->in[0], s1, sizeof s1), pml_cpu_shape_str(&c->out, s2, sizeof s2));
    int64_t n = pml_cpu_numel(&c->out);
    void *o = c->out.data;
    const void *x = c->in[0].data;
    if (c->op == PML_OP_DROPOUT) {
        if (c->n_attr < 1) return pml_err_set(err, PML_ERR_INVALID_ARG, "dropout: needs attr[0], the RNG key");
        if (!(c->fval >= 0 && c->fval <= 1))
            return pml_err_set(err, PML_ERR_INVALID_ARG, "dropout: p = %g is outside [0, 1]", c->fval);
        if (t == PML_F32) dropout_f32(o, x, n, c->fval, c->seed, (uint64_t)c->attr[0]);
        if (t == PML_F64) dropout_f64(o, x, n, c->fval, c->seed, (uint64_t)c->attr[0]);
        return PML_OK;
    }
    if (c->op == PML_OP_CAUSAL_MASK) {
        const pml_view *v = &c->out;
        if (v->rank < 2)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "causal_mask: needs [..., T, T], got %s",
                               pml_cpu_shape_str(v, s1, sizeof s1));
        int64_t rows = v->dims[v->rank - 2], cols = v->dims[v->rank - 1];
        int64_t mats = rows > 0 && cols > 0 ? n / (rows * cols) : 0;
        if (t == PML_F32) causal_mask_f32(o, x, mats, rows, cols, (float)c->fval);
        if (t == PML_F64) causal_mask_f64(o, x, mats, rows, cols, c->fval);
        return PML_OK;
    }
    pml_status s = t == PML_F32 ? unary_f32_any(c->op, o, x, n) : unary_f64(c->op, o, x, n);
    return s == PML_OK ? s : pml_cpu_unsupported(c, t, err);
}

/* const and arange: no input. */
static pml_status fill(const pml_op_call *c, pml_err *err)
{
    pml_dtype t = c->out.dtype;
    int64_t n = pml_cpu_numel(&c->out);
    switch (c->op) {
    case PML_OP_CONST:
        if (t == PML_F32)
            fill_f32(c->out.data, n, (float)c->fval);
        else if (t == PML_F64)
            fill_f64(c->out.data, n, c->fval);
        else if (t == PML_I32)
            fill_i32(c->out.data, n, pml_i32_of(c->fval));
        else
            return pml_cpu_unsupported(c, t, err);
        return PML_OK;
    case PML_OP_ARANGE:
        if (t == PML_I32 && n > (int64_t)INT32_MAX + 1)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "arange: %lld elements do not fit i32", (long long)n);
        if (t == PML_F32)
            arange_f32(c->out.data, n);
        else if (t == PML_F64)
            arange_f64(c->out.data, n);
        else if (t == PML_I32)
            arange_i32(c->out.data, n);
        else
            return pml_cpu_unsupported(c, t, err);
        return PML_OK;
#define PML_CASE(e) case PML_OP_##e:
#define PML_OWN_FILL
#include "pml/op_cases.h"
        break;
    }
    return pml_cpu_other_family(c, err);
}

/* where, cast, dropout, causal_mask: each a rule of its own. */
static pml_status elementwise_other(const pml_op_call *c, pml_err *err)
{
    switch (c->op) {
    case PML_OP_CAST:
        if (!pml_cpu_same_shape(&c->in[0], &c->out))
            return pml_err_set(err, PML_ERR_INVALID_ARG, "cast: input and output differ in shape");
        return cast(c, err);
    case PML_OP_WHERE:
        return where(c, err);
    case PML_OP_DROPOUT:
    case PML_OP_CAUSAL_MASK:
        return same_shape_float(c, err);
#define PML_CASE(e) case PML_OP_##e:
#define PML_OWN_ELEMWISE
#include "pml/op_cases.h"
        break;
    }
    return pml_cpu_other_family(c, err);
}

PML_VECTOR_CLONES static pml_status binary_strip_f32(pml_opcode op, float *o, const float *a, int64_t sa,
                                                     const float *b, int64_t sb, int64_t n)
{
    return binary_row_f32(op, o, a, sa, b, sb, n);
}

pml_status pml_cpu_unary_bf16(const pml_op_call *c, pml_err *err)
{
    if (!pml_cpu_unary_bf16_takes(c))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: not a unary op from bf16 to bf16 of one shape",
                           pml_op_name(c->op));
    pml_status s = unary_bf16(c->op, c->out.data, c->in[0].data, pml_cpu_numel(&c->out));
    return s == PML_OK ? s : pml_cpu_unsupported(c, PML_BF16, err);
}

int pml_cpu_unary_bf16_takes(const pml_op_call *c)
{
    /* exp and sigmoid run on AVX-512's own exp in f32 (unary_f32_any), whose bits the
     * template's scalar form does not promise */
    return pml_op_class_of(c->op) == PML_OPC_UNARY && c->op != PML_OP_EXP && c->op != PML_OP_SIGMOID &&
           c->n_in == 1 && c->in[0].dtype == PML_BF16 && c->out.dtype == PML_BF16 && !c->accumulate &&
           pml_cpu_same_shape(&c->in[0], &c->out);
}

pml_status pml_cpu_f32_strip(pml_opcode op, float *o, const float *a, int64_t sa, const float *b, int64_t sb, int64_t n)
{
    if (pml_op_class_of(op) == PML_OPC_BINARY) return binary_strip_f32(op, o, a, sa, b, sb, n);
    return unary_f32_any(op, o, a, n);
}

pml_status pml_cpu_elementwise(const pml_op_call *c, pml_err *err)
{
    switch (pml_op_class_of(c->op)) {
    case PML_OPC_FILL:
        return fill(c, err);
    case PML_OPC_UNARY:
        return same_shape_float(c, err);
    case PML_OPC_BINARY:
        return binary(c, err);
    case PML_OPC_ELEMWISE:
        return elementwise_other(c, err);
    case PML_OPC_LEAF:
    case PML_OPC_REDUCE:
    case PML_OPC_MOVEMENT:
    case PML_OPC_GATHER:
    case PML_OPC_MATMUL:
    case PML_OPC_ROWLOSS:
    case PML_OPC_ATTENTION:
        break;
    }
    return pml_cpu_other_family(c, err);
}
