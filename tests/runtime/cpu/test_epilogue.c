/* test_epilogue.c — a matmul with a bias (cpu/lower.h's folded bias add: a third
 * input, one value per column) gives the bits of the matmul followed by the broadcast
 * add it replaces, on every path the kernel takes: the panel GEMM (b in place or
 * packed, k across its blocks), the BLAS with the bias added after it, a batch folded
 * into the rows and batched products; on odd shapes (1, 7, 33 rows; widths that leave
 * partial panels), with the output poisoned with NaN first, so a value the epilogue
 * forgot to write shows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/gemm.h"
#include "cpu/pool.h"
#include "cpu_test.h"
#include "cpu_tests.h"

/* out = a b (+ bias with `with_bias`), b read as panels when `panels` is set. */
static int run_matmul(const pml_view *a, const pml_view *b, const pml_view *bias, pml_view *out, int tb,
                      pml_cpu_gemm_panels panels)
{
    pml_view in[3] = {*a, *b, bias ? *bias : (pml_view){0}};
    pml_op_call c = {.op = PML_OP_MATMUL, .n_in = bias ? 3 : 2, .in = in, .out = *out, .threads = 1};
    c.trans[1] = (uint8_t)tb;
    c.panels_b = panels;
    pml_err err = {0};
    pml_status s = pml_cpu_run(&c, &err);
    TCHECK(s == PML_OK, "matmul with a bias failed: %s", err.msg);
    return s == PML_OK;
}

static void poison(pml_view *v)
{
    for (int64_t i = 0; i < t_numel(v); i++) ((float *)v->data)[i] = NAN;
}

/* One case: a [lead.., m, k] times b (k x n, or n x k with tb; [batch, ...] when
 * batched), against matmul then add on the same inputs. */
static void check_case(int64_t lead, int batched, int64_t m, int64_t k, int64_t n, int tb, int path)
{
    int64_t da[3] = {lead, m, k}, db[3] = {lead, tb ? n : k, tb ? k : n}, dout[3] = {lead, m, n}, dbias[1] = {n};
    int r = lead > 1 ? 3 : 2;
    pml_view a = t_new(PML_F32, r, lead > 1 ? da : da + 1), b = t_new(PML_F32, batched ? 3 : 2, batched ? db : db + 1);
    pml_view bias = t_new(PML_F32, 1, dbias), prod = t_new(PML_F32, r, lead > 1 ? dout : dout + 1);
    pml_view want = t_new(PML_F32, prod.rank, prod.dims), got = t_new(PML_F32, prod.rank, prod.dims);
    t_fill_rand(&a, -1, 1), t_fill_rand(&b, -1, 1), t_fill_rand(&bias, -2, 2);
    /* path 0: the BLAS; 1: the panel GEMM reading b in place (tb = 0) or packed */
    pml_cpu_gemm_panels panels = {0};
    float *packed = NULL;
    if (path == 1) {
        packed = malloc(sizeof(float) * pml_cpu_gemm_packed_floats(k, n));
        pml_cpu_gemm_pack_b(tb, k, n, b.data, tb ? k : n, packed);
        panels = tb ? pml_cpu_gemm_packed(packed, k) : pml_cpu_gemm_in_place(b.data, n);
    }
    poison(&prod), poison(&want), poison(&got);
    pml_view add_in[2] = {prod, bias};
    int ok = run_matmul(&a, &b, NULL, &prod, tb, panels) && t_run_ok(PML_OP_ADD, add_in, 2, &want, NULL, 0, 0) &&
             run_matmul(&a, &b, &bias, &got, tb, panels);
    if (ok)
        TCHECK(memcmp(got.data, want.data, sizeof(float) * (size_t)t_numel(&got)) == 0,
               "%s x %s%s + bias by %s: not the bits of matmul then add", t_dims_str(a.rank, a.dims),
               t_dims_str(b.rank, b.dims), tb ? "^T" : "", path ? "the panel GEMM" : "the BLAS");
    free(packed);
    t_free(&a), t_free(&b), t_free(&bias), t_free(&prod), t_free(&want), t_free(&got);
}

void test_matmul_bias_epilogue_equals_matmul_then_add(void)
{
    static const int64_t rows[] = {1, 7, 33}, widths[] = {5, 33, 130}, depths[] = {3, 17, 300};
    int paths = pml_cpu_gemm_packed_available() ? 2 : 1;
    if (paths == 1) printf("note: no AVX-512F here, so no panel GEMM to check\n");
    for (int ri = 0; ri < 3; ri++)
        for (int wi = 0; wi < 3; wi++)
            for (int ki = 0; ki < 3; ki++)
                for (int tb = 0; tb < 2; tb++)
                    for (int path = 0; path < paths; path++) {
                        check_case(1, 0, rows[ri], depths[ki], widths[wi], tb, path);
                        check_case(3, 0, rows[ri], depths[ki], widths[wi], tb, path); /* batch folded into rows */
                    }
    for (int tb = 0; tb < 2; tb++) check_case(3, 1, 7, 17, 33, tb, 0); /* one product per batch */
}

/* A bias of another width than the product's columns is refused, not read past. */
void test_matmul_bias_of_the_wrong_width_is_refused(void)
{
    int64_t da[2] = {3, 4}, db[2] = {4, 5}, dbias[1] = {4};
    pml_view a = t_new(PML_F32, 2, da), b = t_new(PML_F32, 2, db), bias = t_new(PML_F32, 1, dbias);
    int64_t dout[2] = {3, 5};
    pml_view out = t_new(PML_F32, 2, dout);
    pml_view in[3] = {a, b, bias};
    pml_err err = {0};
    pml_status s = t_run(PML_OP_MATMUL, in, 3, &out, NULL, 0, 0, &err);
    TCHECK(s == PML_ERR_INVALID_ARG && strstr(err.msg, "bias"), "wrong-width bias: status %d, %s", (int)s, err.msg);
    t_free(&a), t_free(&b), t_free(&bias), t_free(&out);
}

/* The panel GEMM split over a stage's pool (by blocks of panels of columns, or by
 * blocks of rows for many rows or a product narrower than a panel per thread) gives the bits of the same product on
 * the calling thread alone, with and without a bias, accumulating or not, at 2 and 3
 * threads: every element is one FMA chain whichever thread computes it. */
void test_panel_gemm_split_over_a_pool_gives_the_same_bits(void)
{
    if (!pml_cpu_gemm_packed_available()) {
        printf("note: no AVX-512F here, so no panel GEMM to split\n");
        return;
    }
    /* m, k, n: a wide layer (column blocks), a head of 16 columns (row blocks), odd sizes,
     * many rows (blocks of PML_CPU_GEMM_MC rows, the last one short; a partial panel),
     * a block of rows a thread or more (blocks of rows in blocks of panels: 2 or 3 row
     * blocks, partial panels) */
    static const int64_t shapes[][3] = {{64, 256, 1024}, {512, 128, 16}, {33, 300, 130},   {1, 1024, 1024},
                                        {1000, 70, 65},  {777, 40, 100}, {300, 200, 520}, {400, 96, 200}};
    for (int threads = 2; threads <= 3; threads++) {
        pml_cpu_pool *pool = NULL;
        pml_err err = {0};
        TCHECK(pml_cpu_pool_create(threads, &pool, &err) == PML_OK, "pool: %s", err.msg);
        if (!pool) return;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int variant = 0; variant < 4; variant++) { /* bit 0: bias; bit 1: accumulate */
                int64_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
                int64_t da[2] = {m, k}, db[2] = {n, k}, dout[2] = {m, n}, dbias[1] = {n};
                pml_view a = t_new(PML_F32, 2, da), b = t_new(PML_F32, 2, db), bias = t_new(PML_F32, 1, dbias);
                pml_view one = t_new(PML_F32, 2, dout), split = t_new(PML_F32, 2, dout);
                t_fill_rand(&a, -1, 1), t_fill_rand(&b, -1, 1), t_fill_rand(&bias, -2, 2), t_fill_rand(&one, -1, 1);
                memcpy(split.data, one.data, sizeof(float) * (size_t)t_numel(&one));
                if (!(variant >> 1)) poison(&split); /* a block no task wrote stays NaN */
                float *packed = malloc(sizeof(float) * pml_cpu_gemm_packed_floats(k, n));
                pml_cpu_gemm_pack_b(1, k, n, b.data, k, packed);
                pml_view in[3] = {a, b, bias};
                pml_op_call c = {.op = PML_OP_MATMUL, .n_in = variant & 1 ? 3 : 2, .in = in, .threads = 1,
                                 .accumulate = (uint8_t)(variant >> 1), .panels_b = pml_cpu_gemm_packed(packed, k)};
                c.trans[1] = 1;
                c.out = one;
                int ok = pml_cpu_run(&c, &err) == PML_OK;
                c.out = split;
                c.pool = pool;
                ok = ok && pml_cpu_run(&c, &err) == PML_OK;
                TCHECK(ok, "matmul failed: %s", err.msg);
                if (ok)
                    TCHECK(memcmp(one.data, split.data, sizeof(float) * (size_t)t_numel(&one)) == 0,
                           "%lld x %lld x %lld (bias %d, accumulate %d) over %d threads: other bits than on one",
                           (long long)m, (long long)k, (long long)n, variant & 1, variant >> 1, threads);
                free(packed);
                t_free(&a), t_free(&b), t_free(&bias), t_free(&one), t_free(&split);
            }
        pml_cpu_pool_destroy(pool);
    }
}

/* The provider's products split over a pool — a weight gradient's one large product
 * (a transposed), a product with no panels, a batch of small ones (attention's) — equal
 * the same call on the caller alone within 1e-6 of their scale: a provider may block a
 * sum by shape, so bits are not promised. */
void test_provider_products_split_over_a_pool_agree_with_one_thread(void)
{
    /* batch, m, k, n, ta, tb */
    static const int64_t cases[][6] = {{1, 512, 512, 512, 1, 0}, {1, 300, 200, 700, 0, 1}, {32, 64, 32, 64, 0, 1},
                                       {3, 40, 100, 24, 0, 0}, {1, 1000, 64, 16, 0, 0}};
    pml_cpu_pool *pool = NULL;
    pml_err err = {0};
    TCHECK(pml_cpu_pool_create(2, &pool, &err) == PML_OK, "pool: %s", err.msg);
    if (!pool) return;
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        int64_t bt = cases[s][0], m = cases[s][1], k = cases[s][2], n = cases[s][3];
        int ta = (int)cases[s][4], tb = (int)cases[s][5];
        int64_t da[3] = {bt, ta ? k : m, ta ? m : k}, db[3] = {bt, tb ? n : k, tb ? k : n}, dout[3] = {bt, m, n};
        pml_view a = t_new(PML_F32, 3, da), b = t_new(PML_F32, 3, db);
        pml_view one = t_new(PML_F32, 3, dout), split = t_new(PML_F32, 3, dout);
        t_fill_rand(&a, -1, 1), t_fill_rand(&b, -1, 1);
        poison(&one), poison(&split);
        pml_view in[2] = {a, b};
        pml_op_call c = {.op = PML_OP_MATMUL, .n_in = 2, .in = in, .threads = 1, .out = one};
        c.trans[0] = (uint8_t)ta, c.trans[1] = (uint8_t)tb;
        int ok = pml_cpu_run(&c, &err) == PML_OK;
        c.out = split;
        c.pool = pool;
        ok = ok && pml_cpu_run(&c, &err) == PML_OK;
        TCHECK(ok, "matmul failed: %s", err.msg);
        double worst = 0, scale = 0;
        for (int64_t i = 0; ok && i < t_numel(&one); i++) {
            double x = ((float *)one.data)[i], y = ((float *)split.data)[i];
            if (fabs(x) > scale) scale = fabs(x);
            if (!(fabs(x - y) <= worst)) worst = isnan(y) ? INFINITY : fabs(x - y);
        }
        if (ok)
            TCHECK(worst <= 1e-6 * scale, "%lld x [%lld x %lld]%s x [%lld x %lld]%s over 2 threads: off by %g of %g",
                   (long long)bt, (long long)m, (long long)k, ta ? "^T" : "", (long long)k, (long long)n,
                   tb ? "^T" : "", worst, scale);
        t_free(&a), t_free(&b), t_free(&one), t_free(&split);
    }
    pml_cpu_pool_destroy(pool);
}
