/* test_index_matmul.c — gather, pick, scatter_add and unpick, index errors, batched
 * matmul against a naive product, BLAS against the C GEMM, and refusals. */
#include <cpuid.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/gemm.h"
#include "cpu/gemm_int8.h"
#include "cpu_test.h"
#include "cpu_tests.h"

void test_gather_pick_scatter_add_unpick_match_reference(void)
{
    for (int ti = 0; ti < 2; ti++)
        for (int trial = 0; trial < 30; trial++) {
            pml_dtype t = t_float_types[ti];
            int ri = trial == 0 ? 0 : trial == 1 ? 5 : t_int(1, 3); /* rank of the indices */
            int64_t di[8], dx[8], dt[2] = {t_int(1, 12), t_int(trial == 2 ? 0 : 1, 7)};
            t_rand_dims(ri, di, trial == 3 ? 0 : 1, ri == 5 ? 3 : 5);
            int64_t V = t_int(1, 9);
            memcpy(dx, di, sizeof di);
            pml_view idx = t_new(PML_I32, ri, di);
            int64_t rows = t_numel(&idx);

            /* gather: table[N, C], idx -> [..., C]; scatter_add back */
            t_fill_rand(&idx, 0, (double)dt[0] - 1);
            dx[ri] = dt[1];
            pml_view table = t_new(t, 2, dt), g = t_new(t, ri + 1, dx), sa = t_new(t, 2, dt);
            t_fill_rand(&table, -5, 5);
            double *ref = malloc(sizeof(double) * (size_t)(rows * (dt[1] + V) + dt[0] * dt[1] + 1));
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < dt[1]; c++)
                    ref[r * dt[1] + c] = t_get(&table, (int64_t)t_get(&idx, r) * dt[1] + c);
            pml_view gin[2] = {table, idx};
            if (t_run_ok(PML_OP_GATHER, gin, 2, &g, NULL, 0, 0)) t_compare("gather", &g, ref, 0, 0);
            for (int64_t i = 0; i < dt[0] * dt[1]; i++) ref[i] = 0;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < dt[1]; c++)
                    ref[(int64_t)t_get(&idx, r) * dt[1] + c] += t_get(&g, r * dt[1] + c);
            pml_view sin[2] = {g, idx};
            if (t_run_ok(PML_OP_SCATTER_ADD, sin, 2, &sa, NULL, 0, 0)) t_compare_default("scatter_add", &sa, ref);

            /* pick: x[..., V], idx -> [...]; unpick back */
            t_fill_rand(&idx, 0, (double)V - 1);
            dx[ri] = V;
            pml_view x = t_new(t, ri + 1, dx), p = t_new(t, ri, di), u = t_new(t, ri + 1, dx);
            t_fill_rand(&x, -5, 5);
            for (int64_t r = 0; r < rows; r++) ref[r] = t_get(&x, r * V + (int64_t)t_get(&idx, r));
            pml_view pin[2] = {x, idx};
            if (t_run_ok(PML_OP_PICK, pin, 2, &p, NULL, 0, 0)) t_compare("pick", &p, ref, 0, 0);
            for (int64_t i = 0; i < rows * V; i++) ref[i] = 0;
            for (int64_t r = 0; r < rows; r++) ref[r * V + (int64_t)t_get(&idx, r)] = t_get(&p, r);
            pml_view uin[2] = {p, idx};
            if (t_run_ok(PML_OP_UNPICK, uin, 2, &u, NULL, 0, 0)) t_compare("unpick", &u, ref, 0, 0);
            free(ref);
            t_free(&idx), t_free(&table), t_free(&g), t_free(&sa), t_free(&x), t_free(&p), t_free(&u);
        }
}

void test_out_of_range_indices_are_refused(void)
{
    int64_t dt[2] = {65, 4}, di[1] = {3}, dg[2] = {3, 4}, dp[2] = {3, 65};
    pml_view table = t_new(PML_F32, 2, dt), idx = t_new(PML_I32, 1, di), g = t_new(PML_F32, 2, dg),
             x = t_new(PML_F32, 2, dp), p = t_new(PML_F32, 1, di);
    t_fill_rand(&table, 0, 1);
    t_fill_rand(&x, 0, 1);
    t_fill_rand(&g, 0, 1);
    t_fill_rand(&p, 0, 1);
    struct {
        pml_opcode op;
        pml_view a, out;
    } cases[4] = {
        {PML_OP_GATHER, table, g}, {PML_OP_SCATTER_ADD, g, table}, {PML_OP_PICK, x, p}, {PML_OP_UNPICK, p, x}};
    int bad_values[2] = {70, -1};
    for (int c = 0; c < 4; c++)
        for (int b = 0; b < 2; b++) {
            t_set(&idx, 0, 1), t_set(&idx, 1, bad_values[b]), t_set(&idx, 2, 2);
            pml_view in[2] = {cases[c].a, idx};
            pml_err err = {0};
            pml_status s = t_run(cases[c].op, in, 2, &cases[c].out, NULL, 0, 0, &err);
            char want[128];
            snprintf(want, sizeof want, "%s: index %d is out of range [0, 65)", pml_op_name(cases[c].op),
                     bad_values[b]);
            TCHECK(s == PML_ERR_INVALID_ARG && strcmp(err.msg, want) == 0, "%s: got status %d '%s', want '%s'",
                   pml_op_name(cases[c].op), (int)s, err.msg, want);
        }
    t_free(&table), t_free(&idx), t_free(&g), t_free(&x), t_free(&p);
}

static void check_matmul(pml_dtype t, int ra, const int64_t *da, int rb, const int64_t *db, int threads)
{
    int64_t m = da[ra - 2], k = da[ra - 1], n = db[rb - 1], dy[8], idx[8];
    int R = ra > rb ? ra : rb;
    for (int d = 0; d < R - 2; d++) {
        int ia = d - (R - ra), ib = d - (R - rb);
        int64_t x = ia >= 0 ? da[ia] : 1, y = ib >= 0 ? db[ib] : 1;
        dy[d] = x == 1 ? y : x;
    }
    dy[R - 2] = m, dy[R - 1] = n;
    pml_view in[2] = {t_new(t, ra, da), t_new(t, rb, db)}, y = t_new(t, R, dy);
    t_fill_rand(&in[0], -1, 1);
    t_fill_rand(&in[1], -1, 1);
    /* broadcast views of a's and b's batch parts for the reference's index arithmetic */
    pml_view ba = in[0], bb = in[1];
    ba.rank -= 2, bb.rank -= 2;
    int64_t ny = t_numel(&y);
    double *ref = malloc(sizeof(double) * (size_t)(ny + 1));
    for (int64_t e = 0; e < ny; e++) {
        t_unravel(e, R, dy, idx);
        int64_t pa = t_bcast_index(&ba, R - 2, idx), pb = t_bcast_index(&bb, R - 2, idx), i = idx[R - 2],
                j = idx[R - 1];
        double s = 0;
        for (int64_t p = 0; p < k; p++) s += t_get(&in[0], (pa * m + i) * k + p) * t_get(&in[1], (pb * k + p) * n + j);
        ref[e] = s;
    }
    pml_op_call c = {.op = PML_OP_MATMUL, .n_in = 2, .in = in, .out = y, .threads = threads};
    pml_err err = {0};
    pml_status s = pml_cpu_run(&c, &err);
    TCHECK(s == PML_OK, "matmul: %s", err.msg);
    char what[160];
    snprintf(what, sizeof what, "matmul %s x %s", t_dims_str(ra, da), t_dims_str(rb, db));
    if (s == PML_OK)
        t_compare(what, &y, ref, t == PML_F32 ? 1e-5 * (double)(k + 1) : 1e-12 * (double)(k + 1),
                  t == PML_F32 ? 1e-5 : 1e-12);
    free(ref);
    t_free(&in[0]), t_free(&in[1]), t_free(&y);
}

void test_matmul_broadcasts_batch_axes(void)
{
    for (int ti = 0; ti < 2; ti++) {
        pml_dtype t = t_float_types[ti];
        int64_t a1[3] = {4, 8, 16}, b1[2] = {16, 12}; /* linear layer: b has no batch */
        check_matmul(t, 3, a1, 2, b1, 1);
        int64_t a2[2] = {8, 16}, b2[3] = {3, 16, 5}; /* a broadcast */
        check_matmul(t, 2, a2, 3, b2, 2);
        int64_t a3[4] = {2, 1, 5, 3}, b3[4] = {1, 3, 3, 6}; /* both broadcast */
        check_matmul(t, 4, a3, 4, b3, 1);
        int64_t a4[2] = {3, 0}, b4[2] = {0, 4}; /* k = 0: zeros */
        check_matmul(t, 2, a4, 2, b4, 1);
        int64_t a5[3] = {0, 2, 3}, b5[2] = {3, 4}; /* no batches at all */
        check_matmul(t, 3, a5, 2, b5, 1);
        for (int trial = 0; trial < 20; trial++) {
            int rb = t_int(2, 5), ra = t_int(2, 5), R = ra > rb ? ra : rb;
            int64_t da[8], db[8], batch[8];
            t_rand_dims(R - 2, batch, 1, 3);
            int64_t m = t_int(1, 9), k = t_int(1, 40), n = t_int(1, 9);
            for (int d = 0; d < ra - 2; d++) da[d] = t_int(0, 2) ? batch[d + R - ra] : 1;
            for (int d = 0; d < rb - 2; d++) db[d] = t_int(0, 2) ? batch[d + R - rb] : 1;
            da[ra - 2] = m, da[ra - 1] = k, db[rb - 2] = k, db[rb - 1] = n;
            check_matmul(t, ra, da, rb, db, t_int(1, 2));
        }
    }
}

/* A matrix of r x c stored with leading dimension ld, random, as f32 and f64 copies. */
static void rand_mat(int64_t r, int64_t ld, float **f, double **d)
{
    *f = malloc(sizeof(float) * (size_t)(r * ld + 1));
    *d = malloc(sizeof(double) * (size_t)(r * ld + 1));
    for (int64_t i = 0; i < r * ld; i++) (*d)[i] = (*f)[i] = (float)(t_unit() * 2 - 1);
}

/* The linked BLAS (if any) against the C GEMM, on the GPT example's shapes and odd
 * ones, f32 and f64, with leading dimensions wider than the matrices, every
 * combination of transposed inputs, overwriting C and accumulating into it. */
void test_matmul_blas_matches_c_gemm(void)
{
    printf("BLAS: %s\n", pml_cpu_blas_name());
    static const int64_t shapes[][3] = {{512, 128, 384}, {512, 512, 128}, {512, 128, 65}, {1, 1, 1},
                                        {7, 300, 3},     {33, 17, 129},   {5, 1, 9}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int form = 0; form < 8; form++) {
            pml_cpu_gemm_op op = {form & 1, (form >> 1) & 1, (form >> 2) & 1};
            int64_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
            int64_t ar = op.ta ? k : m, lda = (op.ta ? m : k) + 3, br = op.tb ? n : k, ldb = (op.tb ? k : n) + 1,
                    ldc = n + 2;
            float *a, *b, *c1, *c2;
            double *da, *db, *d1, *d2;
            rand_mat(ar, lda, &a, &da);
            rand_mat(br, ldb, &b, &db);
            rand_mat(m, ldc, &c1, &d1);
            rand_mat(m, ldc, &c2, &d2);
            for (int64_t i = 0; i < m * ldc; i++) {
                if (op.acc)
                    c2[i] = c1[i], d2[i] = d1[i]; /* the same starting C for both */
                else
                    c1[i] = c2[i] = NAN, d1[i] = d2[i] = NAN; /* must be overwritten */
            }
            pml_cpu_gemm_f32(op, m, n, k, a, lda, b, ldb, c1, ldc, 2);
            pml_cpu_gemm_ref_f32(op, m, n, k, a, lda, b, ldb, c2, ldc, 2);
            pml_cpu_gemm_f64(op, m, n, k, da, lda, db, ldb, d1, ldc, 1);
            pml_cpu_gemm_ref_f64(op, m, n, k, da, lda, db, ldb, d2, ldc, 1);
            int64_t bad = 0, bad64 = 0;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double r = c2[i * ldc + j], g = c1[i * ldc + j];
                    if (!(fabs(g - r) <= 1e-5 * (double)k + 1e-5 * fabs(r))) bad++;
                    r = d2[i * ldc + j], g = d1[i * ldc + j];
                    if (!(fabs(g - r) <= 1e-13 * (double)k + 1e-13 * fabs(r))) bad64++;
                }
            TCHECK(bad == 0 && bad64 == 0,
                   "%s gemm %lldx%lldx%lld ta %d tb %d acc %d: %lld f32 and %lld f64 elements differ from the C GEMM",
                   pml_cpu_blas_name(), (long long)m, (long long)k, (long long)n, op.ta, op.tb, op.acc, (long long)bad,
                   (long long)bad64);
            free(a), free(b), free(c1), free(c2), free(da), free(db), free(d1), free(d2);
        }
}

/* The panel GEMM (gemm_packed.c) against the C GEMM, with B transposed (packed) or
 * not (packed, or read in place), overwriting and accumulating, on micro-batch shapes, odd widths and row counts
 * (remainder tiles and partial panels); and the bits of a row do not depend on how
 * many rows share the call (micro-batches give what one batch gives). */
void test_matmul_packed_matches_c_gemm(void)
{
    if (!pml_cpu_gemm_packed_available()) {
        printf("no AVX-512F: the packed GEMM is not used here\n");
        return;
    }
    static const int64_t shapes[][3] = {{32, 784, 512}, {32, 512, 128}, {37, 300, 131}, {1, 1, 1}, {13, 17, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int form = 0; form < 4; form++) {
            pml_cpu_gemm_op op = {0, form & 1, (form >> 1) & 1};
            int64_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
            int64_t lda = k + 3, br = op.tb ? n : k, ldb = (op.tb ? k : n) + 1;
            float *a, *b, *c1, *c2;
            double *da, *db, *d1, *d2;
            rand_mat(m, lda, &a, &da);
            rand_mat(br, ldb, &b, &db);
            rand_mat(m, n, &c1, &d1);
            rand_mat(m, n, &c2, &d2);
            memcpy(c2, c1, sizeof(float) * (size_t)(m * n));
            float *packed = malloc(sizeof(float) * pml_cpu_gemm_packed_floats(k, n));
            pml_cpu_gemm_pack_b(op.tb, k, n, b, ldb, packed);
            pml_cpu_gemm_panels panels = pml_cpu_gemm_packed(packed, k);
            if (!op.tb && s % 2 == 0) panels = pml_cpu_gemm_in_place(b, ldb); /* read in place, or packed */
            pml_cpu_gemm_packed_f32(op.acc, m, n, k, a, lda, panels, c1, n, NULL);
            pml_cpu_gemm_ref_f32(op, m, n, k, a, lda, b, ldb, c2, n, 1);
            int64_t bad = 0;
            for (int64_t i = 0; i < m * n; i++)
                if (!(fabs((double)c1[i] - c2[i]) <= 1e-5 * (double)k + 1e-5 * fabs((double)c2[i]))) bad++;
            if (!op.acc && m > 1) { /* the last row alone: the same bits as among the others */
                float *row = malloc(sizeof(float) * (size_t)n);
                pml_cpu_gemm_packed_f32(0, 1, n, k, a + (m - 1) * lda, lda, panels, row, n, NULL);
                bad += memcmp(row, c1 + (m - 1) * n, sizeof(float) * (size_t)n) != 0;
                free(row);
            }
            TCHECK(bad == 0, "packed gemm %lldx%lldx%lld tb %d acc %d: %lld elements differ", (long long)m,
                   (long long)k, (long long)n, op.tb, op.acc, (long long)bad);
            free(a), free(b), free(c1), free(c2), free(da), free(db), free(d1), free(d2), free(packed);
        }
}

/* After a one-thread setup has stopped OpenBLAS's helper threads, a two-thread GEMM
 * still runs (the library restarts them) and gives the C GEMM's result. */
void test_gemm_threads_resume_after_setup(void)
{
    pml_cpu_gemm_setup(1);
    int64_t m = 512, k = 256, n = 512;
    float *a, *b, *c1, *c2;
    double *da, *db, *d1, *d2;
    rand_mat(m, k, &a, &da);
    rand_mat(k, n, &b, &db);
    rand_mat(m, n, &c1, &d1);
    rand_mat(m, n, &c2, &d2);
    pml_cpu_gemm_op op = {0, 0, 0};
    pml_cpu_gemm_f32(op, m, n, k, a, k, b, n, c1, n, 1);
    pml_cpu_gemm_setup(2);
    pml_cpu_gemm_f32(op, m, n, k, a, k, b, n, c1, n, 2);
    pml_cpu_gemm_ref_f32(op, m, n, k, a, k, b, n, c2, n, 1);
    int64_t bad = 0;
    for (int64_t i = 0; i < m * n; i++)
        if (!(fabs((double)c1[i] - c2[i]) <= 1e-5 * (double)k + 1e-5 * fabs((double)c2[i]))) bad++;
    TCHECK(bad == 0, "%s gemm with 2 threads after parking: %lld elements differ", pml_cpu_blas_name(), (long long)bad);
    free(a), free(b), free(c1), free(c2), free(da), free(db), free(d1), free(d2);
}

/* The C GEMM's transposed and accumulating forms against plain index arithmetic (the
 * BLAS test above compares the two implementations; this pins down what both mean). */
void test_c_gemm_transposes_and_accumulates(void)
{
    for (int form = 0; form < 8; form++) {
        pml_cpu_gemm_op op = {form & 1, (form >> 1) & 1, (form >> 2) & 1};
        int64_t m = t_int(1, 13), k = t_int(1, 300), n = t_int(1, 13);
        int64_t lda = op.ta ? m : k, ldb = op.tb ? k : n;
        float *a, *b, *c;
        double *da, *db, *dc;
        rand_mat(op.ta ? k : m, lda, &a, &da);
        rand_mat(op.tb ? n : k, ldb, &b, &db);
        rand_mat(m, n, &c, &dc);
        pml_cpu_gemm_ref_f64(op, m, n, k, da, lda, db, ldb, dc, n, 1);
        int64_t bad = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double r = op.acc ? c[i * n + j] : 0;
                for (int64_t p = 0; p < k; p++)
                    r += (double)(op.ta ? a[p * lda + i] : a[i * lda + p]) * (op.tb ? b[j * ldb + p] : b[p * ldb + j]);
                if (!(fabs(dc[i * n + j] - r) <= 1e-12 * (double)k)) bad++;
            }
        TCHECK(bad == 0, "C gemm %lldx%lldx%lld ta %d tb %d acc %d: %lld elements wrong", (long long)m, (long long)k,
               (long long)n, op.ta, op.tb, op.acc, (long long)bad);
        free(a), free(b), free(c), free(da), free(db), free(dc);
    }
}

/* A matmul with an input given transposed (trans[i]) equals the matmul of the
 * explicitly permuted input, batched and broadcast alike; accumulate adds to out. */
void test_matmul_reads_transposed_inputs_in_place(void)
{
    for (int trial = 0; trial < 40; trial++) {
        pml_dtype t = t_float_types[trial % 2];
        int ra = t_int(2, 4), rb = t_int(2, 4), R = ra > rb ? ra : rb;
        int64_t batch[8], da[8], db[8], dy[8];
        t_rand_dims(R - 2, batch, 1, 3);
        int64_t m = t_int(1, 9), k = t_int(1, 40), n = t_int(1, 9);
        for (int d = 0; d < ra - 2; d++) da[d] = t_int(0, 2) ? batch[d + R - ra] : 1;
        for (int d = 0; d < rb - 2; d++) db[d] = t_int(0, 2) ? batch[d + R - rb] : 1;
        for (int d = 0; d < R - 2; d++) dy[d] = batch[d];
        da[ra - 2] = m, da[ra - 1] = k, db[rb - 2] = k, db[rb - 1] = n, dy[R - 2] = m, dy[R - 1] = n;
        for (int d = 0; d < R - 2; d++) { /* the output's batch axis is the broadcast of both */
            int ia = d - (R - ra), ib = d - (R - rb);
            int64_t x = ia >= 0 ? da[ia] : 1, z = ib >= 0 ? db[ib] : 1;
            dy[d] = x == 1 ? z : x;
        }
        pml_view in[2] = {t_new(t, ra, da), t_new(t, rb, db)}, plain = t_new(t, R, dy), folded = t_new(t, R, dy);
        t_fill_rand(&in[0], -1, 1);
        t_fill_rand(&in[1], -1, 1);
        t_run_ok(PML_OP_MATMUL, in, 2, &plain, NULL, 0, 0);
        /* each input swapped with probability 1/2 by the permute kernel */
        pml_op_call c = {.op = PML_OP_MATMUL, .n_in = 2, .in = in, .out = folded, .threads = t_int(1, 2)};
        pml_view sw[2] = {in[0], in[1]};
        for (int i = 0; i < 2; i++) {
            c.trans[i] = (uint8_t)t_int(0, 1);
            if (!c.trans[i]) continue;
            int r = in[i].rank;
            int64_t perm[8], ds[8];
            for (int d = 0; d < r; d++) perm[d] = d, ds[d] = in[i].dims[d];
            perm[r - 2] = r - 1, perm[r - 1] = r - 2, ds[r - 2] = in[i].dims[r - 1], ds[r - 1] = in[i].dims[r - 2];
            sw[i] = t_new(t, r, ds);
            t_run_ok(PML_OP_PERMUTE, &in[i], 1, &sw[i], perm, r, 0);
        }
        c.in = sw;
        c.accumulate = (uint8_t)t_int(0, 1);
        int64_t ny = t_numel(&plain);
        double *ref = malloc(sizeof(double) * (size_t)(ny + 1));
        for (int64_t e = 0; e < ny; e++) {
            ref[e] = t_get(&plain, e) * (c.accumulate ? 2 : 1);
            if (c.accumulate) t_set(&folded, e, t_get(&plain, e));
        }
        pml_err err = {0};
        pml_status s = pml_cpu_run(&c, &err);
        TCHECK(s == PML_OK, "matmul with trans %d %d: %s", c.trans[0], c.trans[1], err.msg);
        char what[200];
        snprintf(what, sizeof what, "matmul %s%s x %s%s acc %d", t_dims_str(ra, da), c.trans[0] ? "^T" : "",
                 t_dims_str(rb, db), c.trans[1] ? "^T" : "", c.accumulate);
        if (s == PML_OK) t_compare(what, &folded, ref, t == PML_F32 ? 1e-5 * (double)(k + 1) : 1e-12 * (k + 1), 1e-5);
        for (int i = 0; i < 2; i++)
            if (c.trans[i]) t_free(&sw[i]);
        free(ref);
        t_free(&in[0]), t_free(&in[1]), t_free(&plain), t_free(&folded);
    }
}

void test_unknown_ops_and_dtypes_are_unsupported(void)
{
    int64_t d[1] = {4};
    pml_view x = t_new(PML_I32, 1, d), y = t_new(PML_I32, 1, d);
    t_fill_rand(&x, 1, 5);
    pml_err err = {0};
    pml_status s = t_run(PML_OP_EXP, &x, 1, &y, NULL, 0, 0, &err);
    TCHECK(s == PML_ERR_UNSUPPORTED && strstr(err.msg, "exp") && strstr(err.msg, "i32"), "exp on i32: %d '%s'", (int)s,
           err.msg);
    pml_view in[2] = {x, x};
    s = t_run(PML_OP_DIV, in, 2, &y, NULL, 0, 0, &err);
    TCHECK(s == PML_ERR_UNSUPPORTED && strstr(err.msg, "div") && strstr(err.msg, "i32"), "div on i32: %d '%s'", (int)s,
           err.msg);
    s = t_run((pml_opcode)PML_OP_COUNT, &x, 1, &y, NULL, 0, 0, &err);
    TCHECK(s == PML_ERR_UNSUPPORTED && strstr(err.msg, "unknown op"), "unknown op: %d '%s'", (int)s, err.msg);
    pml_view h = x, hy = y;
    h.dtype = hy.dtype = PML_U8; /* (f16 and bf16 are storage types every float op takes: test_half.c) */
    s = t_run(PML_OP_TANH, &h, 1, &hy, NULL, 0, 0, &err);
    TCHECK(s == PML_ERR_UNSUPPORTED && strstr(err.msg, "tanh") && strstr(err.msg, "u8"), "tanh on u8: %d '%s'",
           (int)s, err.msg);
    TCHECK(strcmp(pml_op_name(PML_OP_SCATTER_ADD), "scatter_add") == 0 && strcmp(pml_op_name(PML_OP_COUNT), "?") == 0,
           "op names");
    t_free(&x), t_free(&y);
}

/* The widest of PML's instruction-set levels (cpu/isa.h) that /proc/cpuinfo's flags
 * line offers: read here from the kernel's view, not through the runtime's CPUID code,
 * so a mistake in either shows. -1: no flags line (not Linux on x86). */
static int cpuinfo_widest_isa(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    char line[8192];
    int level = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0) {
            char *flags = strchr(line, ':');
            if (!flags) break;
            static const char *const need[][4] = {
                {"sse4_1"}, {"avx2", "fma"}, {"avx512f", "avx512bw", "avx512dq", "avx512vl"}, {"avx512_vnni"}, {"avx512_bf16"}};
            level = PML_ISA_SSE2;
            for (size_t l = 0; l < sizeof need / sizeof need[0]; l++) {
                int all = 1;
                for (int i = 0; i < 4 && need[l][i]; i++) {
                    char word[32];
                    snprintf(word, sizeof word, " %s", need[l][i]); /* a whole word: the next char is a space or \n */
                    const char *at = strstr(flags, word);
                    while (at && at[strlen(word)] != ' ' && at[strlen(word)] != '\n') at = strstr(at + 1, word);
                    all &= at != NULL;
                }
                if (!all) break;
                level = (int)l + PML_ISA_SSE41;
            }
            break;
        }
    fclose(f);
    return level;
}

/* The GEMM provider's kernels use the widest instruction set this CPU offers among
 * those PML knows: a provider that falls back to narrower kernels (OpenBLAS's SSE3
 * "Prescott" core on a CPU model it does not know, issue 14) fails here. The same test
 * with the kernels narrowed on purpose is registered to fail (tests/runtime/cpu). */
void test_gemm_uses_the_widest_instruction_set_the_cpu_offers(void)
{
    int offered = cpuinfo_widest_isa();
    pml_cpu_isa used = pml_cpu_gemm_isa();
    printf("GEMM: %s, kernels %s; the CPU offers %s (/proc/cpuinfo), %s (CPUID)\n", pml_cpu_blas_name(),
           pml_cpu_isa_name(used), offered >= 0 ? pml_cpu_isa_name((pml_cpu_isa)offered) : "unknown",
           pml_cpu_isa_name(pml_cpu_isa_detected()));
    if (offered < 0) return; /* nothing to compare with */
    TCHECK((int)pml_cpu_isa_detected() == offered, "CPUID says %s, /proc/cpuinfo %s",
           pml_cpu_isa_name(pml_cpu_isa_detected()), pml_cpu_isa_name((pml_cpu_isa)offered));
    TCHECK((int)used >= offered, "the GEMM (%s) runs %s kernels on a CPU that offers %s", pml_cpu_blas_name(),
           pml_cpu_isa_name(used), pml_cpu_isa_name((pml_cpu_isa)offered));
}

/* PML_CPU_ISA caps every choice of kernels by instruction set (cpu/isa.h): registered
 * with PML_CPU_ISA=avx2 (tests/runtime/cpu), so on an AVX-512 machine the run takes the
 * paths of an AVX2 one: no panel GEMM (so attention's row products), no packed int8
 * weights, no vector exp of AVX-512, the bf16 products widened, and oneDNN's kernels
 * capped too. The numeric tests registered beside it under the same cap check those
 * paths' values. Without the variable it says so and checks nothing. */
void test_pml_cpu_isa_caps_every_kernel_choice(void)
{
    const char *v = getenv("PML_CPU_ISA");
    if (!v) {
        printf("skipped: PML_CPU_ISA is not set (its ctest sets avx2)\n");
        return;
    }
    pml_cpu_isa cap = PML_ISA_COUNT;
    for (int i = 0; i < PML_ISA_COUNT; i++)
        if (!strcmp(v, pml_cpu_isa_name((pml_cpu_isa)i))) cap = (pml_cpu_isa)i;
    TCHECK(cap < PML_ISA_COUNT, "PML_CPU_ISA=%s names a level", v);
    if (cap == PML_ISA_COUNT) return;
    pml_cpu_isa cpu = pml_cpu_isa_detected(), want = cpu < cap ? cpu : cap;
    printf("CPU %s, PML_CPU_ISA %s: offered %s; GEMM kernels %s; bf16 products: %s\n", pml_cpu_isa_name(cpu),
           pml_cpu_isa_name(cap), pml_cpu_isa_name(pml_cpu_isa_offered()), pml_cpu_isa_name(pml_cpu_gemm_isa()),
           pml_cpu_gemm_bf16_status());
    TCHECK(pml_cpu_isa_offered() == want, "offered %s, want %s", pml_cpu_isa_name(pml_cpu_isa_offered()),
           pml_cpu_isa_name(want));
    TCHECK(pml_cpu_isa_capped() == (cpu > cap), "capped %d", pml_cpu_isa_capped());
    TCHECK(pml_cpu_gemm_isa() <= want, "the GEMM runs %s kernels above the cap %s", pml_cpu_isa_name(pml_cpu_gemm_isa()),
           pml_cpu_isa_name(want));
    TCHECK(pml_cpu_gemm_packed_available() == (want >= PML_ISA_AVX512), "panel GEMM available: %d",
           pml_cpu_gemm_packed_available());
    TCHECK((pml_cpu_s8_packed_bytes(16, 16) > 0) == (want >= PML_ISA_AVX512_VNNI), "packed int8 weights: %zu bytes",
           pml_cpu_s8_packed_bytes(16, 16));
    if (want < PML_ISA_AVX512_BF16)
        TCHECK(strstr(pml_cpu_gemm_bf16_status(), "f32 products") != NULL, "bf16 products widened: %s",
               pml_cpu_gemm_bf16_status());
    char why[200];
    TCHECK(pml_cpu_isa_check(why, sizeof why) == 0, "a level's name is accepted");
}

/* BLIS run through PML's GEMM wrapper (the test_cpu_blis binary, when BLIS is not
 * libpml's provider) uses the widest kernels BLIS 0.9 has for this CPU: its sub-
 * configurations reach AVX-512 only on Intel (skx); on AMD the widest is zen3 (AVX2),
 * Zen 4 included, and Debian's 0.9.0 aborts when BLIS_ARCH_TYPE forces another. So a
 * BLIS that fell back to a narrower sub-configuration (generic, sandybridge) fails
 * here, and an AMD AVX-512 CPU is the one case where BLIS cannot be PML's provider at
 * full width (docs/design.md, "The GEMM provider"). */
void test_gemm_uses_the_widest_kernels_its_provider_has_for_the_cpu(void)
{
    int offered = cpuinfo_widest_isa();
    pml_cpu_isa used = pml_cpu_gemm_isa();
    unsigned a, b, c, d;
    char vendor[13] = {0};
    if (__get_cpuid(0, &a, &b, &c, &d)) {
        memcpy(vendor, &b, 4);
        memcpy(vendor + 4, &d, 4);
        memcpy(vendor + 8, &c, 4);
    }
    int amd = strcmp(vendor, "AuthenticAMD") == 0;
    int best = strcmp(pml_cpu_blas_name(), "blis") == 0 && amd ? PML_ISA_AVX2 : PML_ISA_AVX512;
    int expect = offered < best ? offered : best;
    printf("GEMM: %s, kernels %s; the CPU (%s) offers %s; the widest this provider has for it: %s\n",
           pml_cpu_blas_name(), pml_cpu_isa_name(used), vendor, offered >= 0 ? pml_cpu_isa_name((pml_cpu_isa)offered) : "unknown",
           expect >= 0 ? pml_cpu_isa_name((pml_cpu_isa)expect) : "unknown");
    if (offered < 0) return; /* nothing to compare with */
    TCHECK((int)used >= expect, "the GEMM (%s) runs %s kernels where it has %s ones for this CPU", pml_cpu_blas_name(),
           pml_cpu_isa_name(used), pml_cpu_isa_name((pml_cpu_isa)expect));
    TCHECK((int)used <= offered, "the GEMM (%s) says it runs %s kernels on a CPU that offers only %s", pml_cpu_blas_name(),
           pml_cpu_isa_name(used), pml_cpu_isa_name((pml_cpu_isa)offered));
}
