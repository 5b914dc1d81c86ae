/* xent.c — the fused softmax cross-entropy (xent) and its backward (xent_grad): one
 * pass family per row of logits, never a [..., V] intermediate. Labels are checked
 * before anything is written, with pick's message. f32 uses an exp written without
 * branches or libm calls, so the row loops vectorise; f64 (the gradient checks) uses
 * libm's exp. Single-threaded, like the other row kernels. */
#include "core/vectorize.h"

#include "cpu.h"

#include <math.h>
#include <string.h>

#include "expf.h"

#define XENT_LANES 16

#define T float
#define F(name) name##_f32
#define EXP(v) pml_cpu_expf(v)
#define EXPM1(v) expm1f(v)
#include "xent_tmpl.h"
#undef T
#undef F
#undef EXP
#undef EXPM1
#define T double
#define F(name) name##_f64
#define EXP(v) exp(v)
#define EXPM1(v) expm1(v)
#include "xent_tmpl.h"
#undef T
#undef F
#undef EXP
#undef EXPM1

pml_status pml_cpu_xent(const pml_op_call *c, pml_err *err)
{
    const char *name = pml_op_name(c->op);
    int grad = c->op == PML_OP_XENT_GRAD;
    const pml_view *x = &c->in[0], *lab = &c->in[1], *o = &c->out;
    pml_dtype t = x->dtype;
    char s1[160], s2[160], s3[160];
    if (lab->dtype != PML_I32)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: labels must be i32, not %s", name, pml_dtype_name(lab->dtype));
    if (t != PML_F32 && t != PML_F64) return pml_cpu_unsupported(c, t, err);
    int ok = o->dtype == t && pml_cpu_is_rows_of(x, lab) && (grad ? pml_cpu_same_shape(o, x) : pml_cpu_same_shape(o, lab));
    for (int k = 2; grad && k < 4; k++) ok = ok && c->in[k].dtype == t && pml_cpu_same_shape(&c->in[k], lab);
    if (!ok)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: logits %s, labels %s -> %s do not fit", name,
                           pml_cpu_shape_str(x, s1, sizeof s1), pml_cpu_shape_str(lab, s2, sizeof s2),
                           pml_cpu_shape_str(o, s3, sizeof s3));
    int64_t rows = pml_cpu_numel(lab), V = x->dims[x->rank - 1];
    if (pml_cpu_check_indices(name, lab->data, rows, V, err)) return err ? err->code : PML_ERR_INVALID_ARG;
    if (!grad && t == PML_F32) xent_fwd_f32(o->data, x->data, lab->data, rows, V);
    if (!grad && t == PML_F64) xent_fwd_f64(o->data, x->data, lab->data, rows, V);
    if (grad && t == PML_F32) xent_bwd_f32(o->data, x->data, lab->data, c->in[2].data, c->in[3].data, rows, V);
    if (grad && t == PML_F64) xent_bwd_f64(o->data, x->data, lab->data, c->in[2].data, c->in[3].data, rows, V);
    return PML_OK;
}
