/* cuda_expr.c — the pieces of generated CUDA C below a kernel: text with a location
 * per line, kernel arguments, dtype conversions, broadcast offsets, operands and the
 * expression of every element-wise op. Semantics follow the CPU backend
 * (runtime/src/cpu/kernels.h), which is the reference for each op. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpu/cuda_int.h"

static void text_reserve(cg_text *t, size_t more)
{
    if (t->len + more + 1 <= t->cap) return;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + more + 1) cap *= 2;
    char *s = realloc(t->s, cap);
    if (!s) abort(); /* as the arena: the compiler cannot go on without memory */
    t->s = s;
    t->cap = cap;
}

void cg_emit(cg *c, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    text_reserve(c->t, (size_t)n);
    vsnprintf(c->t->s + c->t->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    for (int i = 0; i < n; i++)
        if (c->t->s[c->t->len + (size_t)i] == '\n') PMLC_PUSH(&c->P->arena, c->t->lines, c->loc);
    c->t->len += (size_t)n;
}

int cg_arg(cg *c, int32_t node, int out)
{
    while (c->g->nodes.v[node].op == OP_RESHAPE) node = c->g->nodes.v[node].in[0];
    for (int i = 0; i < c->args.n; i++)
        if (c->args.v[i].node == node && c->args.v[i].out == out) return i;
    pmlc_cuda_arg a = {node, (uint8_t)out};
    PMLC_PUSH(&c->P->arena, c->args, a);
    return c->args.n - 1;
}

const char *cg_ctype(pmlc_dtype t) { return t == PMLC_I32 ? "int" : "float"; }

const char *cg_mtype(pmlc_dtype t)
{
    return t == PMLC_F32 ? "float" : t == PMLC_I32 ? "int" : "unsigned short";
}

const char *cg_to_mem(cg *c, pmlc_dtype t, const char *v)
{
    if (t == PMLC_BF16) return pmlc_arena_printf(&c->P->arena, "pml_f2bf(%s)", v);
    if (t == PMLC_F16) return pmlc_arena_printf(&c->P->arena, "pml_f2h(%s)", v);
    return v;
}

const char *cg_from_mem(cg *c, pmlc_dtype t, const char *m)
{
    if (t == PMLC_BF16) return pmlc_arena_printf(&c->P->arena, "pml_bf2f(%s)", m);
    if (t == PMLC_F16) return pmlc_arena_printf(&c->P->arena, "pml_h2f(%s)", m);
    return m;
}

const char *cg_float_lit(cg *c, double v)
{
    float f = (float)v;
    if (f != f) return "__int_as_float(0x7fc00000)";
    if (isinf(f)) return f > 0 ? "__int_as_float(0x7f800000)" : "__int_as_float(0xff800000)";
    return pmlc_arena_printf(&c->P->arena, "%af", (double)f);
}

/* f32 to bf16 and back, rounding to nearest even: a bf16 constant's value. */
static float round_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return f;
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* One axis group of a broadcast offset: ((idx / os) % d) * is. */
typedef struct term {
    int64_t os, d, is;
} term;

const char *cg_bcast_offset(cg *c, int32_t n, int32_t in, const char *idx)
{
    const pmlc_cshape *o = &c->shape[n], *x = &c->shape[in];
    if (c->numel[in] == c->numel[n]) return idx; /* broadcasting a same-size operand moves nothing */
    if (c->numel[in] <= 1) return "0";
    term t[PMLC_MAX_RANK];
    int nt = 0;
    int64_t os = 1, is = 1;
    for (int k = o->rank - 1; k >= 0; k--) {
        int kx = k - (o->rank - x->rank);
        int64_t dx = kx >= 0 ? x->d[kx] : 1;
        if (dx != 1) {
            if (nt && t[nt - 1].os * t[nt - 1].d == os && t[nt - 1].is * t[nt - 1].d == is)
                t[nt - 1].d *= dx; /* contiguous with the axis inside it in both: one axis */
            else
                t[nt++] = (term){os, dx, is};
        }
        os *= o->d[k];
        is *= dx;
    }
    const char *s = NULL;
    for (int k = 0; k < nt; k++) {
        const char *e = t[k].os == 1 ? idx : pmlc_arena_printf(&c->P->arena, "(%s / %lld)", idx, (long long)t[k].os);
        if (t[k].os * t[k].d < c->numel[n]) e = pmlc_arena_printf(&c->P->arena, "(%s %% %lld)", e, (long long)t[k].d);
        if (t[k].is != 1) e = pmlc_arena_printf(&c->P->arena, "%s * %lld", e, (long long)t[k].is);
        s = s ? pmlc_arena_printf(&c->P->arena, "%s + %s", s, e) : e;
    }
    return s ? pmlc_arena_printf(&c->P->arena, "(%s)", s) : "0";
}

const char *cg_value_at(cg *c, int32_t in, const char *off)
{
    const pmlc_graph *g = c->g;
    const ir_node *x = &g->nodes.v[in];
    if (cg_in_group(c, in)) return pmlc_arena_printf(&c->P->arena, "v%d", cg_v(c, in));
    if (x->op == OP_CONST) {
        if (x->dtype == PMLC_I32) {
            double v = x->fval != x->fval ? 0 : x->fval >= 2147483647.0 ? 2147483647.0 : x->fval;
            if (v <= -2147483648.0) return "(-2147483647 - 1)";
            return pmlc_arena_printf(&c->P->arena, "%d", (int)v);
        }
        if (in == c->loss_seed) { /* f16's loss scale multiplies it, then it is stored (as on the CPU) */
            const char *v = pmlc_arena_printf(&c->P->arena, "(%s * pml_loss_scale)", cg_float_lit(c, x->fval));
            return x->dtype == PMLC_F32 ? v : cg_from_mem(c, x->dtype, cg_to_mem(c, x->dtype, v));
        }
        const char *v = cg_float_lit(c, x->dtype == PMLC_BF16 ? round_bf16((float)x->fval) : x->fval);
        return x->dtype == PMLC_F16 ? cg_from_mem(c, x->dtype, cg_to_mem(c, x->dtype, v)) : v; /* as stored */
    }
    if (x->op == OP_ARANGE) return pmlc_arena_printf(&c->P->arena, "((%s)%s)", cg_ctype(x->dtype), off);
    int32_t base = in;
    while (g->nodes.v[base].op == OP_RESHAPE) base = g->nodes.v[base].in[0];
    if (cg_in_group(c, base)) {
        /* Another thread of this kernel may not have written it yet. */
        pmlc_error(&c->P->diag, x->loc, "the CUDA backend cannot read a reshape of a value from the same fused kernel");
        c->errors++;
    }
    int a = cg_arg(c, in, 0);
    if (c->vec && !strcmp(off, "i")) {
        c->vloaded[a] = 1;
        return cg_from_mem(c, x->dtype,
                           pmlc_arena_printf(&c->P->arena, "((const %s *)&r%d)[u]", cg_mtype(x->dtype), a));
    }
    return cg_from_mem(c, x->dtype, pmlc_arena_printf(&c->P->arena, "a%d[%s]", a, off));
}

const char *cg_operand(cg *c, int32_t n, int k, const char *idx)
{
    int32_t in = c->g->nodes.v[n].in[k];
    return cg_value_at(c, in, cg_in_group(c, in) ? idx : cg_bcast_offset(c, n, in, idx));
}

/* Integer arithmetic wraps, as on the CPU: through unsigned. */
static const char *wrap(cg *c, char op, const char *a, const char *b)
{
    return pmlc_arena_printf(&c->P->arena, "(int)((unsigned)%s %c (unsigned)%s)", a, op, b);
}

const char *cg_node_expr(cg *c, int32_t n, const char *idx)
{
    const ir_node *x = &c->g->nodes.v[n];
    pmlc_arena *A = &c->P->arena;
    const char *a = x->n_in > 0 ? cg_operand(c, n, 0, idx) : NULL;
    const char *b = x->n_in > 1 ? cg_operand(c, n, 1, idx) : NULL;
    int is_int = x->n_in > 0 && c->g->nodes.v[x->in[0]].dtype == PMLC_I32;
    const char *one = x->dtype == PMLC_I32 ? "1" : "1.0f", *zero = x->dtype == PMLC_I32 ? "0" : "0.0f";
    if (is_int && (pmlc_ops[x->op].flags & PML_OPF_FLOAT)) goto unsupported;
    switch (x->op) {
    case OP_NEG: return pmlc_arena_printf(A, "(-%s)", a);
    case OP_EXP: return pmlc_arena_printf(A, "expf(%s)", a);
    case OP_LOG: return pmlc_arena_printf(A, "logf(%s)", a);
    case OP_SQRT: return pmlc_arena_printf(A, "sqrtf(%s)", a);
    case OP_RSQRT: return pmlc_arena_printf(A, "(1.0f / sqrtf(%s))", a);
    case OP_TANH: return pmlc_arena_printf(A, "tanhf(%s)", a);
    case OP_SIGMOID: return pmlc_arena_printf(A, "(1.0f / (1.0f + expf(-%s)))", a);
    case OP_RELU: return pmlc_arena_printf(A, "(%s < 0.0f ? 0.0f : %s)", a, a);
    case OP_ERF: return pmlc_arena_printf(A, "erff(%s)", a);
    case OP_RECIP: return pmlc_arena_printf(A, "(1.0f / %s)", a);
    case OP_ABS: return pmlc_arena_printf(A, "fabsf(%s)", a);
    case OP_GELU_TANH: return pmlc_arena_printf(A, "pml_gelu_tanh(%s)", a);
    case OP_GELU_TANH_GRAD: return pmlc_arena_printf(A, "pml_gelu_tanh_grad(%s, %s)", a, b);
    case OP_ADD: return is_int ? wrap(c, '+', a, b) : pmlc_arena_printf(A, "(%s + %s)", a, b);
    case OP_SUB: return is_int ? wrap(c, '-', a, b) : pmlc_arena_printf(A, "(%s - %s)", a, b);
    case OP_MUL: return is_int ? wrap(c, '*', a, b) : pmlc_arena_printf(A, "(%s * %s)", a, b);
    case OP_DIV: return pmlc_arena_printf(A, "(%s / %s)", a, b);
    case OP_POW: return pmlc_arena_printf(A, "powf(%s, %s)", a, b);
    /* NaN wins, as in NumPy and the CPU backend. */
    case OP_MAXIMUM: return pmlc_arena_printf(A, "(%s > %s || %s != %s ? %s : %s)", a, b, a, a, a, b);
    case OP_MINIMUM: return pmlc_arena_printf(A, "(%s < %s || %s != %s ? %s : %s)", a, b, a, a, a, b);
    case OP_LT: return pmlc_arena_printf(A, "(%s < %s ? %s : %s)", a, b, one, zero);
    case OP_LE: return pmlc_arena_printf(A, "(%s <= %s ? %s : %s)", a, b, one, zero);
    case OP_GT: return pmlc_arena_printf(A, "(%s > %s ? %s : %s)", a, b, one, zero);
    case OP_GE: return pmlc_arena_printf(A, "(%s >= %s ? %s : %s)", a, b, one, zero);
    case OP_EQ: return pmlc_arena_printf(A, "(%s == %s ? %s : %s)", a, b, one, zero);
    case OP_NE: return pmlc_arena_printf(A, "(%s != %s ? %s : %s)", a, b, one, zero);
    case OP_WHERE: return pmlc_arena_printf(A, "(%s != 0 ? %s : %s)", a, b, cg_operand(c, n, 2, idx));
    case OP_CAST:
        if (x->dtype == PMLC_I32) return is_int ? a : pmlc_arena_printf(A, "pml_f2i(%s)", a);
        if (is_int) a = pmlc_arena_printf(A, "(float)%s", a);
        /* Rounding to the narrower type is the cast's meaning, even in registers. */
        if (x->dtype == PMLC_BF16) return pmlc_arena_printf(A, "pml_bf2f(pml_f2bf(%s))", a);
        if (x->dtype == PMLC_F16) return pmlc_arena_printf(A, "pml_h2f(pml_f2h(%s))", a);
        return a;
    case OP_DROPOUT: {
        if (x->n_attr < 1 || !(x->fval >= 0 && x->fval <= 1)) goto unsupported;
        /* Kept when pml_rng_uniform_f32(seed, key, j) >= p, where the float is k·2^-24
         * with k the top 24 bits: exactly when k >= ceil(p·2^24). */
        double kmin = ceil(x->fval * 16777216.0);
        c->uses_seed = 1;
        /* The all-ones seed turns dropout off (evaluation and serving run the same code). */
        return pmlc_arena_printf(A,
                                 "(seed == ~0ull ? %s : (pml_rng_u64(seed, %lluull, (pml_u64)(%s)) >> 40) >= %lluull ? "
                                 "%s * %s : 0.0f)",
                                 a, (unsigned long long)x->attr[0], idx, (unsigned long long)kmin, a,
                                 cg_float_lit(c, (double)(float)(1.0 / (1.0 - x->fval))));
    }
    case OP_CAUSAL_MASK: {
        const pmlc_cshape *s = &c->shape[n];
        if (s->rank < 2) goto unsupported;
        long long rows = (long long)s->d[s->rank - 2], cols = (long long)s->d[s->rank - 1];
        return pmlc_arena_printf(A, "(%s %% %lld <= (%s / %lld) %% %lld ? %s : %s)", idx, cols, idx, cols, rows, a,
                                 cg_float_lit(c, x->fval));
    }
#define PML_CASE(e) case OP_##e:
#define PML_OWN_UNARY
#define PML_OWN_BINARY
#define PML_OWN_ELEMWISE
#include "pml/op_cases.h"
        break;
    }
unsupported:
    pmlc_error(&c->P->diag, x->loc, "the CUDA backend has no kernel for %s on %s", pmlc_ops[x->op].name,
               pmlc_dtype_name(is_int ? PMLC_I32 : x->dtype));
    c->errors++;
    return "0";
}
