/* reduce.c — sum, max and mean over one axis or all of them (with or without keepdim),
 * and sum_to, expand's inverse (also from bf16 into f32). Single-threaded. */
#include "core/vectorize.h"

#include "cpu.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/half.h"

#define T float
#define F(name) name##_f32
#include "reduce_tmpl.h"
#undef F

/* sum_to of a bf16 tensor into f32 (a bias's gradient from a 16-bit one), widening each
 * element in registers as it is added: the bits of widening it whole first. */
#define F(name) name##_bf16
#define SX uint16_t
#define LDX(v) pml_bf16_to_f32(v)
#define SUM_TO_ONLY
#include "reduce_tmpl.h"
#undef SUM_TO_ONLY
#undef T
#undef F
#define T double
#define F(name) name##_f64
#include "reduce_tmpl.h"
#undef T
#undef F

static pml_status sum_to(const pml_op_call *c, pml_err *err)
{
    pml_dtype t = c->out.dtype;
    const pml_view *o = &c->out;
    pml_cpu_iter it;
    if (pml_cpu_iter_init(&it, &c->in[0], 1, &o, "sum_to", err)) return err ? err->code : PML_ERR_INVALID_ARG;
    int64_t n_out = pml_cpu_numel(o);
    if (t == PML_F32 && c->in[0].dtype == PML_BF16)
        sum_to_bf16(&it, o->data, n_out, c->in[0].data);
    else if (t == PML_F32)
        sum_to_f32(&it, o->data, n_out, c->in[0].data);
    if (t == PML_F64) sum_to_f64(&it, o->data, n_out, c->in[0].data);
    return PML_OK;
}

pml_status pml_cpu_reduce(const pml_op_call *c, pml_err *err)
{
    pml_dtype t = c->out.dtype;
    const pml_view *x = &c->in[0];
    const char *name = pml_op_name(c->op);
    char s1[160], s2[160];
    if (t != PML_F32 && t != PML_F64) return pml_cpu_unsupported(c, t, err);
    if (x->dtype != t && !(c->op == PML_OP_SUM_TO && x->dtype == PML_BF16 && t == PML_F32))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: input %s, output %s: element types must match", name,
                           pml_dtype_name(x->dtype), pml_dtype_name(t));
    if (c->op == PML_OP_SUM_TO) return sum_to(c, err);
    if (c->n_attr < 2 || c->attr[0] < -1 || c->attr[0] >= (x->rank ? x->rank : 1))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: needs attr [axis in -1..%d, keepdim]", name, x->rank - 1);
    int64_t outer = 1, n = pml_cpu_numel(x), inner = 1;
    if (c->attr[0] >= 0 && x->rank > 0) {
        int axis = (int)c->attr[0];
        n = x->dims[axis];
        for (int k = 0; k < axis; k++) outer *= x->dims[k];
        for (int k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
    }
    if (pml_cpu_numel(&c->out) != outer * inner)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: output %s does not fit input %s reduced over axis %lld", name,
                           pml_cpu_shape_str(&c->out, s1, sizeof s1), pml_cpu_shape_str(x, s2, sizeof s2),
                           (long long)c->attr[0]);
    if (t == PML_F32) reduce_f32(c->op, c->out.data, x->data, outer, n, inner);
    if (t == PML_F64) reduce_f64(c->op, c->out.data, x->data, outer, n, inner);
    return PML_OK;
}
