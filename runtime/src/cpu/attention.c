/* attention.c — the fused scaled dot-product attention (attention, attention_qkv) and
 * its backward (attention_grad, attention_qkv_grad), docs/design.md "Fused attention"
 * and "Attention on the packed projection".
 *
 * Contract: q, k, v and the output are [..., n, d], contiguous, each f32, bf16 or f16
 * (the math f32; a 16-bit matrix widened in the worker's scratch as it is used and a
 * 16-bit output rounded once, att_matrix_f32), or all f64 (the gradient checks); fval is the
 * scale and attr[0] 1 for the causal mask (key c hidden from query r when c > r).
 * attention writes softmax(q kᵀ · scale) v per matrix; attention_grad takes q, k, v,
 * the forward output and its gradient and writes [3, ..., n, d]: dq, dk, dv.
 * attention_qkv (attr[1] heads) computes the same per (leading index, head) matrix read
 * in place from qkv [..., n, 3·heads·d] and written into rows of heads·d;
 * attention_qkv_grad takes qkv, the output and its gradient and writes qkv's shape (the
 * same bits as attention on the permuted copies: att_where says where each lies). No
 * [n, n] value is made: scores live one tile at a time in per-thread scratch, and the
 * backward pass recomputes the probabilities from q, k and each row's log-sum-exp:
 * the forward's, where the caller keeps them (pml_op_call's lse: the CPU backend does
 * in training, on the panel-GEMM path), else recomputed by a first pass over the key
 * tiles. Matrices (the leading indices: batch, head) are split over the stage's pool, one
 * task each, each writing only its own matrix, so the results are the same at any
 * thread count. f32 runs on 64 x 64 tiles whose products are panel-GEMM calls where the
 * CPU has AVX-512 (below), else, like f64, on attention_tmpl.h's row-at-a-time products.
 * The loops are compiled for AVX-512 and AVX2 as well and picked at load
 * (core/vectorize.h); f32 uses expf.h's exp, f64 libm's. The scratch (key tile,
 * accumulators, per-row state: about 30 KiB per thread at d = 32, T = 64, and n·d floats
 * per 16-bit operand and output matrix) is allocated per call, outside the plan's
 * memory figure, as half.c's temporaries are. */
#include "core/rng.h"
#include "core/vectorize.h"

#include "convert.h"
#include "cpu.h"
#include "expf.h"
#include "gemm.h"
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

/* Dropout on one matrix's weights (pml/ops.def): weight (r, c) is kept where dropout
 * with the op's key keeps element base + r·n + c of the [..., n, n] weights, base being
 * the matrix's b·n·n, on this step's and micro-batch's seed (cpu/kernels.h). */
typedef struct att_drop {
    double p;
    uint64_t seed, key, base;
    int64_t n;
} att_drop;
#define ATT_KEEP(z, r, c) \
    ((double)pml_rng_uniform_f32((z)->seed, (z)->key, (z)->base + (uint64_t)((r) * (z)->n + (c))) >= (z)->p)

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

/* ---- f32 on the panel GEMM ---------------------------------------------------------
 * Where the panel GEMM runs (gemm.h: AVX-512F), f32 works on tiles of ATT_G query rows
 * by ATT_G keys, each product of a tile pair one panel-GEMM call: at d = 32 the row-at-a-
 * time products of attention_tmpl.h (kept for f64 and CPUs without AVX-512) reach a
 * sixth of the core, these most of it. Forward: s = q kᵀ · scale, an online softmax per
 * row, acc += p v. Backward: flash-attention's five products per tile pair, p
 * recomputed from each row's log-sum-exp. A tile's scores are a [G, G] block of
 * scratch (16 KiB), never the [n, n] matrix; each tile's k and v are packed into panels
 * once (kᵀ, vᵀ as the B of a product), and pᵀ and dsᵀ transposed once. */
enum { ATT_G = 64 };

/* Scratch floats of the panel path per worker. */
static size_t tiles_elems(int64_t n, int64_t d)
{
    return 4 * (size_t)(ATT_G * ATT_G) + 2 * pml_cpu_gemm_packed_floats(d, ATT_G) + (size_t)(ATT_G * d) +
           2 * (size_t)ATT_G + 2 * (size_t)n;
}

/* t[c][r] = x[r][c] for a bq x bk tile, rows ATT_G apart in both. */
PML_VECTOR_CLONES static void att_tile_t(float *t, const float *x, int64_t bq, int64_t bk)
{
    for (int64_t r = 0; r < bq; r++)
        for (int64_t c = 0; c < bk; c++) t[c * ATT_G + r] = x[r * ATT_G + c];
}

/* One matrix's operands: in[] q, k, v (and for the backward o and do), out[] its output
 * (or dq, dk, dv); row r of each at r·ld elements from its start, d values. Rows d apart
 * for attention's contiguous matrices; attention_qkv's sit in the packed rows. */
typedef struct att_mat {
    const float *in[5];
    float *out[3];
    int64_t ldi[5], ldo[3];
} att_mat;

/* s[r][c] = scale · q_(i0+r) · k_c of the packed key tile, -inf where the causal mask
 * hides key j0 + c. */
PML_VECTOR_CLONES static void att_tile_scores(float *s, const float *q, int64_t ldq, const float *kp, int64_t d,
                                              int64_t i0, int64_t bq, int64_t j0, int64_t bk, float scale, int causal)
{
    pml_cpu_gemm_packed_f32(0, bq, bk, d, q + i0 * ldq, ldq, pml_cpu_gemm_packed(kp, d), s, ATT_G, NULL);
    for (int64_t r = 0; r < bq; r++)
        for (int64_t c = 0; c < bk; c++) s[r * ATT_G + c] = causal && j0 + c > i0 + r ? -INFINITY : s[r * ATT_G + c] * scale;
}

/* One row's step of the online softmax over a key tile: sr (bk scores) becomes
 * exp(sr - m') with m' the running max *m after the tile, *l the running sum; returns
 * the factor earlier accumulations are scaled by (1 while no key has been seen: the
 * row's weights are all 0). The max and the sum go in att_fold's partial lanes: in
 * order, each was one scalar chain, most of the row loop's time (a NaN is passed over). */
static ATT_INLINE float att_softmax_row(float *sr, int64_t bk, float *m, float *l)
{
    float mx = att_fold_f32(sr, bk, 1);
    mx = mx > *m ? mx : *m;
    if (mx == -INFINITY) { /* no key seen yet: no weight */
        for (int64_t c = 0; c < bk; c++) sr[c] = 0;
        return 1;
    }
    float corr = *m == -INFINITY ? 0 : pml_cpu_expf(*m - mx);
    for (int64_t c = 0; c < bk; c++) sr[c] = pml_cpu_expf(sr[c] - mx);
    *l = *l * corr + att_fold_f32(sr, bk, 0);
    *m = mx;
    return corr;
}

/* x's output o = softmax(q kᵀ · scale) v, and lse[r] = log Σ exp(s_r·); with `lse_only`
 * the log-sum-exps alone. */
PML_VECTOR_CLONES static void att_fwd_tiles(const att_mat *x, int lse_only, float *lse, int64_t n, int64_t d,
                                            float scale, int causal, const att_drop *z, float *s, float *kp, float *m,
                                            float *l, float *acc)
{
    float zs = z ? (float)(1.0 / (1.0 - z->p)) : 1;
    const float *q = x->in[0], *k = x->in[1], *v = x->in[2];
    float *o = lse_only ? NULL : x->out[0];
    int64_t lq = x->ldi[0], lk = x->ldi[1], lv = x->ldi[2], lo = x->ldo[0];
    for (int64_t i0 = 0; i0 < n; i0 += ATT_G) {
        int64_t bq = n - i0 < ATT_G ? n - i0 : ATT_G, jend = causal ? i0 + bq : n;
        for (int64_t r = 0; r < bq; r++) m[r] = -INFINITY, l[r] = 0;
        if (o) memset(acc, 0, sizeof *acc * (size_t)(bq * d));
        for (int64_t j0 = 0; j0 < jend; j0 += ATT_G) {
            int64_t bk = jend - j0 < ATT_G ? jend - j0 : ATT_G;
            pml_cpu_gemm_pack_b(1, d, bk, k + j0 * lk, lk, kp);
            att_tile_scores(s, q, lq, kp, d, i0, bq, j0, bk, scale, causal);
            for (int64_t r = 0; r < bq; r++) {
                float corr = att_softmax_row(s + r * ATT_G, bk, &m[r], &l[r]), *sr = s + r * ATT_G;
                if (o)
                    for (int64_t t = 0; t < d; t++) acc[r * d + t] *= corr;
                for (int64_t c = 0; o && z && c < bk; c++) sr[c] = ATT_KEEP(z, i0 + r, j0 + c) ? sr[c] * zs : 0;
            }
            if (o)
                pml_cpu_gemm_packed_f32(1, bq, d, bk, s, ATT_G, pml_cpu_gemm_in_place(v + j0 * lv, lv), acc, d, NULL);
        }
        for (int64_t r = 0; r < bq; r++) {
            lse[i0 + r] = m[r] + logf(l[r]);
            if (o)
                for (int64_t t = 0; t < d; t++) o[(i0 + r) * lo + t] = acc[r * d + t] / l[r];
        }
    }
}

/* x's dq, dk, dv: per key tile j and query tile i, p = exp(s - lse), dv_j += pᵀ do_i,
 * dp = do_i v_jᵀ, ds = p (dp - rowsum(do ∘ o)) · scale, dq_i += ds k_j, dk_j += dsᵀ q_i;
 * under z's dropout, with zt the tile's kept weights' factors (1/(1 - p) or 0),
 * dv_j += (p ∘ zt)ᵀ do_i and ds = p (dp ∘ zt - rowsum(do ∘ o)) · scale. */
PML_VECTOR_CLONES static void att_bwd_tiles(const att_mat *x, int64_t n, int64_t d, float scale, int causal,
                                            const att_drop *z, float *s, float *dp, float *t, float *zt, float *kp,
                                            float *vp, float *lse, int kept, float *D, float *m, float *l)
{
    float zs = z ? (float)(1.0 / (1.0 - z->p)) : 1;
    const float *q = x->in[0], *k = x->in[1], *v = x->in[2], *o = x->in[3], *dout = x->in[4];
    float *dq = x->out[0], *dk = x->out[1], *dv = x->out[2];
    int64_t lq = x->ldi[0], lk = x->ldi[1], lv = x->ldi[2], lo = x->ldi[3], ldo = x->ldi[4];
    int64_t lgq = x->ldo[0], lgk = x->ldo[1], lgv = x->ldo[2];
    /* The forward's log-sum-exps when it kept them (`kept`: lse holds them), else made
     * again. One key tile (n ≤ ATT_G): from the scores the loop below makes anyway, as
     * att_fwd_tiles would make it (the same calls: the same bits, so the kept ones are
     * these too), rather than from a pass of its own recomputing them. */
    int one = n <= ATT_G && !kept;
    if (n > ATT_G && !kept) att_fwd_tiles(x, 1, lse, n, d, scale, causal, NULL, s, kp, m, l, NULL);
    for (int64_t r = 0; r < n; r++) D[r] = att_dot_f32(dout + r * ldo, o + r * lo, d);
    for (int64_t r = 0; r < n; r++) {
        memset(dq + r * lgq, 0, sizeof *dq * (size_t)d);
        memset(dk + r * lgk, 0, sizeof *dk * (size_t)d);
        memset(dv + r * lgv, 0, sizeof *dv * (size_t)d);
    }
    for (int64_t j0 = 0; j0 < n; j0 += ATT_G) {
        int64_t bk = n - j0 < ATT_G ? n - j0 : ATT_G;
        pml_cpu_gemm_pack_b(1, d, bk, k + j0 * lk, lk, kp);
        pml_cpu_gemm_pack_b(1, d, bk, v + j0 * lv, lv, vp);
        for (int64_t i0 = causal ? j0 : 0; i0 < n; i0 += ATT_G) {
            int64_t bq = n - i0 < ATT_G ? n - i0 : ATT_G;
            att_tile_scores(s, q, lq, kp, d, i0, bq, j0, bk, scale, causal);
            for (int64_t r = 0; one && r < bq; r++) { /* att_fwd_tiles's steps on a copy of the row */
                m[r] = -INFINITY, l[r] = 0;
                memcpy(dp, s + r * ATT_G, sizeof *dp * (size_t)bk);
                (void)att_softmax_row(dp, bk, &m[r], &l[r]);
                lse[r] = m[r] + logf(l[r]);
            }
            for (int64_t r = 0; r < bq; r++)
                for (int64_t c = 0; c < bk; c++) s[r * ATT_G + c] = pml_cpu_expf(s[r * ATT_G + c] - lse[i0 + r]);
            if (z) { /* the kept weights' factors, and t = (p ∘ zt)ᵀ */
                for (int64_t r = 0; r < bq; r++)
                    for (int64_t c = 0; c < bk; c++) zt[r * ATT_G + c] = ATT_KEEP(z, i0 + r, j0 + c) ? zs : 0;
                for (int64_t r = 0; r < bq; r++)
                    for (int64_t c = 0; c < bk; c++) t[c * ATT_G + r] = s[r * ATT_G + c] * zt[r * ATT_G + c];
            } else
                att_tile_t(t, s, bq, bk);
            pml_cpu_gemm_packed_f32(1, bk, d, bq, t, ATT_G, pml_cpu_gemm_in_place(dout + i0 * ldo, ldo), dv + j0 * lgv,
                                    lgv, NULL);
            pml_cpu_gemm_packed_f32(0, bq, bk, d, dout + i0 * ldo, ldo, pml_cpu_gemm_packed(vp, d), dp, ATT_G, NULL);
            for (int64_t r = 0; z && r < bq; r++) /* the gradient to the weights before dropout */
                for (int64_t c = 0; c < bk; c++) dp[r * ATT_G + c] *= zt[r * ATT_G + c];
            for (int64_t r = 0; r < bq; r++)
                for (int64_t c = 0; c < bk; c++)
                    dp[r * ATT_G + c] = s[r * ATT_G + c] * (dp[r * ATT_G + c] - D[i0 + r]) * scale;
            pml_cpu_gemm_packed_f32(1, bq, d, bk, dp, ATT_G, pml_cpu_gemm_in_place(k + j0 * lk, lk), dq + i0 * lgq, lgq,
                                    NULL);
            att_tile_t(t, dp, bq, bk);
            pml_cpu_gemm_packed_f32(1, bk, d, bq, t, ATT_G, pml_cpu_gemm_in_place(q + i0 * lq, lq), dk + j0 * lgk, lgk,
                                    NULL);
        }
    }
}

typedef struct att_job {
    const pml_op_call *c;
    int64_t n, d, mats;
    int64_t heads;     /* attention_qkv's heads (matrix b is leading index b / heads, head b % heads); 0: attention */
    int grad, n_in;    /* the backward op; kernel operand slots in use (3 or 5) */
    int wide;          /* 1: f64; else f32 math, 16-bit operands widened per matrix */
    att_drop drop;     /* dropout on the weights (its base set per matrix); p 0: none */
    size_t kernel;     /* elements of the kernel's scratch per worker, then the operands' copies */
    size_t per_worker; /* scratch elements per worker (64-byte multiples) */
    void *scratch;
} att_job;

static size_t scratch_elems(int64_t n, int64_t d)
{
    size_t rows = (size_t)(2 * d * ATT_BK + 3 * ATT_BK + 2 * n + 2 * ATT_BQ + ATT_BQ * d + 2 * ATT_BK * ATT_RB);
    size_t tiles = tiles_elems(n, d);
    return rows > tiles ? rows : tiles;
}

/* Where matrix b's operand in kernel slot k lies (slots 0-4: q, k, v, o, do; 5-7: the
 * output, or dq, dk, dv): the call's view, the element offset of its row 0 and the
 * elements between rows. attention's matrices follow each other, dq, dk and dv stacked
 * after the others'; attention_qkv's q, k and v are columns [0, C), [C, 2C), [2C, 3C)
 * of the packed rows (C = heads · d), each head its d of them, and its output, o and do
 * rows of C. */
static const pml_view *att_where(const att_job *j, int64_t b, int k, int64_t *off, int64_t *ld)
{
    const pml_op_call *c = j->c;
    int64_t n = j->n, d = j->d, nd = n * d, out = k - 5;
    if (!j->heads) {
        *ld = d;
        *off = b * nd + (out > 0 ? out * j->mats * nd : 0);
        return out >= 0 ? &c->out : &c->in[k];
    }
    int64_t C = j->heads * d, lead = b / j->heads, h = b % j->heads;
    int packed = k < 3 || (out >= 0 && j->grad), part = out >= 0 ? (int)out : k;
    *ld = packed ? 3 * C : C;
    *off = lead * n * *ld + h * d + (packed ? part * C : 0);
    return out >= 0 ? &c->out : &c->in[k < 3 ? 0 : k - 2];
}

/* Matrix b's dropout, in *z (its decisions start at b·n·n), or NULL when it has none. */
static const att_drop *att_drop_of(const att_job *j, int64_t b, att_drop *z)
{
    if (j->drop.p <= 0) return NULL;
    *z = j->drop;
    z->base = (uint64_t)(b * j->n * j->n);
    return z;
}

/* One matrix on attention_tmpl.h's row products: in[] its q, k, v (o, do), out[] its
 * output or dq, dk, dv, each contiguous; w the worker's scratch. */
#define ATT_ROWS(TY, SUF)                                                                                            \
    static void att_rows_##SUF(const att_job *j, const att_drop *z, const TY *const *in, TY *const *out, TY *w)      \
    {                                                                                                                \
        const pml_op_call *c = j->c;                                                                                 \
        int64_t n = j->n, d = j->d;                                                                                  \
        TY scale = (TY)c->fval;                                                                                      \
        int causal = c->attr[0] != 0;                                                                                \
        TY *kt = w, *vt = kt + d * ATT_BK, *s = vt + d * ATT_BK, *dp = s + ATT_BK, *lse = dp + ATT_BK, *D = lse + n, \
           *m = D + n, *l = m + ATT_BQ, *acc = l + ATT_BQ, *pt = acc + ATT_BQ * d, *dst = pt + ATT_BK * ATT_RB,      \
           *zr = dst + ATT_BK * ATT_RB;                                                                              \
        if (!j->grad)                                                                                                \
            att_fwd_##SUF(out[0], NULL, in[0], in[1], in[2], n, d, scale, causal, z, kt, s, m, l, acc);              \
        else                                                                                                         \
            att_bwd_##SUF(out[0], out[1], out[2], in[0], in[1], in[2], in[3], in[4], n, d, scale, causal, z, kt, vt, \
                          s, dp, lse, D, m, l, pt, dst, zr);                                                         \
    }
ATT_ROWS(float, f32)
ATT_ROWS(double, f64)

/* One f32 matrix on the panel GEMM's tiles, its operands where x says; `kept`: its
 * rows' log-sum-exps, pml_op_call's lse, or NULL. */
static void att_tiles(const att_job *j, const att_drop *z, const att_mat *x, float *w, float *kept)
{
    const pml_op_call *c = j->c;
    int64_t n = j->n, d = j->d;
    int causal = c->attr[0] != 0;
    size_t pf = pml_cpu_gemm_packed_floats(d, ATT_G);
    float *s = w, *dp = s + ATT_G * ATT_G, *t = dp + ATT_G * ATT_G, *zt = t + ATT_G * ATT_G, *kp = zt + ATT_G * ATT_G,
          *vp = kp + pf, *acc = vp + pf, *m = acc + ATT_G * d, *l = m + ATT_G, *lse = l + ATT_G, *D = lse + n;
    if (!j->grad)
        att_fwd_tiles(x, 0, kept ? kept : lse, n, d, (float)c->fval, causal, z, s, kp, m, l, acc);
    else
        att_bwd_tiles(x, n, d, (float)c->fval, causal, z, s, dp, t, zt, kp, vp, kept ? kept : lse, kept != NULL, D, m,
                      l);
}

/* Matrix b of a call whose math is f32. A 16-bit operand's matrix is widened into the
 * worker's scratch (n·d floats: in cache, where widening the whole tensor first, as
 * cpu/half.c does for other ops, wrote and read it back through memory), and a 16-bit
 * output is computed there in f32 and rounded into place: the values, and so the bits,
 * of the f32 kernel on the widened tensors, rounded once. The tiles read and write f32
 * operands where they lie, packed rows too; the row products (no AVX-512) take
 * contiguous matrices, so a packed one is copied there and back. */
static void att_matrix_f32(const att_job *j, int64_t b, float *w)
{
    const pml_op_call *c = j->c;
    int64_t n = j->n, d = j->d, nd = n * d;
    int tiles = pml_cpu_gemm_packed_available(), outs = j->grad ? 3 : 1;
    att_mat x;
    float *f = w + j->kernel;
    const char *from[3] = {NULL};
    for (int k = 0; k < j->n_in + 3; k++) {
        if (k >= j->n_in && k < 5) continue;
        int64_t off, ld;
        const pml_view *v = att_where(j, b, k, &off, &ld);
        int out = k >= 5, i = out ? k - 5 : k, half = pml_cpu_is_half(v->dtype);
        if (out && i >= outs) break;
        char *at = (char *)v->data + (size_t)off * pml_dtype_size(v->dtype);
        if (!half && (tiles || ld == d)) { /* in place */
            if (out)
                x.out[i] = (float *)at, x.ldo[i] = ld;
            else
                x.in[i] = (const float *)at, x.ldi[i] = ld;
            continue;
        }
        if (out) {
            x.out[i] = f, x.ldo[i] = d, from[i] = at;
        } else {
            for (int64_t r = 0; r < n; r++) {
                const char *row = at + (size_t)(r * ld) * pml_dtype_size(v->dtype);
                if (half)
                    pml_cpu_widen(f + r * d, row, v->dtype, (size_t)d);
                else
                    memcpy(f + r * d, row, sizeof *f * (size_t)d);
            }
            x.in[i] = f, x.ldi[i] = d;
        }
        f += nd;
    }
    att_drop zb;
    const att_drop *z = att_drop_of(j, b, &zb);
    if (tiles) /* the rows' log-sum-exps kept on this path only */
        att_tiles(j, z, &x, w, c->lse ? c->lse + b * n : NULL);
    else
        att_rows_f32(j, z, x.in, x.out, w);
    for (int i = 0; i < outs; i++) {
        if (!from[i]) continue;
        int64_t off, ld;
        const pml_view *v = att_where(j, b, 5 + i, &off, &ld);
        for (int64_t r = 0; r < n; r++) {
            char *row = (char *)from[i] + (size_t)(r * ld) * pml_dtype_size(v->dtype);
            if (pml_cpu_is_half(v->dtype))
                pml_cpu_narrow(row, v->dtype, x.out[i] + r * d, (size_t)d);
            else
                memcpy(row, x.out[i] + r * d, sizeof(float) * (size_t)d);
        }
    }
}

/* Matrix b in f64 (the gradient checks): attention_qkv's packed rows copied into the
 * worker's scratch and the results back, attention's read in place. */
static void att_matrix_f64(const att_job *j, int64_t b, double *w)
{
    int64_t n = j->n, d = j->d, outs = j->grad ? 3 : 1;
    const double *in[5] = {NULL};
    double *out[3] = {NULL}, *f = w + j->kernel;
    for (int k = 0; k < 8; k++) {
        if ((k >= j->n_in && k < 5) || k >= 5 + outs) continue;
        int64_t off, ld;
        double *at = (double *)att_where(j, b, k, &off, &ld)->data + off;
        double *to = ld == d ? at : f;
        if (ld != d) f += n * d;
        for (int64_t r = 0; k < 5 && to != at && r < n; r++) memcpy(to + r * d, at + r * ld, sizeof *to * (size_t)d);
        if (k < 5)
            in[k] = to;
        else
            out[k - 5] = to;
    }
    att_drop zb;
    att_rows_f64(j, att_drop_of(j, b, &zb), in, out, w);
    for (int i = 0; i < outs; i++) {
        int64_t off, ld;
        double *at = (double *)att_where(j, b, 5 + i, &off, &ld)->data + off;
        for (int64_t r = 0; out[i] != at && r < n; r++) memcpy(at + r * ld, out[i] + r * d, sizeof *at * (size_t)d);
    }
}

static pml_status att_run(void *ctx, int64_t task, int worker, pml_err *err)
{
    (void)err;
    const att_job *j = ctx;
    if (j->wide)
        att_matrix_f64(j, task, (double *)j->scratch + (size_t)worker * j->per_worker);
    else
        att_matrix_f32(j, task, (float *)j->scratch + (size_t)worker * j->per_worker);
    return PML_OK;
}

/* f32 math: every operand f32 or 16-bit; f64: all f64. */
static int float_type(pml_dtype t) { return t == PML_F32 || pml_cpu_is_half(t); }

/* The calls' operands fit: attention's q, k, v (o, do) of one shape [..., n, d] and an
 * output of it ([3, ...] for the gradients); attention_qkv's qkv [..., n, 3C] with
 * heads dividing C, out and dout [..., n, C], its output [..., n, C] or qkv's shape.
 * Sets j's n, d, mats and heads. */
static pml_status att_shapes(att_job *j, pml_err *err)
{
    const pml_op_call *c = j->c;
    const char *name = pml_op_name(c->op);
    const pml_view *q = &c->in[0], *o = &c->out;
    pml_dtype t = q->dtype;
    char s1[160], s2[160];
    int qkv = c->op == PML_OP_ATTENTION_QKV || c->op == PML_OP_ATTENTION_QKV_GRAD, r = q->rank;
    if (q->rank < 2)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: %s must be [..., T, %s], not %s", name, qkv ? "qkv" : "q",
                           qkv ? "3 heads d" : "d", pml_cpu_shape_str(q, s1, sizeof s1));
    int64_t w = q->dims[r - 1];
    if (qkv && (c->n_attr < 2 || c->attr[1] < 1 || w % (3 * c->attr[1])))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: qkv %s does not split into 3 x %lld heads", name,
                           pml_cpu_shape_str(q, s2, sizeof s2), (long long)(c->n_attr < 2 ? 0 : c->attr[1]));
    j->heads = qkv ? c->attr[1] : 0;
    j->n = q->dims[r - 2];
    j->d = qkv ? w / (3 * j->heads) : w;
    for (int k = 1; k < c->n_in; k++) {
        const pml_view *x = &c->in[k];
        int ok = (t == PML_F64 ? x->dtype == t : float_type(x->dtype)) && x->rank == r;
        for (int a = 0; ok && a < r; a++) ok = x->dims[a] == (qkv && a == r - 1 ? w / 3 : q->dims[a]);
        if (!ok)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: input %d is %s %s, %s %s %s", name, k,
                               pml_dtype_name(x->dtype), pml_cpu_shape_str(x, s1, sizeof s1), qkv ? "qkv" : "q",
                               pml_dtype_name(t), pml_cpu_shape_str(q, s2, sizeof s2));
    }
    int stacked = j->grad && !qkv;
    int ok = (t == PML_F64 ? o->dtype == t : float_type(o->dtype)) && o->rank == r + stacked &&
             (!stacked || o->dims[0] == 3);
    for (int a = 0; ok && a < r; a++) ok = o->dims[a + stacked] == (qkv && !j->grad && a == r - 1 ? w / 3 : q->dims[a]);
    if (!ok)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: output %s does not fit %s %s", name,
                           pml_cpu_shape_str(o, s1, sizeof s1), qkv ? "qkv" : "q", pml_cpu_shape_str(q, s2, sizeof s2));
    j->mats = j->n && j->d ? pml_cpu_numel(q) / (qkv ? 3 : 1) / (j->n * j->d) : 0;
    return PML_OK;
}

pml_status pml_cpu_attention(const pml_op_call *c, pml_err *err)
{
    const char *name = pml_op_name(c->op);
    pml_dtype t = c->in[0].dtype;
    if (t != PML_F64 && !float_type(t)) return pml_cpu_unsupported(c, t, err);
    if (c->n_attr < 1 || (c->attr[0] != 0 && c->attr[0] != 1))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: attr[0] (causal) must be 0 or 1", name);
    att_job j = {.c = c, .wide = t == PML_F64};
    j.grad = c->op == PML_OP_ATTENTION_GRAD || c->op == PML_OP_ATTENTION_QKV_GRAD;
    j.n_in = j.grad ? 5 : 3;
    pml_status st = att_shapes(&j, err);
    if (st || !j.mats) return st;
    if (c->n_attr >= 4) { /* dropout on the weights: p in (0, 1) */
        double p = pml_attention_dropout(c->attr, c->n_attr);
        if (p <= 0)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: attr[3] is not a dropout probability in (0, 1)", name);
        if (!c->dropout_off) j.drop = (att_drop){p, c->seed, (uint64_t)c->attr[2], 0, j.n};
    }
    /* Below the split threshold the caller runs every matrix: waking workers costs more. */
    double macs = (double)j.mats * (double)j.n * (double)j.n * (double)j.d * (j.grad ? 5 : 2);
    pml_cpu_pool *pool = j.mats > 1 && macs >= PML_CPU_POOL_SPLIT_MACS ? c->pool : NULL;
    int workers = pml_cpu_pool_threads(pool);
    size_t esz = j.wide ? sizeof(double) : sizeof(float), copies = 0;
    for (int k = 0; k < c->n_in; k++) copies += pml_cpu_is_half(c->in[k].dtype);
    if (pml_cpu_is_half(c->out.dtype)) copies += j.grad ? 3 : 1;
    if (j.heads) copies = (size_t)j.n_in + (j.grad ? 3 : 1); /* every operand may be copied off its packed rows */
    j.kernel = scratch_elems(j.n, j.d);
    size_t elems = j.kernel + copies * (size_t)(j.n * j.d);
    j.per_worker = (elems * esz + 63) / 64 * 64 / esz; /* each worker's part 64-byte aligned */
    j.scratch = aligned_alloc(64, j.per_worker * esz * (size_t)workers);
    if (!j.scratch) return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory for scratch", name);
    st = pml_cpu_pool_run(pool, j.mats, att_run, &j, err);
    free(j.scratch);
    return st;
}
