/* test_attention_qkv.c — attention on the packed qkv product (attention_qkv) and its
 * backward against attention on the heads' permuted copies, the form the stdlib wrote
 * before the op existed: the same bits, forward and backward, with the forward's kept
 * log-sum-exps too, with dropout on the weights too (the same mask: matrices in the
 * same order), in every float type, on odd shapes and pools; operands that do not
 * split into the heads refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/pool.h"
#include "cpu_test.h"
#include "cpu_tests.h"

/* A case: L leading matrices (the product of lead[]), n rows, heads of d columns. */
typedef struct qkv_case {
    int rank_lead;
    int64_t lead[2], L, n, heads, d;
} qkv_case;

/* Element (l, r, part, h, j) of a packed [L..., n, parts · heads · d] tensor. */
static int64_t packed_at(const qkv_case *k, int parts, int64_t l, int64_t r, int part, int64_t h, int64_t j)
{
    int64_t C = k->heads * k->d;
    return (l * k->n + r) * parts * C + part * C + h * k->d + j;
}

/* Element (l, h, r, j) of an unpacked [L..., heads, n, d] tensor, part p of a stack. */
static int64_t split_at(const qkv_case *k, int part, int64_t l, int64_t h, int64_t r, int64_t j)
{
    return (((part * k->L + l) * k->heads + h) * k->n + r) * k->d + j;
}

/* Copies between packed (parts columns blocks) and unpacked (parts stacked) layouts. */
static void unpack_into(const qkv_case *k, const pml_view *packed, int parts, pml_view *const *split, int to_packed)
{
    for (int p = 0; p < parts; p++)
        for (int64_t l = 0; l < k->L; l++)
            for (int64_t h = 0; h < k->heads; h++)
                for (int64_t r = 0; r < k->n; r++)
                    for (int64_t j = 0; j < k->d; j++) {
                        int64_t a = packed_at(k, parts, l, r, p, h, j), b = split_at(k, 0, l, h, r, j);
                        if (to_packed)
                            t_set((pml_view *)packed, a, t_get(split[p], b));
                        else
                            t_set(split[p], b, t_get(packed, a));
                    }
}

static pml_view make(const qkv_case *k, pml_dtype t, int64_t stack, int packed_cols)
{
    int64_t dims[6];
    int r = 0;
    if (stack) dims[r++] = stack;
    for (int i = 0; i < k->rank_lead; i++) dims[r++] = k->lead[i];
    if (packed_cols) {
        dims[r++] = k->n, dims[r++] = packed_cols;
    } else {
        dims[r++] = k->heads, dims[r++] = k->n, dims[r++] = k->d;
    }
    pml_view v = t_new(t, r, dims);
    for (int64_t i = 0; i < t_numel(&v); i++) t_set(&v, i, NAN);
    return v;
}

/* Runs op with attributes [causal, heads, key, p]: attention's with heads 0 (and only
 * [causal] without dropout), attention_qkv's as given (only [causal, heads] without). */
static pml_status run(pml_opcode op, pml_view *in, int n_in, pml_view *out, const int64_t *attr, double scale,
                      pml_cpu_pool *pool, float *lse, pml_err *err)
{
    int packed = op == PML_OP_ATTENTION_QKV || op == PML_OP_ATTENTION_QKV_GRAD;
    int64_t a[4] = {attr[0], packed ? attr[1] : 0, attr[2], attr[3]};
    pml_op_call c = {0};
    c.op = op, c.attr = a, c.n_attr = attr[3] ? 4 : packed ? 2 : 1;
    c.fval = scale, c.n_in = n_in, c.in = in, c.out = *out, c.pool = pool, c.lse = lse, c.seed = 77;
    return pml_cpu_run(&c, err);
}

static int same_bits(const pml_view *a, const pml_view *b)
{
    return !memcmp(a->data, b->data, (size_t)t_numel(a) * pml_dtype_size(a->dtype));
}

/* One case in dtype t: the packed ops against the unpacked ones, on `pool`. */
static void check_case(const qkv_case *k, pml_dtype t, int causal, double dropout, pml_cpu_pool *pool)
{
    int64_t C = k->heads * k->d, attr[4] = {causal, k->heads, 3, dropout > 0 ? pml_attention_dropout_attr(dropout) : 0};
    double scale = 0.2 + 0.01 * (double)k->d;
    pml_dtype gt = t == PML_F64 ? t : PML_F32; /* gradients f32, as the precision table keeps them */
    pml_view qkv = make(k, t, 0, 3 * C), o = make(k, t, 0, C), dout = make(k, t, 0, C), g = make(k, gt, 0, 3 * C);
    pml_view part[3] = {make(k, t, 0, 0), make(k, t, 0, 0), make(k, t, 0, 0)}, so = make(k, t, 0, 0),
             sdo = make(k, t, 0, 0), sg = make(k, gt, 3, 0), want_o = make(k, t, 0, C), want_g = make(k, gt, 0, 3 * C);
    t_fill_rand(&qkv, -2, 2), t_fill_rand(&dout, -1, 1);
    pml_view *parts[3] = {&part[0], &part[1], &part[2]}, *one[1] = {&sdo};
    unpack_into(k, &qkv, 3, parts, 0);
    unpack_into(k, &dout, 1, one, 0);
    pml_err err = {0};
    float *lse = malloc(sizeof(float) * (size_t)(k->L * k->heads * k->n));
    /* unpacked: attention, its output merged into rows; the gradient on the split output */
    pml_view fin[3] = {part[0], part[1], part[2]};
    int ok = run(PML_OP_ATTENTION, fin, 3, &so, attr, scale, pool, NULL, &err) == PML_OK;
    pml_view *outs[1] = {&so}, gparts[3];
    pml_view bin[5] = {part[0], part[1], part[2], so, sdo};
    ok = ok && run(PML_OP_ATTENTION_GRAD, bin, 5, &sg, attr, scale, pool, NULL, &err) == PML_OK;
    TCHECK(ok, "unpacked: %s", err.msg);
    if (ok) {
        unpack_into(k, &want_o, 1, outs, 1);
        int64_t plane = t_numel(&so);
        for (int p = 0; p < 3; p++) {
            gparts[p] = so;
            gparts[p].dtype = gt;
            gparts[p].data = (char *)sg.data + (size_t)(p * plane) * pml_dtype_size(gt);
        }
        pml_view *gp[3] = {&gparts[0], &gparts[1], &gparts[2]};
        unpack_into(k, &want_g, 3, gp, 1);
    }
    /* packed, with the forward's log-sum-exps kept and without */
    for (int kept = 0; ok && kept < 2; kept++) {
        pml_view x = qkv;
        TCHECK(run(PML_OP_ATTENTION_QKV, &x, 1, &o, attr, scale, pool, kept ? lse : NULL, &err) == PML_OK,
               "attention_qkv: %s", err.msg);
        pml_view gin[3] = {qkv, o, dout};
        for (int64_t i = 0; i < t_numel(&g); i++) t_set(&g, i, NAN);
        TCHECK(run(PML_OP_ATTENTION_QKV_GRAD, gin, 3, &g, attr, scale, pool, kept ? lse : NULL, &err) == PML_OK,
               "attention_qkv_grad: %s", err.msg);
        TCHECK(
            same_bits(&o, &want_o) && same_bits(&g, &want_g),
            "%s, %lld leading x %lld rows, %lld heads of %lld, causal %d, dropout %g, lse kept %d: attention_qkv (%s) "
            "or its gradient (%s) is not attention's on the permuted copies",
            pml_dtype_name(t), (long long)k->L, (long long)k->n, (long long)k->heads, (long long)k->d, causal, dropout,
            kept, same_bits(&o, &want_o) ? "same" : "differs", same_bits(&g, &want_g) ? "same" : "differs");
    }
    free(lse);
    t_free(&qkv), t_free(&o), t_free(&dout), t_free(&g), t_free(&so), t_free(&sdo), t_free(&sg);
    t_free(&want_o), t_free(&want_g);
    for (int p = 0; p < 3; p++) t_free(&part[p]);
}

void test_attention_qkv_gives_attention_on_the_heads_permuted_copies(void)
{
    static const pml_dtype types[4] = {PML_F32, PML_BF16, PML_F16, PML_F64};
    static const int64_t rows[5] = {1, 17, 64, 65, 130}, widths[4] = {1, 5, 16, 32}, heads[3] = {1, 3, 4};
    pml_cpu_pool *pool = NULL;
    pml_err err = {0};
    TCHECK(pml_cpu_pool_create(3, &pool, &err) == PML_OK, "pool: %s", err.msg);
    for (int trial = 0; trial < 24; trial++) {
        qkv_case k = {trial % 3, {2, 3}, 1, rows[trial % 5], heads[trial % 3], widths[trial % 4]};
        for (int i = 0; i < k.rank_lead; i++) k.L *= k.lead[i];
        check_case(&k, types[trial % 4], trial % 5 != 2, trial % 7 < 3 ? 0.25 : 0, trial % 2 ? pool : NULL);
    }
    pml_cpu_pool_destroy(pool);
}

void test_attention_qkv_refuses_columns_that_do_not_split_into_the_heads(void)
{
    int64_t dims[3] = {2, 5, 12}, half[3] = {2, 5, 4}, other[3] = {2, 6, 4}, attr[4] = {1, 3, 0, 0};
    pml_view qkv = t_new(PML_F32, 3, dims), o = t_new(PML_F32, 3, half), bad = t_new(PML_F32, 3, other);
    t_fill_rand(&qkv, -1, 1), t_fill_rand(&o, -1, 1);
    pml_err err = {0};
    pml_view x = qkv;
    TCHECK(run(PML_OP_ATTENTION_QKV, &x, 1, &o, attr, 1, NULL, NULL, &err) == PML_ERR_INVALID_ARG &&
               strstr(err.msg, "3 x 3 heads"),
           "12 columns into 3 x 3 heads: %s", err.msg);
    attr[1] = 2;
    TCHECK(run(PML_OP_ATTENTION_QKV, &x, 1, &bad, attr, 1, NULL, NULL, &err) == PML_ERR_INVALID_ARG &&
               strstr(err.msg, "does not fit"),
           "an output of 6 rows: %s", err.msg);
    pml_view gin[3] = {qkv, bad, o}, g = t_new(PML_F32, 3, dims);
    TCHECK(run(PML_OP_ATTENTION_QKV_GRAD, gin, 3, &g, attr, 1, NULL, NULL, &err) == PML_ERR_INVALID_ARG &&
               strstr(err.msg, "input 1"),
           "an output of 6 rows given to the gradient: %s", err.msg);
    t_free(&qkv), t_free(&o), t_free(&bad), t_free(&g);
}
