/* cuda_xent.c — the fused softmax cross-entropy kernels (see cuda_int.h): xent and
 * xent_grad, a team per row as the row kernels have (a warp, 8 rows to a 256-thread
 * block; a whole block for rows wider than 1024). The forward pass reads the row twice
 * (max, then Σ exp(x - max)) and writes one loss; the backward pass reads the row once,
 * recovering lse = loss + x[label] and writing (exp(x - lse) - [j == label]) · dloss
 * (the label's entry as expm1(-loss) · dloss, as the CPU's).
 * With 16-bit logits the stored loss is too coarse for that (a bf16 loss of 10 is off
 * by up to 0.03, and every probability by 3%), so the backward pass recomputes lse from
 * the row first, two more reads of a row that is in cache.
 * Rows whose width is a multiple of a 16-byte vector are read (and the gradient
 * written) 16 bytes at a time. A label out of range sets the error flag and reads as
 * logit 0, as pick's do. */
#include <string.h>

#include "gpu/cuda_int.h"

typedef struct xent_row {
    int team, vec; /* threads per row; elements per access (1: scalar) */
    int64_t V;
    const char *mt; /* the logits' memory type */
    pmlc_dtype t;
    pmlc_dtype ot; /* the gradient's (under mixed precision it may differ from the logits': then vec is 1) */
} xent_row;

/* A loop over the row's elements `x` (logits at row), each as float `xv` at column j,
 * running `body` (lines, each ending in a newline); with `out` (the gradient's buffer
 * `d`), body sets float `dv` and the loop stores it. */
static void each(cg *c, const xent_row *r, const char *body, int out)
{
    const char *load = cg_from_mem(c, r->t, r->vec > 1 ? pmlc_arena_printf(&c->P->arena, "((const %s *)&w)[u]", r->mt) : "x[j]");
    const char *save = cg_to_mem(c, r->ot, "dv"), *in = r->vec > 1 ? "        " : "      ";
    if (r->vec == 1) {
        cg_emit(c, "    for (pml_ix j = lane; j < %lld; j += %d) {\n", (long long)r->V, r->team);
    } else {
        cg_emit(c, "    for (pml_ix q = lane; q < %lld; q += %d) {\n", (long long)(r->V / r->vec), r->team);
        cg_emit(c, "      const uint4 w = *(const uint4 *)(x + q * %d);\n", r->vec);
        if (out) cg_emit(c, "      uint4 o;\n");
        cg_emit(c, "#pragma unroll\n      for (int u = 0; u < %d; u++) {\n", r->vec);
        cg_emit(c, "        const pml_ix j = q * %d + u;\n", r->vec);
    }
    cg_emit(c, "%sconst float xv = %s;\n", in, load);
    for (const char *l = body, *nl; (nl = strchr(l, '\n')); l = nl + 1) cg_emit(c, "%s%.*s\n", in, (int)(nl - l), l);
    if (out && r->vec == 1) cg_emit(c, "      d[j] = %s;\n", save);
    if (out && r->vec > 1) cg_emit(c, "        ((%s *)&o)[u] = %s;\n", r->mt, save);
    if (r->vec > 1) cg_emit(c, "      }\n");
    if (out && r->vec > 1) cg_emit(c, "      *(uint4 *)(d + q * %d) = o;\n", r->vec);
    cg_emit(c, "    }\n");
}

/* The team's combination of every thread's `v` by `op` (max or sum), left in `v`. */
static void combine(cg *c, const xent_row *r, const char *v, const char *op)
{
    if (r->team == 32)
        cg_emit(c, "    %s = pml_warp_%s(%s);\n", v, op, v);
    else
        cg_emit(c, "    %s = pml_block_%s(%s, pml_sh);\n", v, op, v);
}

/* m (the row's max) and s = Σ exp(x - m), both the team's: two passes over the row. */
static void max_and_sum(cg *c, const xent_row *r)
{
    cg_emit(c, "    float m = -__int_as_float(0x7f800000);\n");
    each(c, r, "m = pml_maxn(m, xv);\n", 0);
    combine(c, r, "m", "max");
    cg_emit(c, "    float s = 0.0f;\n");
    each(c, r, "s += expf(xv - m);\n", 0);
    combine(c, r, "s", "sum");
}

int64_t cg_xent(cg *c, int32_t n)
{
    const ir_node *x = &c->g->nodes.v[n];
    const pmlc_cshape *xs = &c->shape[x->in[0]];
    xent_row r = {0};
    r.t = c->g->nodes.v[x->in[0]].dtype;
    r.ot = x->op == OP_XENT_GRAD ? x->dtype : r.t;
    r.mt = cg_mtype(r.t);
    r.V = xs->rank ? xs->d[xs->rank - 1] : 1;
    r.team = r.V > 1024 ? 256 : 32;
    r.vec = 16 / pmlc_dtype_bytes(r.t);
    if (r.V % r.vec || r.ot != r.t) r.vec = 1;
    int64_t rows = r.V ? c->numel[x->in[0]] / r.V : 0;
    int rpb = 256 / r.team, grad = x->op == OP_XENT_GRAD;
    int ax = cg_arg(c, x->in[0], 0), al = cg_arg(c, x->in[1], 0);
    c->checks_index = 1;
    if (r.team > 32) cg_emit(c, "  __shared__ float pml_sh[%d];\n", r.team / 32);
    cg_emit(c, "  const pml_ix lane = threadIdx.x %% %d;\n", r.team);
    cg_emit(c, "  for (pml_ix row = (pml_ix)blockIdx.x * %d + threadIdx.x / %d; row < %lld; row += (pml_ix)gridDim.x * %d) {\n",
            rpb, r.team, (long long)rows, rpb);
    cg_emit(c, "    const %s *x = a%d + row * %lld;\n    const int t = a%d[row];\n", r.mt, ax, (long long)r.V, al);
    cg_emit(c, "    const int bad = t < 0 || t >= %lld;\n    if (bad && lane == 0) atomicOr(err, 1u);\n", (long long)r.V);
    cg_emit(c, "    const float xt = bad ? 0.0f : %s;\n", cg_from_mem(c, r.t, "x[t]"));
    if (!grad) {
        max_and_sum(c, &r);
        int ao = cg_arg(c, n, 1);
        cg_emit(c, "    if (lane == 0) a%d[row] = %s;\n", ao, cg_to_mem(c, x->dtype, "m + logf(s) - xt"));
    } else {
        int aloss = cg_arg(c, x->in[2], 0), ady = cg_arg(c, x->in[3], 0), ao = cg_arg(c, n, 1);
        /* nl = x[label] - lse = -loss: the label's entry is expm1(nl) · dloss, not
         * exp(nl) · dloss - dloss, whose cancellation lost three digits in confident rows */
        pmlc_dtype lt = c->g->nodes.v[x->in[2]].dtype, gt = c->g->nodes.v[x->in[3]].dtype;
        if (r.t == PMLC_F32 && lt == PMLC_F32) {
            cg_emit(c, "    const float nl = -a%d[row], lse = xt - nl;\n", aloss);
        } else { /* a 16-bit loss holds lse to 2^-8 of the loss: recompute it */
            max_and_sum(c, &r);
            cg_emit(c, "    const float lse = m + logf(s), nl = xt - lse;\n");
        }
        cg_emit(c, "    const float g = %s;\n", cg_from_mem(c, gt, pmlc_arena_printf(&c->P->arena, "a%d[row]", ady)));
        cg_emit(c, "    %s *d = a%d + row * %lld;\n", cg_mtype(r.ot), ao, (long long)r.V);
        each(c, &r, "float dv = j == t ? expm1f(nl) * g : expf(xv - lse) * g;\n", 1);
    }
    cg_emit(c, "  }\n");
    return rows * r.team;
}
