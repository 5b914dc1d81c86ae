/* cuda_single.c — kernels of one op each (see cuda_int.h): every output element is
 * computed by one thread from the input offset its coordinates give, so none needs
 * synchronisation; scatter_add alone adds atomically (into an output the runtime
 * zeroes first). Out-of-range indices set the kernel's error flag and read as 0, as
 * the CPU backend refuses them. */
#include "gpu/cuda_int.h"

/* Row-major strides of a concrete shape. */
static void strides(const pmlc_cshape *s, int64_t *st)
{
    int64_t m = 1;
    for (int k = s->rank - 1; k >= 0; k--) st[k] = m, m *= s->d[k];
}

/* Declares c0.. cN-1, the coordinates of output element i. */
static void coords(cg *c, const pmlc_cshape *s)
{
    int64_t st[PMLC_MAX_RANK];
    strides(s, st);
    for (int k = 0; k < s->rank; k++)
        cg_emit(c, "    const pml_ix c%d = (i / %lld) %% %lld;\n", k, (long long)st[k], (long long)s->d[k]);
}

static const char *load(cg *c, int32_t in, const char *off)
{
    int a = cg_arg(c, in, 0);
    return cg_from_mem(c, c->g->nodes.v[in].dtype, pmlc_arena_printf(&c->P->arena, "a%d[%s]", a, off));
}

static void put(cg *c, int32_t n, const char *idx, const char *v)
{
    int a = cg_arg(c, n, 1);
    cg_emit(c, "    a%d[%s] = %s;\n", a, idx, cg_to_mem(c, c->g->nodes.v[n].dtype, v));
}

/* Sets the error flag and yields 0 when index `t` is outside [0, hi). */
static void check_index(cg *c, const char *t, int64_t hi)
{
    c->checks_index = 1;
    cg_emit(c, "    const int bad = %s < 0 || %s >= %lld;\n    if (bad) atomicOr(err, 1u);\n", t, t, (long long)hi);
}

/* Reductions over axes other than the last one, and over all of them: x as
 * [outer, m, inner]. Contiguous ones (inner 1) take a warp per output. */
static int64_t reduce(cg *c, int32_t n, const ir_node *x)
{
    const pmlc_cshape *xs = &c->shape[x->in[0]];
    int64_t outer = 1, m = 1, inner = 1;
    int axis = (int)x->attr[0];
    for (int k = 0; k < xs->rank; k++) {
        if (axis < 0 || k == axis)
            m *= xs->d[k];
        else if (k < axis)
            outer *= xs->d[k];
        else
            inner *= xs->d[k];
    }
    int is_max = x->op == OP_MAX;
    const char *init = is_max ? "-__int_as_float(0x7f800000)" : "0.0f";
    const char *fin = x->op == OP_MEAN ? pmlc_arena_printf(&c->P->arena, "acc / %lld.0f", (long long)m) : "acc";
    if (inner == 1) {
        cg_emit(c, "  const pml_ix lane = threadIdx.x %% 32;\n");
        cg_emit(c, "  for (pml_ix p = (pml_ix)blockIdx.x * 8 + threadIdx.x / 32; p < %lld; p += (pml_ix)gridDim.x * 8) {\n",
                (long long)outer);
        cg_emit(c, "    float acc = %s;\n    for (pml_ix k = lane; k < %lld; k += 32) {\n", init, (long long)m);
        const char *v = load(c, x->in[0], pmlc_arena_printf(&c->P->arena, "p * %lld + k", (long long)m));
        cg_emit(c, is_max ? "      acc = pml_maxn(acc, %s);\n    }\n" : "      acc += %s;\n    }\n", v);
        cg_emit(c, "    acc = pml_warp_%s(acc);\n    if (lane == 0) {\n", is_max ? "max" : "sum");
        put(c, n, "p", fin);
        cg_emit(c, "    }\n  }\n");
        return outer * 32;
    }
    cg_emit(c, "  for (pml_ix i = tid; i < %lld; i += stride) {\n", (long long)c->numel[n]);
    cg_emit(c, "    const pml_ix p = i / %lld, q = i %% %lld;\n", (long long)inner, (long long)inner);
    cg_emit(c, "    float acc = %s;\n    for (pml_ix k = 0; k < %lld; k++) {\n", init, (long long)m);
    const char *v =
        load(c, x->in[0], pmlc_arena_printf(&c->P->arena, "p * %lld + k * %lld + q", (long long)(m * inner), (long long)inner));
    cg_emit(c, is_max ? "      acc = pml_maxn(acc, %s);\n    }\n" : "      acc += %s;\n    }\n", v);
    put(c, n, "i", fin);
    cg_emit(c, "  }\n");
    return c->numel[n];
}

/* sum_to: each output element sums the input elements that broadcast to it. */
static int64_t sum_to(cg *c, int32_t n, const ir_node *x)
{
    const pmlc_cshape *os = &c->shape[n], *xs = &c->shape[x->in[0]];
    int64_t xst[PMLC_MAX_RANK], total = 1;
    strides(xs, xst);
    pmlc_arena *A = &c->P->arena;
    const char *base = "0", *red = "0";
    int lead = xs->rank - os->rank;
    for (int k = xs->rank - 1; k >= 0; k--) {
        int ko = k - lead;
        int64_t od = ko >= 0 ? os->d[ko] : 1;
        if (od == xs->d[k]) {
            if (od != 1) base = pmlc_arena_printf(A, "%s + c%d * %lld", base, ko, (long long)xst[k]);
        } else { /* summed away */
            red = pmlc_arena_printf(A, "%s + ((r / %lld) %% %lld) * %lld", red, (long long)total, (long long)xs->d[k],
                                    (long long)xst[k]);
            total *= xs->d[k];
        }
    }
    cg_emit(c, "  for (pml_ix i = tid; i < %lld; i += stride) {\n", (long long)c->numel[n]);
    coords(c, os);
    cg_emit(c, "    const pml_ix b = %s;\n    float acc = 0.0f;\n", base);
    cg_emit(c, "    for (pml_ix r = 0; r < %lld; r++) acc += %s;\n", (long long)total,
            load(c, x->in[0], pmlc_arena_printf(A, "b + %s", red)));
    put(c, n, "i", "acc");
    cg_emit(c, "  }\n");
    return c->numel[n];
}

/* permute, slice, pad, concat, expand: out[i] from one input offset (or 0). */
static int64_t movement(cg *c, int32_t n, const ir_node *x)
{
    pmlc_arena *A = &c->P->arena;
    const pmlc_cshape *os = &c->shape[n];
    cg_emit(c, "  for (pml_ix i = tid; i < %lld; i += stride) {\n", (long long)c->numel[n]);
    if (x->op == OP_EXPAND) {
        put(c, n, "i", load(c, x->in[0], cg_bcast_offset(c, n, x->in[0], "i")));
        cg_emit(c, "  }\n");
        return c->numel[n];
    }
    coords(c, os);
    if (x->op == OP_CONCAT) {
        int axis = (int)x->attr[0];
        int64_t at = 0;
        cg_emit(c, "    %s v = 0;\n", cg_ctype(c->g->nodes.v[n].dtype));
        for (int j = 0; j < x->n_in; j++) {
            const pmlc_cshape *is = &c->shape[x->in[j]];
            int64_t st[PMLC_MAX_RANK];
            strides(is, st);
            const char *off = "0";
            for (int k = 0; k < is->rank; k++)
                off = k == axis ? pmlc_arena_printf(A, "%s + (c%d - %lld) * %lld", off, k, (long long)at, (long long)st[k])
                                : pmlc_arena_printf(A, "%s + c%d * %lld", off, k, (long long)st[k]);
            cg_emit(c, "    %sif (c%d < %lld) v = %s;\n", j ? "else " : "", axis, (long long)(at + is->d[axis]),
                    load(c, x->in[j], off));
            at += is->d[axis];
        }
        put(c, n, "i", "v");
        cg_emit(c, "  }\n");
        return c->numel[n];
    }
    const pmlc_cshape *is = &c->shape[x->in[0]];
    int64_t st[PMLC_MAX_RANK];
    strides(is, st);
    const char *off = "0", *ok = "1";
    if (x->op == OP_PERMUTE) {
        for (int k = 0; k < os->rank; k++)
            off = pmlc_arena_printf(A, "%s + c%d * %lld", off, k, (long long)st[x->attr[k]]);
    } else { /* slice, pad: attr = axis, start, stop, step */
        int axis = (int)x->attr[0];
        long long start = (long long)x->attr[1], step = (long long)x->attr[3];
        for (int k = 0; k < os->rank; k++) {
            if (k != axis)
                off = pmlc_arena_printf(A, "%s + c%d * %lld", off, k, (long long)st[k]);
            else if (x->op == OP_SLICE)
                off = pmlc_arena_printf(A, "%s + (%lld + c%d * %lld) * %lld", off, start, k, step, (long long)st[k]);
            else {
                cg_emit(c, "    const pml_ix t = c%d - %lld;\n", k, start);
                ok = pmlc_arena_printf(A, "(t >= 0 && t %% %lld == 0 && t / %lld < %lld)", step, step,
                                       (long long)is->d[k]);
                off = pmlc_arena_printf(A, "%s + (t / %lld) * %lld", off, step, (long long)st[k]);
            }
        }
    }
    const char *v = load(c, x->in[0], off);
    if (strcmp(ok, "1")) v = pmlc_arena_printf(A, "(%s ? %s : 0)", ok, v);
    put(c, n, "i", v);
    cg_emit(c, "  }\n");
    return c->numel[n];
}

/* gather, pick, unpick, scatter_add. */
static int64_t indexed(cg *c, int32_t n, const ir_node *x)
{
    pmlc_arena *A = &c->P->arena;
    const pmlc_cshape *s0 = &c->shape[x->in[0]], *os = &c->shape[n];
    long long last0 = s0->rank ? (long long)s0->d[s0->rank - 1] : 1, lasto = os->rank ? (long long)os->d[os->rank - 1] : 1;
    int64_t N = x->op == OP_SCATTER_ADD ? c->numel[x->in[0]] : c->numel[n];
    cg_emit(c, "  for (pml_ix i = tid; i < %lld; i += stride) {\n", (long long)N);
    switch (x->op) {
    case OP_GATHER: /* table[N, C], idx[...] -> [..., C] */
        cg_emit(c, "    const pml_ix col = i %% %lld;\n    const int t = %s;\n", lasto, load(c, x->in[1], pmlc_arena_printf(A, "i / %lld", lasto)));
        check_index(c, "t", s0->d[0]);
        put(c, n, "i", pmlc_arena_printf(A, "bad ? 0 : %s", load(c, x->in[0], pmlc_arena_printf(A, "(pml_ix)t * %lld + col", lasto))));
        break;
    case OP_PICK: /* x[..., V], idx[...] -> [...] */
        cg_emit(c, "    const int t = %s;\n", load(c, x->in[1], "i"));
        check_index(c, "t", last0);
        put(c, n, "i", pmlc_arena_printf(A, "bad ? 0 : %s", load(c, x->in[0], pmlc_arena_printf(A, "i * %lld + t", last0))));
        break;
    case OP_UNPICK: /* dy[...], idx[...] -> [..., V] */
        cg_emit(c, "    const pml_ix r = i / %lld, v = i %% %lld;\n    const int t = %s;\n", lasto, lasto, load(c, x->in[1], "r"));
        cg_emit(c, "    if (v == 0 && (t < 0 || t >= %lld)) atomicOr(err, 1u);\n", lasto);
        c->checks_index = 1;
        put(c, n, "i", pmlc_arena_printf(A, "v == t ? %s : 0", load(c, x->in[0], "r")));
        break;
    case OP_SCATTER_ADD: { /* dy[..., C], idx[...] -> out[N, C], zeroed by the runtime */
        c->zero_output = 1;
        cg_emit(c, "    const pml_ix col = i %% %lld;\n    const int t = %s;\n", last0, load(c, x->in[1], pmlc_arena_printf(A, "i / %lld", last0)));
        check_index(c, "t", os->d[0]);
        int a = cg_arg(c, n, 1);
        const char *v = load(c, x->in[0], "i");
        const char *dst = pmlc_arena_printf(A, "&a%d[(pml_ix)t * %lld + col]", a, last0);
        pmlc_dtype t = c->g->nodes.v[n].dtype;
        if (t == PMLC_F32)
            cg_emit(c, "    if (!bad) atomicAdd(%s, %s);\n", dst, v);
        else if (t == PMLC_BF16 || t == PMLC_F16)
            cg_emit(c, "    if (!bad) pml_atomic_add16(%s, %s, %d);\n", dst, v, t == PMLC_BF16);
        else {
            pmlc_error(&c->P->diag, x->loc, "the CUDA backend has no kernel for scatter_add on %s", pmlc_dtype_name(t));
            c->errors++;
        }
        break;
    }
#define PML_CASE(e) case OP_##e:
#define PML_OWN_GATHER
#include "pml/op_cases.h"
        break; /* cg_single sends only GATHER ops here */
    }
    cg_emit(c, "  }\n");
    return N;
}

int64_t cg_single(cg *c, int32_t n)
{
    const ir_node *x = &c->g->nodes.v[n];
    int64_t big = c->numel[n];
    for (int k = 0; k < x->n_in; k++)
        if (c->numel[x->in[k]] > big) big = c->numel[x->in[k]];
    c->loc = x->loc;
    if (pmlc_ops[x->op].cls == PMLC_OPC_ATTENTION) return cg_attention(c, n, c->part); /* tiles, not a stride */
    cg_emit(c, "  typedef %s pml_ix;\n", big >= INT32_MAX ? "long long" : "int");
    cg_emit(c, "  const pml_ix stride = (pml_ix)gridDim.x * blockDim.x, tid = (pml_ix)blockIdx.x * blockDim.x + "
               "threadIdx.x;\n");
    switch (pmlc_ops[x->op].cls) {
    case PMLC_OPC_REDUCE: return x->op == OP_SUM_TO ? sum_to(c, n, x) : reduce(c, n, x);
    case PMLC_OPC_MOVEMENT: return movement(c, n, x);
    case PMLC_OPC_GATHER: return indexed(c, n, x);
    case PMLC_OPC_ROWLOSS: return cg_xent(c, n);
    case PMLC_OPC_ATTENTION:
        break; /* returned above */
    case PMLC_OPC_SOURCE:
    case PMLC_OPC_ELEMWISE:
    case PMLC_OPC_MATMUL:
        pmlc_error(&c->P->diag, x->loc,
                   "the CUDA backend has no kernel for %s: this plan was made for the CPU (plan it for CUDA: "
                   "pmlc_options.gpu_code, or a train block placed on cuda devices)",
                   pmlc_ops[x->op].name);
        c->errors++;
        return 0;
    }
    pmlc_error(&c->P->diag, x->loc, "the CUDA backend has no kernel for %s", pmlc_ops[x->op].name);
    c->errors++;
    return 0;
}
