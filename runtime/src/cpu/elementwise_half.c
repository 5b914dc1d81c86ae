/* elementwise_half.c — pml_cpu_binary_bf16 (cpu.h): a binary op with bf16 among its
 * inputs and output and f32 for the rest, with the conversions in the loop: each
 * element is loaded and widened in registers, computed in f32 by the f32 kernel's expression (elementwise_tmpl.h,
 * made here with 16-bit loads and stores) and rounded by core/half.h's rule as it is
 * stored. So the bits are those of widening the operands, running the f32 kernel and
 * rounding its output (cpu/half.c's general path), without the f32 copies and the
 * passes that make them. f16 is not made here: its widening path converts with F16C
 * where the CPU has it, which keeps a NaN's payload where core/half.h's rule makes one
 * quiet NaN, so only that path gives today's f16 bits. */
#include "core/vectorize.h"

#include "cpu.h"

#include <math.h>
#include <stdint.h>

#include "core/half.h"
#include "math_f32.h"

/* the f32 kernel's arithmetic (elementwise.c's f32 instantiation) */
#define T float
#define T_FLOAT 1
#define T_ADD(x, y) ((x) + (y))
#define T_SUB(x, y) ((x) - (y))
#define T_MUL(x, y) ((x) * (y))
#define M(fn) fn##f
#define T_GELU_GRAD(x, dy) pml_gelu_tanh_gradf(x, dy)
#define BINARY_ONLY

/* One binary kernel per mix of bf16 (b) and f32 (f) for a, b and the output, in that
 * order; all f32 is elementwise.c's. */
#define F(name) name##_ffb
#define SA float
#define SB float
#define SO uint16_t
#define LDA(v) (v)
#define LDB(v) (v)
#define ST(v) pml_f32_to_bf16(v)
#include "elementwise_tmpl.h"
#undef F

#define F(name) name##_fbf
#define SA float
#define SB uint16_t
#define SO float
#define LDA(v) (v)
#define LDB(v) pml_bf16_to_f32(v)
#define ST(v) (v)
#include "elementwise_tmpl.h"
#undef F

#define F(name) name##_fbb
#define SA float
#define SB uint16_t
#define SO uint16_t
#define LDA(v) (v)
#define LDB(v) pml_bf16_to_f32(v)
#define ST(v) pml_f32_to_bf16(v)
#include "elementwise_tmpl.h"
#undef F

#define F(name) name##_bff
#define SA uint16_t
#define SB float
#define SO float
#define LDA(v) pml_bf16_to_f32(v)
#define LDB(v) (v)
#define ST(v) (v)
#include "elementwise_tmpl.h"
#undef F

#define F(name) name##_bfb
#define SA uint16_t
#define SB float
#define SO uint16_t
#define LDA(v) pml_bf16_to_f32(v)
#define LDB(v) (v)
#define ST(v) pml_f32_to_bf16(v)
#include "elementwise_tmpl.h"
#undef F

#define F(name) name##_bbf
#define SA uint16_t
#define SB uint16_t
#define SO float
#define LDA(v) pml_bf16_to_f32(v)
#define LDB(v) pml_bf16_to_f32(v)
#define ST(v) (v)
#include "elementwise_tmpl.h"
#undef F

#define F(name) name##_bbb
#define SA uint16_t
#define SB uint16_t
#define SO uint16_t
#define LDA(v) pml_bf16_to_f32(v)
#define LDB(v) pml_bf16_to_f32(v)
#define ST(v) pml_f32_to_bf16(v)
#include "elementwise_tmpl.h"
#undef F

pml_status pml_cpu_binary_bf16(const pml_op_call *c, pml_err *err)
{
    const char *name = pml_op_name(c->op);
    pml_dtype ta = c->n_in == 2 ? c->in[0].dtype : PML_F32, tb = c->n_in == 2 ? c->in[1].dtype : PML_F32,
              to = c->out.dtype;
    int ok = 1, mix = 0; /* bit 2: a is bf16, bit 1: b, bit 0: the output */
    pml_dtype t[3] = {ta, tb, to};
    for (int k = 0; k < 3; k++) {
        ok &= t[k] == PML_F32 || t[k] == PML_BF16;
        mix = mix << 1 | (t[k] == PML_BF16);
    }
    if (c->n_in != 2 || !ok || !mix)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: %s and %s to %s: the bf16 binary kernels need bf16 and f32", name,
                           pml_dtype_name(ta), pml_dtype_name(tb), pml_dtype_name(to));
    const pml_view *in[2] = {&c->in[0], &c->in[1]};
    pml_cpu_iter it;
    if (pml_cpu_iter_init(&it, &c->out, 2, in, name, err)) return err ? err->code : PML_ERR_INVALID_ARG;
    void *o = c->out.data;
    const void *a = c->in[0].data, *b = c->in[1].data;
    pml_status s = PML_ERR_UNSUPPORTED;
    switch (mix) {
    case 1:
        s = binary_ffb(c->op, &it, o, a, b);
        break;
    case 2:
        s = binary_fbf(c->op, &it, o, a, b);
        break;
    case 3:
        s = binary_fbb(c->op, &it, o, a, b);
        break;
    case 4:
        s = binary_bff(c->op, &it, o, a, b);
        break;
    case 5:
        s = binary_bfb(c->op, &it, o, a, b);
        break;
    case 6:
        s = binary_bbf(c->op, &it, o, a, b);
        break;
    case 7:
        s = binary_bbb(c->op, &it, o, a, b);
        break;
    }
    return s == PML_OK ? s : pml_cpu_unsupported(c, to, err);
}
