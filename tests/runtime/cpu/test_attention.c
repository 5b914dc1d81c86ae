/* test_attention.c — the fused attention (attention) and its backward (attention_grad)
 * against a naive double reference of the ops it fuses, on odd shapes, with outputs
 * poisoned first, dropout on the weights too; the same bits at any pool size; operands
 * that do not fit refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "cpu/gemm.h"
#include "cpu/pool.h"
#include "cpu_test.h"
#include "cpu_tests.h"

/* Dropout on the weights as the reference applies it: weight (r, c) of matrix b kept,
 * times 1/(1 - p), where dropout(weights, p) with `key` keeps element b·n·n + r·n + c
 * (cpu/kernels.h); p 0: none. */
typedef struct drop_ref {
    double p;
    uint64_t seed, key;
    int64_t b;
    int f32; /* the kernel's 1/(1 - p) is a float */
} drop_ref;

static double kept(const drop_ref *z, int64_t n, int64_t r, int64_t c)
{
    if (!z || z->p == 0) return 1;
    uint64_t j = (uint64_t)(z->b * n * n + r * n + c);
    double scale = z->f32 ? (double)(float)(1.0 / (1.0 - z->p)) : 1.0 / (1.0 - z->p);
    return (double)pml_rng_uniform_f32(z->seed, z->key, j) >= z->p ? scale : 0;
}

/* One [n, d] matrix triple at offset `at`: o = dropout(softmax(mask(q kᵀ · scale))) v
 * and, from do, the gradients dq, dk, dv, with p, dp and ds made whole in double. */
static void reference(const pml_view *q, const pml_view *k, const pml_view *v, const pml_view *dout, int64_t at,
                      int64_t n, int64_t d, double scale, int causal, const drop_ref *z, double *o, double *dq,
                      double *dk, double *dv)
{
    double *p = calloc((size_t)(n * n), sizeof(double)), *ds = calloc((size_t)(n * n), sizeof(double));
    for (int64_t r = 0; r < n; r++) {
        int64_t cols = causal ? r + 1 : n;
        double m = -INFINITY, sum = 0;
        for (int64_t c = 0; c < cols; c++) {
            double s = 0;
            for (int64_t t = 0; t < d; t++) s += t_get(q, at + r * d + t) * t_get(k, at + c * d + t);
            p[r * n + c] = s * scale;
            m = fmax(m, s * scale);
        }
        for (int64_t c = 0; c < cols; c++) sum += (p[r * n + c] = exp(p[r * n + c] - m));
        for (int64_t c = 0; c < cols; c++) p[r * n + c] /= sum;
        for (int64_t t = 0; t < d; t++) {
            double y = 0;
            for (int64_t c = 0; c < cols; c++) y += p[r * n + c] * kept(z, n, r, c) * t_get(v, at + c * d + t);
            o[r * d + t] = y;
        }
        double rs = 0; /* Σ_c p dp, dp the gradient to the weights before dropout */
        for (int64_t c = 0; c < cols; c++) {
            double dp = 0;
            for (int64_t t = 0; t < d; t++) dp += t_get(dout, at + r * d + t) * t_get(v, at + c * d + t);
            ds[r * n + c] = dp *= kept(z, n, r, c);
            rs += p[r * n + c] * dp;
        }
        for (int64_t c = 0; c < cols; c++) ds[r * n + c] = p[r * n + c] * (ds[r * n + c] - rs);
    }
    for (int64_t x = 0; x < n * d; x++) dq[x] = dk[x] = dv[x] = 0;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < n; c++)
            for (int64_t t = 0; t < d; t++) {
                dq[r * d + t] += ds[r * n + c] * t_get(k, at + c * d + t) * scale;
                dk[c * d + t] += ds[r * n + c] * t_get(q, at + r * d + t) * scale;
                dv[c * d + t] += p[r * n + c] * kept(z, n, r, c) * t_get(dout, at + r * d + t);
            }
    free(p), free(ds);
}

static void poison(pml_view *v)
{
    for (int64_t i = 0; i < t_numel(v); i++) t_set(v, i, NAN);
}

void test_attention_and_its_gradient_match_a_double_reference_on_odd_shapes(void)
{
    static const int64_t lengths[] = {1, 2, 15, 16, 17, 63, 64, 65, 130};
    static const int64_t widths[] = {1, 3, 16, 17, 33};
    for (int ti = 0; ti < 2; ti++)
        for (int trial = 0; trial < 40; trial++) {
            pml_dtype t = t_float_types[ti];
            int64_t n = lengths[trial % 9], d = widths[trial % 5], dims[6], gdims[7];
            int lead = t_int(0, 2), causal = trial % 4 != 3;
            t_rand_dims(lead, dims, 1, 3);
            dims[lead] = n, dims[lead + 1] = d;
            int rank = lead + 2;
            gdims[0] = 3;
            memcpy(gdims + 1, dims, sizeof(int64_t) * (size_t)rank);
            double scale = trial % 2 ? 1 / sqrt((double)d) : t_unit() * 2;
            pml_view q = t_new(t, rank, dims), k = t_new(t, rank, dims), v = t_new(t, rank, dims),
                     dout = t_new(t, rank, dims), o = t_new(t, rank, dims), g = t_new(t, rank + 1, gdims);
            t_fill_rand(&q, -2, 2), t_fill_rand(&k, -2, 2), t_fill_rand(&v, -1, 1), t_fill_rand(&dout, -1, 1);
            int64_t all = t_numel(&q), mats = all / (n * d);
            double *ro = malloc(sizeof(double) * (size_t)all), *rg = malloc(sizeof(double) * (size_t)(3 * all));
            for (int64_t b = 0; b < mats; b++)
                reference(&q, &k, &v, &dout, b * n * d, n, d, scale, causal, NULL, ro + b * n * d, rg + b * n * d,
                          rg + all + b * n * d, rg + 2 * all + b * n * d);
            int64_t attr = causal;
            poison(&o), poison(&g);
            pml_view fin[3] = {q, k, v};
            double tol = t == PML_F32 ? 2e-5 : 1e-12, eps = t == PML_F32 ? 1e-4 : 1e-10;
            if (t_run_ok(PML_OP_ATTENTION, fin, 3, &o, &attr, 1, scale)) {
                TCHECK(t_compare("attention", &o, ro, tol, eps) == 0, "attention of %s %s, causal %d",
                       pml_dtype_name(t), t_dims_str(rank, dims), causal);
                pml_view bin[5] = {q, k, v, o, dout};
                if (t_run_ok(PML_OP_ATTENTION_GRAD, bin, 5, &g, &attr, 1, scale))
                    TCHECK(t_compare("attention_grad", &g, rg, tol, eps) == 0, "attention_grad of %s %s, causal %d",
                           pml_dtype_name(t), t_dims_str(rank, dims), causal);
            }
            free(ro), free(rg);
            t_free(&q), t_free(&k), t_free(&v), t_free(&dout), t_free(&o), t_free(&g);
        }
}

/* Each matrix is one task writing only its own part, so any pool gives the same bits. */
void test_attention_gives_the_same_bits_on_any_pool_size(void)
{
    int64_t dims[4] = {3, 4, 67, 32}, gdims[5] = {3, 3, 4, 67, 32}, attr = 1;
    pml_view in[5], out[2][4];
    for (int i = 0; i < 5; i++) in[i] = t_new(PML_F32, 4, dims), t_fill_rand(&in[i], -2, 2);
    for (int p = 0; p < 4; p++) out[0][p] = t_new(PML_F32, 4, dims), out[1][p] = t_new(PML_F32, 5, gdims);
    for (int p = 0; p < 4; p++) {
        pml_cpu_pool *pool = NULL;
        pml_err err = {0};
        if (p > 0) TCHECK(pml_cpu_pool_create(p + 1, &pool, &err) == PML_OK, "pool: %s", err.msg);
        for (int op = 0; op < 2; op++) {
            pml_op_call c = {0};
            c.op = op ? PML_OP_ATTENTION_GRAD : PML_OP_ATTENTION;
            c.attr = &attr, c.n_attr = 1, c.fval = 0.17;
            c.n_in = op ? 5 : 3, c.in = in;
            c.out = out[op][p];
            c.pool = pool;
            poison(&out[op][p]);
            TCHECK(pml_cpu_run(&c, &err) == PML_OK, "%s: %s", pml_op_name(c.op), err.msg);
            size_t bytes = (size_t)t_numel(&out[op][p]) * sizeof(float);
            if (p > 0)
                TCHECK(memcmp(out[op][p].data, out[op][0].data, bytes) == 0, "%s on %d threads differs from 1",
                       pml_op_name(c.op), p + 1);
        }
        pml_cpu_pool_destroy(pool);
    }
    for (int i = 0; i < 5; i++) t_free(&in[i]);
    for (int p = 0; p < 4; p++) t_free(&out[0][p]), t_free(&out[1][p]);
}

void test_attention_refuses_operands_that_do_not_fit(void)
{
    int64_t a[3] = {2, 5, 4}, b[3] = {2, 6, 4}, g[4] = {2, 2, 5, 4}, attr = 1, two = 2;
    pml_view q = t_new(PML_F32, 3, a), k = t_new(PML_F32, 3, b), o = t_new(PML_F32, 3, a), og = t_new(PML_F32, 4, g);
    t_fill_rand(&q, -1, 1), t_fill_rand(&k, -1, 1);
    pml_err err = {0};
    pml_view in[5] = {q, k, q, q, q};
    TCHECK(t_run(PML_OP_ATTENTION, in, 3, &o, &attr, 1, 1, &err) == PML_ERR_INVALID_ARG && strstr(err.msg, "input 1"),
           "k of another length: %s", err.msg);
    in[1] = q;
    TCHECK(t_run(PML_OP_ATTENTION, in, 3, &o, &two, 1, 1, &err) == PML_ERR_INVALID_ARG && strstr(err.msg, "causal"),
           "causal 2: %s", err.msg);
    TCHECK(t_run(PML_OP_ATTENTION_GRAD, in, 5, &og, &attr, 1, 1, &err) == PML_ERR_INVALID_ARG &&
               strstr(err.msg, "does not fit"),
           "a gradient stacked 2 deep: %s", err.msg);
    t_free(&q), t_free(&k), t_free(&o), t_free(&og);
}

/* Runs op on in[] into out (poisoned first) on a pool of `threads` (1: none). */
static int run_on(pml_opcode op, const pml_view *in, int n_in, pml_view *out, int64_t *attr, double scale, int threads)
{
    pml_cpu_pool *pool = NULL;
    pml_err err = {0};
    if (threads > 1 && pml_cpu_pool_create(threads, &pool, &err) != PML_OK) {
        TCHECK(0, "pool: %s", err.msg);
        return 0;
    }
    pml_op_call c = {0};
    c.op = op, c.attr = attr, c.n_attr = 1, c.fval = scale, c.n_in = n_in, c.in = in, c.out = *out, c.pool = pool;
    poison(out);
    pml_status s = pml_cpu_run(&c, &err);
    TCHECK(s == PML_OK, "%s: %s", pml_op_name(op), err.msg);
    pml_cpu_pool_destroy(pool);
    return s == PML_OK;
}

/* 16-bit operands are widened one matrix at a time inside the kernel and a 16-bit output
 * rounded once: the bits of the f32 kernel on the widened tensors, rounded, forward and
 * backward, for bf16 and f16, with the mixes the precision table makes (a 16-bit
 * forward, an f32 gradient of 16-bit q, k, v, o and an f32 do), on odd shapes, causal or
 * not, on 1 and 3 threads. */
void test_attention_of_16_bit_operands_is_the_f32_result_rounded(void)
{
    static const pml_dtype halves[2] = {PML_BF16, PML_F16};
    static const int64_t shapes[3][3] = {{3, 21, 17}, {2, 65, 32}, {5, 130, 3}};
    for (int h = 0; h < 2; h++)
        for (int sh = 0; sh < 3; sh++)
            for (int causal = 0; causal < 2; causal++) {
                const int64_t *dims = shapes[sh];
                int64_t gdims[4] = {3, dims[0], dims[1], dims[2]}, attr = causal;
                pml_dtype ht = halves[h];
                int threads = 1 + 2 * (sh % 2 ^ causal);
                double scale = 0.3 + 0.1 * sh;
                /* q, k, v, o, do: 16-bit and the same values in f32 (do f32 in both: it is
                 * the gradient's f32 input, and 16-bit in the all-16-bit mix below) */
                pml_view in16[5], in32[5];
                for (int i = 0; i < 5; i++) {
                    in16[i] = t_new(ht, 3, dims), in32[i] = t_new(PML_F32, 3, dims);
                    t_fill_rand(&in16[i], -2, 2);
                    for (int64_t x = 0; x < t_numel(&in16[i]); x++) t_set(&in32[i], x, t_get(&in16[i], x));
                }
                pml_view o16 = t_new(ht, 3, dims), o32 = t_new(PML_F32, 3, dims), want = t_new(ht, 3, dims);
                pml_view g32 = t_new(PML_F32, 4, gdims), g = t_new(PML_F32, 4, gdims), g16 = t_new(ht, 4, gdims),
                         gwant = t_new(ht, 4, gdims);
                if (run_on(PML_OP_ATTENTION, in32, 3, &o32, &attr, scale, 1) &&
                    run_on(PML_OP_ATTENTION, in16, 3, &o16, &attr, scale, threads)) {
                    for (int64_t x = 0; x < t_numel(&o32); x++) t_set(&want, x, t_get(&o32, x));
                    TCHECK(memcmp(o16.data, want.data, (size_t)t_numel(&o16) * 2) == 0,
                           "attention of %s [%lld, %lld, %lld], causal %d: not the f32 result rounded",
                           pml_dtype_name(ht), (long long)dims[0], (long long)dims[1], (long long)dims[2], causal);
                }
                /* the gradient: f32 out of 16-bit q, k, v, o and an f32 do */
                pml_view mix[5] = {in16[0], in16[1], in16[2], in16[3], in32[4]};
                if (run_on(PML_OP_ATTENTION_GRAD, in32, 5, &g32, &attr, scale, 1) &&
                    run_on(PML_OP_ATTENTION_GRAD, mix, 5, &g, &attr, scale, threads))
                    TCHECK(memcmp(g.data, g32.data, (size_t)t_numel(&g) * 4) == 0,
                           "attention_grad of %s operands, f32 do: not the f32 result", pml_dtype_name(ht));
                /* every operand and the output 16-bit */
                pml_view all16[5] = {in16[0], in16[1], in16[2], in16[3], in16[4]};
                for (int64_t x = 0; x < t_numel(&in16[4]); x++) t_set(&in32[4], x, t_get(&in16[4], x));
                if (run_on(PML_OP_ATTENTION_GRAD, in32, 5, &g32, &attr, scale, 1) &&
                    run_on(PML_OP_ATTENTION_GRAD, all16, 5, &g16, &attr, scale, threads)) {
                    for (int64_t x = 0; x < t_numel(&g32); x++) t_set(&gwant, x, t_get(&g32, x));
                    TCHECK(memcmp(g16.data, gwant.data, (size_t)t_numel(&g16) * 2) == 0,
                           "attention_grad all %s: not the f32 result rounded", pml_dtype_name(ht));
                }
                for (int i = 0; i < 5; i++) t_free(&in16[i]), t_free(&in32[i]);
                t_free(&o16), t_free(&o32), t_free(&want), t_free(&g32), t_free(&g), t_free(&g16), t_free(&gwant);
            }
}

/* The rows' log-sum-exps the forward keeps (pml_op_call's lse, as the CPU backend
 * passes in training) give the backward the bits it gives recomputing them, and the
 * forward's output is the same: one key tile and several, causal or not, f32 and bf16
 * operands, on 1 and 3 threads. Where they are kept (the panel-GEMM path), the backward
 * reads them: kept values moved by 1 give other gradients. */
void test_attention_kept_log_sum_exps_give_the_recomputed_bits(void)
{
    static const int64_t shapes[3][4] = {{2, 2, 64, 16}, {3, 4, 67, 32}, {2, 3, 130, 8}};
    for (int sh = 0; sh < 3; sh++)
        for (int causal = 0; causal < 2; causal++)
            for (int half = 0; half < 2; half++) {
                const int64_t *dims = shapes[sh];
                int64_t gdims[5] = {3, dims[0], dims[1], dims[2], dims[3]}, attr = causal;
                pml_dtype t = half ? PML_BF16 : PML_F32;
                int threads = 1 + 2 * (sh % 2 ^ causal), rows = (int)(dims[0] * dims[1] * dims[2]);
                pml_cpu_pool *pool = NULL;
                pml_err err = {0};
                if (threads > 1) TCHECK(pml_cpu_pool_create(threads, &pool, &err) == PML_OK, "pool: %s", err.msg);
                pml_view in[5], o[2] = {t_new(t, 4, dims), t_new(t, 4, dims)};
                pml_view g[3] = {t_new(PML_F32, 5, gdims), t_new(PML_F32, 5, gdims), t_new(PML_F32, 5, gdims)};
                for (int i = 0; i < 5; i++) in[i] = t_new(t, 4, dims), t_fill_rand(&in[i], -2, 2);
                float *lse = malloc(sizeof(float) * (size_t)rows);
                for (int i = 0; i < rows; i++) lse[i] = NAN;
                for (int kept = 0; kept < 2; kept++) { /* the forward, then its gradient */
                    pml_op_call c = {0};
                    c.op = PML_OP_ATTENTION, c.attr = &attr, c.n_attr = 1, c.fval = 0.21, c.n_in = 3, c.in = in;
                    c.out = o[kept], c.pool = pool, c.lse = kept ? lse : NULL;
                    poison(&o[kept]);
                    TCHECK(pml_cpu_run(&c, &err) == PML_OK, "attention: %s", err.msg);
                    pml_view gin[5] = {in[0], in[1], in[2], o[kept], in[4]};
                    c.op = PML_OP_ATTENTION_GRAD, c.n_in = 5, c.in = gin, c.out = g[kept];
                    poison(&g[kept]);
                    TCHECK(pml_cpu_run(&c, &err) == PML_OK, "attention_grad: %s", err.msg);
                }
                size_t ob = (size_t)t_numel(&o[0]) * pml_dtype_size(t), gb = (size_t)t_numel(&g[0]) * sizeof(float);
                TCHECK(!memcmp(o[0].data, o[1].data, ob) && !memcmp(g[0].data, g[1].data, gb),
                       "[%lld, %lld, %lld, %lld] %s, causal %d: kept log-sum-exps change the bits", (long long)dims[0],
                       (long long)dims[1], (long long)dims[2], (long long)dims[3], pml_dtype_name(t), causal);
                if (pml_cpu_gemm_packed_available()) {
                    int finite = 1;
                    for (int i = 0; i < rows; i++) finite &= isfinite(lse[i]), lse[i] += 1;
                    TCHECK(finite, "the forward keeps every row's log-sum-exp");
                    pml_view gin[5] = {in[0], in[1], in[2], o[1], in[4]};
                    pml_op_call c = {0};
                    c.op = PML_OP_ATTENTION_GRAD, c.attr = &attr, c.n_attr = 1, c.fval = 0.21, c.n_in = 5, c.in = gin;
                    c.out = g[2], c.pool = pool, c.lse = lse;
                    TCHECK(pml_cpu_run(&c, &err) == PML_OK, "attention_grad: %s", err.msg);
                    TCHECK(memcmp(g[2].data, g[0].data, gb), "the backward reads the kept log-sum-exps");
                }
                free(lse);
                for (int i = 0; i < 5; i++) t_free(&in[i]);
                t_free(&o[0]), t_free(&o[1]), t_free(&g[0]), t_free(&g[1]), t_free(&g[2]);
                pml_cpu_pool_destroy(pool);
            }
}

/* A NaN in one query row makes that row's output NaN (its scores are NaN: the max passes
 * over them, their exps do not) and leaves every other row finite. */
void test_attention_keeps_a_nan_query_row_nan_and_the_others_finite(void)
{
    int64_t dims[2] = {37, 5}, attr = 1;
    pml_view in[3], o = t_new(PML_F32, 2, dims);
    for (int i = 0; i < 3; i++) in[i] = t_new(PML_F32, 2, dims), t_fill_rand(&in[i], -1, 1);
    t_set(&in[0], 20 * 5 + 2, NAN);
    if (t_run_ok(PML_OP_ATTENTION, in, 3, &o, &attr, 1, 0.5))
        for (int64_t r = 0; r < 37; r++)
            for (int64_t t = 0; t < 5; t++) {
                double y = t_get(&o, r * 5 + t);
                TCHECK(r == 20 ? isnan(y) : isfinite(y), "row %lld, column %lld: %g", (long long)r, (long long)t, y);
            }
    for (int i = 0; i < 3; i++) t_free(&in[i]);
    t_free(&o);
}

/* Runs op with attention's attributes and dropout p (key 5), `off` its dropout_off. */
static int run_dropout(pml_opcode op, const pml_view *in, int n_in, pml_view *out, int causal, double p, uint64_t seed,
                       int off)
{
    int64_t attr[4] = {causal, 0, 5, pml_attention_dropout_attr(p)};
    pml_op_call c = {0};
    c.op = op, c.attr = attr, c.n_attr = p > 0 ? 4 : 1, c.fval = 0.4, c.n_in = n_in, c.in = in, c.out = *out;
    c.seed = seed, c.dropout_off = (uint8_t)off;
    poison(out);
    pml_err err = {0};
    pml_status s = pml_cpu_run(&c, &err);
    TCHECK(s == PML_OK, "%s: %s", pml_op_name(op), err.msg);
    return s == PML_OK;
}

/* Dropout on the attention weights drops, in the forward and in every gradient, the
 * weights dropout(weights, p) with the op's key would drop (a double reference given
 * that mask), at p 0.1 and 0.5, f32 and f64, on odd shapes, causal or not; with
 * dropout_off (evaluation, serving) the op gives its bits without dropout; and a
 * p outside (0, 1) in the attributes is refused. */
void test_attention_dropout_drops_the_weights_dropout_would_drop(void)
{
    static const int64_t lengths[] = {1, 17, 64, 65, 130}, widths[] = {3, 16, 32};
    for (int trial = 0; trial < 12; trial++) {
        pml_dtype t = t_float_types[trial % 2];
        int64_t n = lengths[trial % 5], d = widths[trial % 3], dims[3] = {2, n, d}, gdims[4] = {3, 2, n, d};
        int causal = trial % 4 != 1;
        double p = trial % 3 ? 0.1 : 0.5;
        uint64_t seed = 1000 + (uint64_t)trial;
        pml_view in[5], o = t_new(t, 3, dims), g = t_new(t, 4, gdims), o0 = t_new(t, 3, dims), o1 = t_new(t, 3, dims);
        for (int i = 0; i < 5; i++) in[i] = t_new(t, 3, dims), t_fill_rand(&in[i], -2, 2);
        double *ro = malloc(sizeof(double) * (size_t)(2 * n * d)), *rg = malloc(sizeof(double) * (size_t)(6 * n * d));
        for (int64_t b = 0; b < 2; b++) {
            drop_ref z = {p, seed, 5, b, t == PML_F32};
            reference(&in[0], &in[1], &in[2], &in[4], b * n * d, n, d, 0.4, causal, &z, ro + b * n * d, rg + b * n * d,
                      rg + 2 * n * d + b * n * d, rg + 4 * n * d + b * n * d);
        }
        double tol = t == PML_F32 ? 2e-5 : 1e-12, eps = t == PML_F32 ? 1e-4 : 1e-10;
        if (run_dropout(PML_OP_ATTENTION, in, 3, &o, causal, p, seed, 0)) {
            TCHECK(t_compare("attention with dropout", &o, ro, tol, eps) == 0, "%s [2, %lld, %lld], p %g, causal %d",
                   pml_dtype_name(t), (long long)n, (long long)d, p, causal);
            pml_view bin[5] = {in[0], in[1], in[2], o, in[4]};
            if (run_dropout(PML_OP_ATTENTION_GRAD, bin, 5, &g, causal, p, seed, 0))
                TCHECK(t_compare("attention_grad with dropout", &g, rg, tol, eps) == 0,
                       "%s [2, %lld, %lld], p %g, causal %d", pml_dtype_name(t), (long long)n, (long long)d, p, causal);
        }
        if (run_dropout(PML_OP_ATTENTION, in, 3, &o0, causal, 0, seed, 0) &&
            run_dropout(PML_OP_ATTENTION, in, 3, &o1, causal, p, seed, 1))
            TCHECK(!memcmp(o0.data, o1.data, (size_t)t_numel(&o0) * pml_dtype_size(t)),
                   "dropout_off gives attention's bits without dropout");
        free(ro), free(rg);
        for (int i = 0; i < 5; i++) t_free(&in[i]);
        t_free(&o), t_free(&g), t_free(&o0), t_free(&o1);
    }
    int64_t dims[2] = {5, 4}, attr[4] = {1, 0, 5, pml_attention_dropout_attr(1.5)};
    pml_view in[3], o = t_new(PML_F32, 2, dims);
    for (int i = 0; i < 3; i++) in[i] = t_new(PML_F32, 2, dims), t_fill_rand(&in[i], -1, 1);
    pml_err err = {0};
    TCHECK(t_run(PML_OP_ATTENTION, in, 3, &o, attr, 4, 0.5, &err) == PML_ERR_INVALID_ARG && strstr(err.msg, "attr[3]"),
           "a dropout probability of 1.5: %s", err.msg);
    for (int i = 0; i < 3; i++) t_free(&in[i]);
    t_free(&o);
}
