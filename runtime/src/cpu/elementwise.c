/* elementwise.c — const, arange, the unary and binary math ops, comparisons, where,
 * cast, dropout and causal_mask. Each kernel is written once in elementwise_tmpl.h and
 * instantiated here for f32, f64 and (where the op allows) i32. */
#include "core/vectorize.h"

#include "cpu.h"

#include <math.h>
#include <stdint.h>

#include "core/half.h"
#include "core/rng.h"

#define WRAP32(op, x, y) ((int32_t)((uint32_t)(x)op(uint32_t)(y)))

/* tanh for f32 as a rational function (Eigen's generic_fast_tanh_float): no branch and no
 * libm call, so the loop vectorises. Error is within a few ulp on the clamped range; past
 * +-7.9 tanhf is +-1 in f32 anyway, and below 4e-4 tanh(x) rounds to x. glibc's tanhf
 * (through expm1f) was 13% of a GPT step, in GELU. */
static inline float fast_tanhf(float x)
{
    const float clamp = 7.90531110763549805f;
    float c = x > clamp ? clamp : x < -clamp ? -clamp : x, x2 = c * c;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * c;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    float ax = x < 0 ? -x : x;
    return ax < 0.0004f ? x : p / q;
}

#define T float
#define F(name) name##_f32
#define T_TANH(x) fast_tanhf(x)
#define T_FLOAT 1
#define T_ADD(x, y) ((x) + (y))
#define T_SUB(x, y) ((x) - (y))
#define T_MUL(x, y) ((x) * (y))
#define M(fn) fn##f
#include "elementwise_tmpl.h"
#undef T
#undef F
#undef M
#undef T_TANH

#define T double
#define F(name) name##_f64
#define T_TANH(x) tanh(x)
#define M(fn) fn
#include "elementwise_tmpl.h"
#undef T
#undef F
#undef M
#undef T_TANH
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
    pml_status s = t == PML_F32 ? unary_f32(c->op, o, x, n) : unary_f64(c->op, o, x, n);
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
        break;
    }
    return pml_cpu_other_family(c, err);
}
