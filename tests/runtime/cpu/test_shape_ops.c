/* test_shape_ops.c — reductions, sum_to, expand, reshape, permute, slice, pad and
 * concat against naive references, over random shapes of rank 0 to 5 with size-1 and
 * size-0 axes, every axis, and f32, f64 (and i32 for the movement ops). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/pool.h"
#include "cpu_test.h"
#include "cpu_tests.h"

static const pml_dtype all_types[3] = {PML_F32, PML_F64, PML_I32};

void test_reductions_over_every_axis_with_and_without_keepdim(void)
{
    pml_opcode ops[3] = {PML_OP_SUM, PML_OP_MAX, PML_OP_MEAN};
    for (int oi = 0; oi < 3; oi++)
        for (int ti = 0; ti < 2; ti++)
            for (int trial = 0; trial < 25; trial++) {
                int rank = trial < 2 ? trial * 5 : t_int(1, 4);
                int64_t d[8], od[8];
                t_rand_dims(rank, d, 1, rank == 5 ? 4 : 9);
                if (trial == 3) d[t_int(0, rank - 1)] = 0;
                if (trial == 4) d[rank - 1] = 700; /* a long contiguous row */
                pml_view x = t_new(t_float_types[ti], rank, d);
                t_fill_rand(&x, -3, 3);
                if (trial == 5) t_set(&x, t_int(0, (int)t_numel(&x) - 1), NAN);
                for (int axis = -1; axis < rank; axis++)
                    for (int keep = 0; keep < 2; keep++) {
                        int orank = 0;
                        for (int k = 0; k < rank; k++)
                            if (axis >= 0 && k != axis)
                                od[orank++] = d[k];
                            else if (keep)
                                od[orank++] = 1;
                        pml_view y = t_new(t_float_types[ti], orank, od);
                        int64_t ny = t_numel(&y), nx = t_numel(&x), idx[8];
                        double *ref = malloc(sizeof(double) * (size_t)(ny + 1));
                        int64_t *cnt = calloc((size_t)(ny + 1), sizeof(int64_t));
                        for (int64_t i = 0; i < ny; i++) ref[i] = ops[oi] == PML_OP_MAX ? -INFINITY : 0;
                        for (int64_t i = 0; i < nx; i++) {
                            t_unravel(i, rank, d, idx);
                            int64_t o = 0;
                            for (int k = 0; k < rank; k++)
                                if (axis >= 0 && k != axis) o = o * d[k] + idx[k];
                            double v = t_get(&x, i);
                            if (ops[oi] == PML_OP_MAX)
                                ref[o] = v != v || ref[o] != ref[o] ? NAN : v > ref[o] ? v : ref[o];
                            else
                                ref[o] += v;
                            cnt[o]++;
                        }
                        if (ops[oi] == PML_OP_MEAN)
                            for (int64_t i = 0; i < ny; i++) ref[i] /= (double)cnt[i];
                        int64_t attr[2] = {axis, keep};
                        char what[128];
                        snprintf(what, sizeof what, "%s %s axis %d keepdim %d", pml_op_name(ops[oi]),
                                 t_dims_str(rank, d), axis, keep);
                        if (t_run_ok(ops[oi], &x, 1, &y, attr, 2, 0))
                            t_compare(what, &y, ref, t_float_types[ti] == PML_F32 ? 1e-4 : 1e-12,
                                      t_float_types[ti] == PML_F32 ? 1e-5 : 1e-12);
                        free(ref);
                        free(cnt);
                        t_free(&y);
                    }
                t_free(&x);
            }
}

/* Sums and means of contiguous rows run four rows at a time (reduce_tmpl.h, row_sum4);
 * each row must get the bits it gets alone, whose order every row sum uses (so fused
 * and unfused layernorms and sum_to agree), over row lengths around the four lanes. */
void test_row_reductions_four_rows_at_a_time_keep_the_one_row_bits(void)
{
    static const int64_t lens[] = {1, 3, 4, 5, 63, 64, 129, 700};
    int bad = 0;
    for (int ti = 0; ti < 2; ti++)
        for (int li = 0; li < 8; li++)
            for (int oi = 0; oi < 2; oi++) {
                pml_opcode op = oi ? PML_OP_MEAN : PML_OP_SUM;
                pml_dtype t = t_float_types[ti];
                int64_t d[2] = {t_int(4, 11), lens[li]}, od[2] = {d[0], 1}, one[2] = {1, lens[li]};
                int64_t attr[2] = {1, 1};
                pml_view x = t_new(t, 2, d), y = t_new(t, 2, od), row = t_new(t, 2, one), r1 = t_new(t, 2, od);
                t_fill_rand(&x, -1e3, 1e3);
                t_run_ok(op, &x, 1, &y, attr, 2, 0);
                size_t es = pml_dtype_size(t);
                for (int64_t p = 0; p < d[0]; p++) {
                    memcpy(row.data, (char *)x.data + (size_t)(p * d[1]) * es, (size_t)d[1] * es);
                    pml_view one_out = r1;
                    one_out.dims[0] = 1;
                    one_out.data = (char *)r1.data + (size_t)p * es;
                    t_run_ok(op, &row, 1, &one_out, attr, 2, 0);
                }
                if (memcmp(y.data, r1.data, (size_t)d[0] * es)) {
                    bad++;
                    TCHECK(0, "%s %s over [%lld, %lld]: rows four at a time differ from one at a time", pml_op_name(op),
                           pml_dtype_name(t), (long long)d[0], (long long)d[1]);
                }
                t_free(&x), t_free(&y), t_free(&row), t_free(&r1);
            }
    TCHECK(bad == 0, "%d reductions differ", bad);
}

/* A random shape `big` and one `small` that broadcasts to it. */
static void broadcast_pair(int *rb, int64_t *big, int *rs, int64_t *small, int trial)
{
    *rb = trial == 0 ? 0 : t_int(1, 5);
    t_rand_dims(*rb, big, 1, *rb >= 4 ? 4 : 8);
    if (trial == 1) big[t_int(0, *rb - 1)] = 0;
    *rs = t_int(0, *rb);
    for (int k = 0; k < *rs; k++) small[k] = t_int(0, 2) == 0 ? 1 : big[*rb - *rs + k];
}

void test_sum_to_sums_the_broadcast_axes_away(void)
{
    for (int ti = 0; ti < 2; ti++)
        for (int trial = 0; trial < 60; trial++) {
            int rb, rs;
            int64_t big[8], small[8], idx[8];
            broadcast_pair(&rb, big, &rs, small, trial);
            pml_view x = t_new(t_float_types[ti], rb, big), y = t_new(t_float_types[ti], rs, small);
            t_fill_rand(&x, -2, 2);
            int64_t ny = t_numel(&y), nx = t_numel(&x);
            double *ref = calloc((size_t)(ny + 1), sizeof(double));
            for (int64_t i = 0; i < nx; i++) {
                t_unravel(i, rb, big, idx);
                ref[t_bcast_index(&y, rb, idx)] += t_get(&x, i);
            }
            char what[128];
            snprintf(what, sizeof what, "sum_to %s -> %s", t_dims_str(rb, big), t_dims_str(rs, small));
            if (t_run_ok(PML_OP_SUM_TO, &x, 1, &y, NULL, 0, 0))
                t_compare(what, &y, ref, t_float_types[ti] == PML_F32 ? 1e-4 : 1e-12, 1e-5);
            free(ref);
            t_free(&x), t_free(&y);
        }
}

void test_expand_broadcasts_to_the_output_shape(void)
{
    for (int ti = 0; ti < 3; ti++)
        for (int trial = 0; trial < 60; trial++) {
            int rb, rs;
            int64_t big[8], small[8], idx[8];
            broadcast_pair(&rb, big, &rs, small, trial);
            pml_view x = t_new(all_types[ti], rs, small), y = t_new(all_types[ti], rb, big);
            t_fill_rand(&x, -100, 100);
            int64_t ny = t_numel(&y);
            double *ref = malloc(sizeof(double) * (size_t)(ny + 1));
            for (int64_t i = 0; i < ny; i++) {
                t_unravel(i, rb, big, idx);
                ref[i] = t_get(&x, t_bcast_index(&x, rb, idx));
            }
            if (t_run_ok(PML_OP_EXPAND, &x, 1, &y, NULL, 0, 0)) t_compare("expand", &y, ref, 0, 0);
            free(ref);
            t_free(&x), t_free(&y);
        }
}

void test_reshape_copies_the_elements(void)
{
    for (int ti = 0; ti < 3; ti++) {
        int64_t a[3] = {4, 3, 5}, b[5] = {2, 1, 2, 15, 1};
        pml_view x = t_new(all_types[ti], 3, a), y = t_new(all_types[ti], 5, b);
        t_fill_rand(&x, -100, 100);
        double ref[60];
        for (int i = 0; i < 60; i++) ref[i] = t_get(&x, i);
        if (t_run_ok(PML_OP_RESHAPE, &x, 1, &y, NULL, 0, 0)) t_compare("reshape", &y, ref, 0, 0);
        t_free(&x), t_free(&y);
    }
}

void test_permute_moves_every_axis(void)
{
    for (int ti = 0; ti < 3; ti++)
        for (int trial = 0; trial < 80; trial++) {
            int rank = trial < 3 ? trial : t_int(2, 5);
            int64_t d[8], od[8], perm[8], idx[8], xi[8];
            t_rand_dims(rank, d, 1, rank >= 4 ? 5 : 9);
            if (trial == 5) d[0] = 0;
            for (int k = 0; k < rank; k++) perm[k] = k;
            for (int k = rank - 1; k > 0; k--) { /* Fisher-Yates */
                int j = t_int(0, k);
                int64_t tmp = perm[k];
                perm[k] = perm[j];
                perm[j] = tmp;
            }
            if (trial % 4 == 0 && rank >= 2) { /* the last axis stays: the row-copy path */
                for (int k = 0; k < rank; k++)
                    if (perm[k] == rank - 1) {
                        perm[k] = perm[rank - 1];
                        perm[rank - 1] = rank - 1;
                    }
            }
            for (int k = 0; k < rank; k++) od[k] = d[perm[k]];
            pml_view x = t_new(all_types[ti], rank, d), y = t_new(all_types[ti], rank, od);
            t_fill_rand(&x, -1000, 1000);
            int64_t n = t_numel(&y);
            double *ref = malloc(sizeof(double) * (size_t)(n + 1));
            for (int64_t i = 0; i < n; i++) {
                t_unravel(i, rank, od, idx);
                for (int k = 0; k < rank; k++) xi[perm[k]] = idx[k];
                int64_t off = 0;
                for (int k = 0; k < rank; k++) off = off * d[k] + xi[k];
                ref[i] = t_get(&x, off);
            }
            char what[128];
            snprintf(what, sizeof what, "permute %s by %s", t_dims_str(rank, d), t_dims_str(rank, perm));
            if (t_run_ok(PML_OP_PERMUTE, &x, 1, &y, perm, rank, 0)) t_compare(what, &y, ref, 0, 0);
            free(ref);
            t_free(&x), t_free(&y);
        }
}

void test_slice_and_pad_cover_every_axis_and_step(void)
{
    for (int ti = 0; ti < 3; ti++)
        for (int trial = 0; trial < 40; trial++) {
            int rank = trial == 0 ? 5 : t_int(1, 4);
            int64_t d[8], sd[8], idx[8];
            t_rand_dims(rank, d, 1, rank == 5 ? 4 : 8);
            for (int axis = 0; axis < rank; axis++) {
                int64_t n = d[axis], start = t_int(0, (int)n - 1), stop = t_int((int)start + 1, (int)n),
                        step = t_int(1, 3);
                memcpy(sd, d, sizeof d);
                sd[axis] = (stop - start + step - 1) / step;
                int64_t attr[4] = {axis, start, stop, step};
                pml_view x = t_new(all_types[ti], rank, d), y = t_new(all_types[ti], rank, sd),
                         z = t_new(all_types[ti], rank, d);
                t_fill_rand(&x, -1000, 1000);
                int64_t ny = t_numel(&y), nx = t_numel(&x);
                double *ref = malloc(sizeof(double) * (size_t)(ny + 1)),
                       *pref = malloc(sizeof(double) * (size_t)(nx + 1));
                for (int64_t i = 0; i < ny; i++) {
                    t_unravel(i, rank, sd, idx);
                    idx[axis] = start + idx[axis] * step;
                    int64_t off = 0;
                    for (int k = 0; k < rank; k++) off = off * d[k] + idx[k];
                    ref[i] = t_get(&x, off);
                }
                /* pad puts the slice back into zeros */
                for (int64_t i = 0; i < nx; i++) {
                    t_unravel(i, rank, d, idx);
                    int64_t k = idx[axis] - start;
                    pref[i] = k >= 0 && k % step == 0 && idx[axis] < stop ? t_get(&x, i) : 0;
                }
                char what[128];
                snprintf(what, sizeof what, "slice %s axis %d %lld:%lld:%lld", t_dims_str(rank, d), axis,
                         (long long)start, (long long)stop, (long long)step);
                if (t_run_ok(PML_OP_SLICE, &x, 1, &y, attr, 4, 0)) t_compare(what, &y, ref, 0, 0);
                if (t_run_ok(PML_OP_PAD, &y, 1, &z, attr, 4, 0)) t_compare("pad (of that slice)", &z, pref, 0, 0);
                free(ref), free(pref);
                t_free(&x), t_free(&y), t_free(&z);
            }
        }
}

/* A large permute or slice is split over a stage's pool by its outermost axis
 * (movement.c): at 2 and 3 threads every element lands where the reference puts it,
 * into an output poisoned first, for the copies around attention ([B, T, H, D] ->
 * [B, H, T, D], the heads cut from [B T, 3 C]), a permute that moves the last axis (the
 * tiled path), a first axis shorter than the task count, steps, and each element size. */
void test_large_copies_split_over_a_pool_move_every_element(void)
{
    static const struct {
        pml_dtype t;
        int rank;
        int64_t d[4], perm[4];
    } perms[] = {{PML_F32, 4, {32, 64, 4, 32}, {0, 2, 1, 3}}, {PML_F32, 4, {32, 4, 64, 32}, {0, 2, 1, 3}},
                 {PML_F32, 3, {41, 97, 70}, {0, 2, 1}},       {PML_F64, 3, {3, 50, 700}, {0, 2, 1}},
                 {PML_F32, 3, {70, 97, 41}, {2, 1, 0}},       {PML_I32, 3, {5, 300, 77}, {1, 0, 2}}};
    static const struct {
        pml_dtype t;
        int64_t d[2], attr[4];
    } slices[] = {{PML_F32, {2048, 384}, {1, 128, 256, 1}}, {PML_F64, {1001, 90}, {1, 3, 90, 4}},
                  {PML_I32, {3, 40000}, {1, 7, 39000, 3}},  {PML_F32, {700, 130}, {0, 5, 699, 2}}};
    for (int threads = 2; threads <= 3; threads++) {
        pml_cpu_pool *pool = NULL;
        pml_err err = {0};
        TCHECK(pml_cpu_pool_create(threads, &pool, &err) == PML_OK, "pool: %s", err.msg);
        if (!pool) return;
        for (size_t i = 0; i < sizeof perms / sizeof perms[0]; i++) {
            int R = perms[i].rank;
            int64_t od[4], idx[4], xi[4];
            for (int k = 0; k < R; k++) od[k] = perms[i].d[perms[i].perm[k]];
            pml_view x = t_new(perms[i].t, R, perms[i].d), y = t_new(perms[i].t, R, od);
            t_fill_rand(&x, -1000, 1000);
            int64_t n = t_numel(&y);
            double *ref = malloc(sizeof(double) * (size_t)n);
            for (int64_t e = 0; e < n; e++) {
                t_unravel(e, R, od, idx);
                for (int k = 0; k < R; k++) xi[perms[i].perm[k]] = idx[k];
                int64_t off = 0;
                for (int k = 0; k < R; k++) off = off * perms[i].d[k] + xi[k];
                ref[e] = t_get(&x, off);
            }
            pml_op_call c = {.op = PML_OP_PERMUTE, .n_in = 1, .in = &x, .out = y, .attr = perms[i].perm,
                             .n_attr = R, .pool = pool};
            char what[128];
            snprintf(what, sizeof what, "permute %s by %s on %d threads", t_dims_str(R, perms[i].d),
                     t_dims_str(R, perms[i].perm), threads);
            TCHECK(pml_cpu_run(&c, &err) == PML_OK, "%s: %s", what, err.msg);
            t_compare(what, &y, ref, 0, 0);
            free(ref);
            t_free(&x), t_free(&y);
        }
        for (size_t i = 0; i < sizeof slices / sizeof slices[0]; i++) {
            const int64_t *d = slices[i].d, *a = slices[i].attr;
            int axis = (int)a[0];
            int64_t sd[2] = {d[0], d[1]}, idx[2];
            sd[axis] = (a[2] - a[1] + a[3] - 1) / a[3];
            pml_view x = t_new(slices[i].t, 2, d), y = t_new(slices[i].t, 2, sd);
            t_fill_rand(&x, -1000, 1000);
            int64_t n = t_numel(&y);
            double *ref = malloc(sizeof(double) * (size_t)n);
            for (int64_t e = 0; e < n; e++) {
                t_unravel(e, 2, sd, idx);
                idx[axis] = a[1] + idx[axis] * a[3];
                ref[e] = t_get(&x, idx[0] * d[1] + idx[1]);
            }
            pml_op_call c = {.op = PML_OP_SLICE, .n_in = 1, .in = &x, .out = y, .attr = a, .n_attr = 4, .pool = pool};
            char what[128];
            snprintf(what, sizeof what, "slice %s axis %d %lld:%lld:%lld on %d threads", t_dims_str(2, d), axis,
                     (long long)a[1], (long long)a[2], (long long)a[3], threads);
            TCHECK(pml_cpu_run(&c, &err) == PML_OK, "%s: %s", what, err.msg);
            t_compare(what, &y, ref, 0, 0);
            free(ref);
            t_free(&x), t_free(&y);
        }
        /* A gather (an embedding's lookup) of 2048 and of 1001 rows: split by rows. */
        for (int64_t rows = 2048; rows > 1000; rows = rows == 2048 ? 1001 : 0) {
            int64_t td[2] = {65, 128}, id[1] = {rows}, od[2] = {rows, 128};
            pml_view table = t_new(PML_F32, 2, td), ids = t_new(PML_I32, 1, id), y = t_new(PML_F32, 2, od);
            t_fill_rand(&table, -1000, 1000);
            double *ref = malloc(sizeof(double) * (size_t)(rows * 128));
            for (int64_t r = 0; r < rows; r++) {
                int32_t k = (int32_t)t_int(0, 64);
                ((int32_t *)ids.data)[r] = k;
                for (int64_t j = 0; j < 128; j++) ref[r * 128 + j] = t_get(&table, k * 128 + j);
            }
            pml_view in[2] = {table, ids};
            pml_op_call c = {.op = PML_OP_GATHER, .n_in = 2, .in = in, .out = y, .pool = pool};
            char what[96];
            snprintf(what, sizeof what, "gather of %lld rows on %d threads", (long long)rows, threads);
            TCHECK(pml_cpu_run(&c, &err) == PML_OK, "%s: %s", what, err.msg);
            t_compare(what, &y, ref, 0, 0);
            free(ref);
            t_free(&table), t_free(&ids), t_free(&y);
        }
        pml_cpu_pool_destroy(pool);
    }
}

void test_concat_joins_any_number_of_inputs(void)
{
    for (int ti = 0; ti < 3; ti++)
        for (int trial = 0; trial < 30; trial++) {
            int rank = trial == 0 ? 5 : t_int(1, 4), n_in = t_int(1, 4);
            int64_t d[8], od[8], idx[8];
            t_rand_dims(rank, d, 1, rank == 5 ? 3 : 6);
            int axis = t_int(0, rank - 1);
            pml_view in[4];
            int64_t start[5] = {0};
            memcpy(od, d, sizeof d);
            od[axis] = 0;
            for (int i = 0; i < n_in; i++) {
                int64_t di[8];
                memcpy(di, d, sizeof d);
                di[axis] = t_int(0, 4); /* size 0 allowed */
                in[i] = t_new(all_types[ti], rank, di);
                t_fill_rand(&in[i], -1000, 1000);
                od[axis] += di[axis];
                start[i + 1] = od[axis];
            }
            pml_view y = t_new(all_types[ti], rank, od);
            int64_t n = t_numel(&y);
            double *ref = malloc(sizeof(double) * (size_t)(n + 1));
            for (int64_t e = 0; e < n; e++) {
                t_unravel(e, rank, od, idx);
                int i = 0;
                while (idx[axis] >= start[i + 1]) i++;
                idx[axis] -= start[i];
                int64_t off = 0;
                for (int k = 0; k < rank; k++) off = off * in[i].dims[k] + idx[k];
                ref[e] = t_get(&in[i], off);
            }
            int64_t attr[1] = {axis};
            if (t_run_ok(PML_OP_CONCAT, in, n_in, &y, attr, 1, 0)) t_compare("concat", &y, ref, 0, 0);
            free(ref);
            for (int i = 0; i < n_in; i++) t_free(&in[i]);
            t_free(&y);
        }
}
