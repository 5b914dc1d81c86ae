/* attention.c — the fused scaled dot-product attention (attention) and its backward
 * (attention_grad), docs/design.md "Fused attention".
 *
 * Contract: q, k, v and the output are [..., n, d] of one dtype (f32, or f64 for the
 * gradient checks; 16-bit operands come widened by half.c), contiguous; fval is the
 * scale and attr[0] 1 for the causal mask (key c hidden from query r when c > r).
 * attention writes softmax(q kᵀ · scale) v per matrix; attention_grad takes q, k, v,
 * the forward output and its gradient and writes [3, ..., n, d]: dq, dk, dv. No
 * [n, n] value is made: scores live one tile at a time in per-thread scratch, and the
 * backward pass recomputes the probabilities from q, k and each row's log-sum-exp
 * (recomputed too, by a first pass over the key tiles, as the plan keeps one value per
 * op). Matrices (the leading indices: batch, head) are split over the stage's pool, one
 * task each, each writing only its own matrix, so the results are the same at any
 * thread count. The f32 loops are compiled for AVX-512 and AVX2 as well and picked at
 * load (core/vectorize.h); f32 uses expf.h's exp, f64 libm's. The scratch (key tile,
 * accumulators, per-row state: about 30 KiB per thread at d = 32, T = 64) is allocated
 * per call, outside the plan's memory figure, as half.c's temporaries are. */
#include "core/vectorize.h"

#include "cpu.h"
#include "expf.h"
#include "pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 64 query rows against 64 keys: at d = 64 the key tile and the accumulators are 16 KiB
 * each (L1 holds 32-48 KiB); ATT_BK a multiple of ATT_LANES. */
enum { ATT_BQ = 64, ATT_BK = 64, ATT_LANES = 16, ATT_RB = 8 };

/* The helpers are inlined into each clone of the row loops (core/vectorize.h), so they
 * are compiled for its instruction set: a helper left out of line runs baseline SSE2. */
#define ATT_INLINE inline __attribute__((always_inline))

#define T float
#define F(name) name##_f32
#define EXP(v) pml_cpu_expf(v)
#include "attention_tmpl.h"
#undef T
#undef F
#undef EXP
#define T double
#define F(name) name##_f64
#define EXP(v) exp(v)
#include "attention_tmpl.h"
#undef T
#undef F
#undef EXP

typedef struct att_job {
    const pml_op_call *c;
    int64_t n, d, mats;
    size_t per_worker; /* scratch elements per worker */
    void *scratch;
} att_job;

static size_t scratch_elems(int64_t n, int64_t d)
{
    return (size_t)(2 * d * ATT_BK + 2 * ATT_BK + 2 * n + 2 * ATT_BQ + ATT_BQ * d + 2 * ATT_BK * ATT_RB);
}

#define ATT_TASK(TY, SUF)                                                                                          \
    static void att_task_##SUF(const att_job *j, int64_t b, TY *w)                                                 \
    {                                                                                                              \
        const pml_op_call *c = j->c;                                                                               \
        int64_t n = j->n, d = j->d, at = b * n * d, all = j->mats * n * d;                                         \
        TY scale = (TY)c->fval;                                                                                    \
        int causal = c->attr[0] != 0;                                                                              \
        const TY *q = (const TY *)c->in[0].data + at, *k = (const TY *)c->in[1].data + at,                         \
                 *v = (const TY *)c->in[2].data + at;                                                              \
        TY *kt = w, *vt = kt + d * ATT_BK, *s = vt + d * ATT_BK, *dp = s + ATT_BK, *lse = dp + ATT_BK,    \
           *D = lse + n, *m = D + n, *l = m + ATT_BQ, *acc = l + ATT_BQ, *pt = acc + ATT_BQ * d, *dst = pt + ATT_BK * ATT_RB;                                           \
        if (c->op == PML_OP_ATTENTION) {                                                                           \
            att_fwd_##SUF((TY *)c->out.data + at, NULL, q, k, v, n, d, scale, causal, kt, s, m, l, acc);           \
            return;                                                                                                \
        }                                                                                                          \
        TY *g = (TY *)c->out.data + at;                                                                            \
        att_bwd_##SUF(g, g + all, g + 2 * all, q, k, v, (const TY *)c->in[3].data + at,                            \
                      (const TY *)c->in[4].data + at, n, d, scale, causal, kt, vt, s, dp, lse, D, m, l, pt, dst);          \
    }
ATT_TASK(float, f32)
ATT_TASK(double, f64)

static pml_status att_run(void *ctx, int64_t task, int worker, pml_err *err)
{
    (void)err;
    const att_job *j = ctx;
    if (j->c->out.dtype == PML_F32)
        att_task_f32(j, task, (float *)j->scratch + (size_t)worker * j->per_worker);
    else
        att_task_f64(j, task, (double *)j->scratch + (size_t)worker * j->per_worker);
    return PML_OK;
}

pml_status pml_cpu_attention(const pml_op_call *c, pml_err *err)
{
    const char *name = pml_op_name(c->op);
    int grad = c->op == PML_OP_ATTENTION_GRAD;
    const pml_view *q = &c->in[0], *o = &c->out;
    pml_dtype t = q->dtype;
    char s1[160], s2[160];
    if (t != PML_F32 && t != PML_F64) return pml_cpu_unsupported(c, t, err);
    if (c->n_attr < 1 || (c->attr[0] != 0 && c->attr[0] != 1))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: attr[0] (causal) must be 0 or 1", name);
    if (q->rank < 2) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: q must be [..., T, d], not %s", name,
                                        pml_cpu_shape_str(q, s1, sizeof s1));
    for (int k = 1; k < c->n_in; k++)
        if (c->in[k].dtype != t || !pml_cpu_same_shape(&c->in[k], q))
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: input %d is %s %s, q %s %s", name, k,
                               pml_dtype_name(c->in[k].dtype), pml_cpu_shape_str(&c->in[k], s1, sizeof s1),
                               pml_dtype_name(t), pml_cpu_shape_str(q, s2, sizeof s2));
    int ok = o->dtype == t && o->rank == q->rank + grad && (!grad || o->dims[0] == 3);
    for (int k = 0; ok && k < q->rank; k++) ok = o->dims[k + grad] == q->dims[k];
    if (!ok)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: output %s does not fit q %s", name,
                           pml_cpu_shape_str(o, s1, sizeof s1), pml_cpu_shape_str(q, s2, sizeof s2));
    att_job j = {c, q->dims[q->rank - 2], q->dims[q->rank - 1], 0, 0, NULL};
    if (!j.n || !j.d) return PML_OK;
    j.mats = pml_cpu_numel(q) / (j.n * j.d);
    if (!j.mats) return PML_OK;
    /* Below the split threshold the caller runs every matrix: waking workers costs more. */
    double macs = (double)j.mats * (double)j.n * (double)j.n * (double)j.d * (grad ? 5 : 2);
    pml_cpu_pool *pool = j.mats > 1 && macs >= PML_CPU_POOL_SPLIT_MACS ? c->pool : NULL;
    int workers = pml_cpu_pool_threads(pool);
    size_t esz = t == PML_F32 ? sizeof(float) : sizeof(double);
    j.per_worker = (scratch_elems(j.n, j.d) * esz + 63) / 64 * 64 / esz; /* each worker's part 64-byte aligned */
    j.scratch = aligned_alloc(64, j.per_worker * esz * (size_t)workers);
    if (!j.scratch) return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory for scratch", name);
    pml_status st = pml_cpu_pool_run(pool, j.mats, att_run, &j, err);
    free(j.scratch);
    return st;
}
