/* test_group.c — fused element-wise groups (pml_cpu_run_group) against running the same
 * ops one by one on whole tensors: random chains over random shapes, with inputs from
 * earlier ops and from outside values of every broadcasting form (whole, a row, a
 * column, a leading 1, a scalar, all but the last axis, all but the first), random
 * materialised values, spaces of one tile and of many. Every materialised value must
 * equal the op-by-op result. */
#include <stdlib.h>
#include <string.h>

#include "cpu_test.h"
#include "cpu_tests.h"
#include "cpu/pool.h"

enum { N_EXT = 7, MAX_OPS = 12 };

static const pml_opcode unary_ops[] = {PML_OP_NEG, PML_OP_TANH, PML_OP_SIGMOID, PML_OP_RELU, PML_OP_ABS, PML_OP_EXP};
static const pml_opcode binary_ops[] = {PML_OP_ADD,     PML_OP_SUB,     PML_OP_MUL, PML_OP_MAXIMUM,
                                        PML_OP_MINIMUM, PML_OP_DIV,     PML_OP_LT,  PML_OP_GE};

/* One random group over `space`; returns the number of mismatching elements. With
 * `flat`, its outside inputs are whole or scalars only (the form group.c runs a strip
 * of every op at a time). */
static int check_group(pml_dtype t, int rank, const int64_t *space, int flat)
{
    int n = t_int(2, MAX_OPS);
    /* the outside values: whole, last axis only, first axis only, leading 1, scalar,
     * all but the last axis ([B, T, 1]: cut with the rows), all but the first ([T, C]: a
     * position table, which keeps B and T apart) */
    int64_t dims[N_EXT][8];
    int ranks[N_EXT] = {rank, 1, rank, rank, 0, rank, rank - 1};
    for (int e = 0; e < N_EXT; e++) memcpy(dims[e], space, sizeof(int64_t) * (size_t)rank);
    dims[1][0] = space[rank - 1];
    for (int d = 1; d < rank; d++) dims[2][d] = 1;
    dims[3][0] = 1;
    dims[5][rank - 1] = 1;
    for (int d = 1; d < rank; d++) dims[6][d - 1] = space[d];
    pml_view ext[N_EXT], ref[MAX_OPS], got[MAX_OPS];
    for (int e = 0; e < N_EXT; e++) {
        ext[e] = t_new(t, ranks[e], dims[e]);
        t_fill_rand(&ext[e], -2, 2);
    }
    pml_cpu_group_op ops[MAX_OPS];
    pml_view ref_in[MAX_OPS][3], grp_in[MAX_OPS][3];
    int keep[MAX_OPS];
    for (int i = 0; i < n; i++) {
        ref[i] = t_new(t, rank, space);
        got[i] = t_new(t, rank, space);
        keep[i] = i == n - 1 || t_int(0, 2) == 0;
        int unary = t_int(0, 2) == 0;
        pml_opcode op = unary ? unary_ops[t_int(0, 5)] : binary_ops[t_int(0, 7)];
        int n_in = unary ? 1 : 2;
        memset(&ops[i], 0, sizeof ops[i]);
        for (int k = 0; k < n_in; k++) {
            /* an earlier op, or an outside value (a unary op needs the whole shape) */
            int from = i > 0 && t_int(0, 1) ? t_int(0, i - 1) : -1;
            int e = unary ? 0 : flat ? (t_int(0, 1) ? 0 : 4) : t_int(0, N_EXT - 1);
            ref_in[i][k] = from >= 0 ? ref[from] : ext[e];
            grp_in[i][k] = from >= 0 ? got[from] : ext[e];
            ops[i].from[k] = (int16_t)from;
        }
        pml_op_call c = {.op = op, .n_in = n_in, .in = ref_in[i], .out = ref[i], .threads = 1};
        t_run_ok(op, ref_in[i], n_in, &ref[i], NULL, 0, 0);
        c.in = grp_in[i];
        c.out = got[i];
        if (!keep[i]) c.out.data = NULL;
        ops[i].call = c;
    }
    size_t bytes = pml_cpu_group_scratch(ops, n, 1);
    void *scratch = aligned_alloc(64, (bytes + 64) & ~(size_t)63);
    pml_err err = {0};
    TCHECK(pml_cpu_group_tileable(ops, n), "a chain of element-wise ops of one shape is tileable");
    pml_status s = pml_cpu_run_group(ops, n, NULL, scratch, bytes, &err);
    TCHECK(s == PML_OK, "run_group: %s", err.msg);
    int bad = 0;
    for (int i = 0; i < n && s == PML_OK; i++) {
        if (!keep[i]) continue;
        int64_t m = t_numel(&ref[i]);
        double *want = malloc(sizeof(double) * (size_t)(m + 1));
        for (int64_t j = 0; j < m; j++) want[j] = t_get(&ref[i], j);
        char what[96];
        snprintf(what, sizeof what, "group op %d (%s) of %d over %s", i, pml_op_name(ops[i].call.op), n,
                 t_dims_str(rank, space));
        bad += t_compare(what, &got[i], want, 0, 0);
        free(want);
    }
    free(scratch);
    /* The same group on a pool of 3 threads: the same bits in every kept output (ref
     * holds the one-thread bits now; got is poisoned with NaN first). */
    pml_cpu_pool *pool = NULL;
    TCHECK(pml_cpu_pool_create(3, &pool, &err) == PML_OK, "pool: %s", err.msg);
    for (int i = 0; i < n; i++) {
        if (!keep[i]) continue;
        size_t sz = (size_t)t_numel(&got[i]) * pml_dtype_size(t);
        memcpy(ref[i].data, got[i].data, sz);
        memset(got[i].data, 0xff, sz);
    }
    bytes = pml_cpu_group_scratch(ops, n, 3);
    scratch = aligned_alloc(64, (bytes + 64) & ~(size_t)63);
    s = pml_cpu_run_group(ops, n, pool, scratch, bytes, &err);
    TCHECK(s == PML_OK, "run_group on 3 threads: %s", err.msg);
    for (int i = 0; i < n && s == PML_OK; i++)
        if (keep[i] && memcmp(ref[i].data, got[i].data, (size_t)t_numel(&got[i]) * pml_dtype_size(t))) {
            TCHECK(0, "group op %d of %d: other bits on 3 threads", i, n);
            bad++;
        }
    free(scratch);
    pml_cpu_pool_destroy(pool);
    for (int i = 0; i < n; i++) t_free(&ref[i]), t_free(&got[i]);
    for (int e = 0; e < N_EXT; e++) t_free(&ext[e]);
    return bad;
}

/* `trials` random groups (check_group) over random spaces of rank 1 to 3, from one tile
 * to many and from rows of a few elements to rows past a tile; f32 and f64 in turn, or
 * (flat) three f32 groups, which run in strips, to one f64. */
static int random_groups(int trials, int flat)
{
    int bad = 0;
    for (int trial = 0; trial < trials; trial++) {
        int rank = t_int(1, 3);
        int64_t space[3];
        t_rand_dims(rank, space, 1, 9);
        space[0] = t_int(1, 70);
        space[rank - 1] = t_int(1, 1500);
        pml_dtype t = flat ? (trial % 4 ? PML_F32 : PML_F64) : t_float_types[trial % 2];
        bad += check_group(t, rank, space, flat);
    }
    return bad;
}

void test_fused_group_equals_op_by_op(void)
{
    int bad = random_groups(60, 0);
    TCHECK(bad == 0, "%d elements differ", bad);
}

/* Chains whose outside inputs are whole tensors and scalars (GELU and its backward):
 * f32 ones run a strip of every op at a time; the same bits as op by op, over spaces
 * of one strip, of a few and a partial one, and of many tiles. */
void test_fused_flat_group_runs_in_strips_with_op_by_op_bits(void)
{
    int bad = random_groups(40, 1);
    TCHECK(bad == 0, "%d elements differ", bad);
}

/* A row group (layernorm, then a log-softmax of its result) against the same ops one
 * by one: reductions over the last axis keep it, values of shape [..., 1] broadcast
 * back, some values stay in scratch; bit for bit, over one tile and many. */
void test_fused_row_group_equals_op_by_op(void)
{
    int bad = 0;
    for (int trial = 0; trial < 20; trial++) {
        pml_dtype t = t_float_types[trial % 2];
        int rank = t_int(2, 3);
        int64_t full[3], red[3];
        t_rand_dims(rank, full, 1, 5);
        full[0] = t_int(1, 70);
        full[rank - 1] = t_int(1, 1500);
        memcpy(red, full, sizeof full);
        red[rank - 1] = 1;
        int64_t last[2] = {rank - 1, 1}, zero[1] = {0};
        pml_view x = t_new(t, rank, full), eps = t_new(t, 0, zero);
        t_fill_rand(&x, -3, 3);
        t_fill_rand(&eps, 1e-5, 1e-5);
        /* op, inputs (>= 0: an earlier op; -1: x; -2: eps; n_in of them), output [..., 1]?
         * the last: log-softmax = shifted - log(sum exp) */
        static const struct {
            pml_opcode op;
            int a, b, n_in, narrow;
        } chain[] = {{PML_OP_MEAN, -1, 0, 1, 1}, {PML_OP_SUB, -1, 0, 2, 0},  {PML_OP_MUL, 1, 1, 2, 0},
                     {PML_OP_MEAN, 2, 0, 1, 1},  {PML_OP_ADD, 3, -2, 2, 1},  {PML_OP_RSQRT, 4, 0, 1, 1},
                     {PML_OP_MUL, 1, 5, 2, 0},   {PML_OP_MAX, 6, 0, 1, 1},   {PML_OP_SUB, 6, 7, 2, 0},
                     {PML_OP_EXP, 8, 0, 1, 0},   {PML_OP_SUM, 9, 0, 1, 1},   {PML_OP_LOG, 10, 0, 1, 1},
                     {PML_OP_SUB, 8, 11, 2, 0}};
        enum { N = sizeof chain / sizeof chain[0] };
        pml_cpu_group_op ops[N];
        pml_view ref[N], got[N], rin[N][2], gin[N][2];
        int n = N;
        for (int i = 0; i < n; i++) {
            pml_opcode op = chain[i].op;
            int reduction = op == PML_OP_MEAN || op == PML_OP_MAX || op == PML_OP_SUM, src[2] = {chain[i].a, chain[i].b};
            ref[i] = t_new(t, rank, chain[i].narrow ? red : full);
            got[i] = t_new(t, rank, chain[i].narrow ? red : full);
            memset(&ops[i], 0, sizeof ops[i]);
            for (int k = 0; k < chain[i].n_in; k++) {
                rin[i][k] = src[k] >= 0 ? ref[src[k]] : src[k] == -1 ? x : eps;
                gin[i][k] = src[k] >= 0 ? got[src[k]] : src[k] == -1 ? x : eps;
                ops[i].from[k] = (int16_t)(src[k] >= 0 ? src[k] : -1);
            }
            t_run_ok(op, rin[i], chain[i].n_in, &ref[i], reduction ? last : NULL, reduction ? 2 : 0, 0);
            ops[i].call = (pml_op_call){.op = op, .attr = reduction ? last : NULL, .n_attr = reduction ? 2 : 0,
                                        .n_in = chain[i].n_in, .in = gin[i], .out = got[i], .threads = 1};
            if (i % 3 == 2 && i != n - 1) ops[i].call.out.data = NULL; /* some live in scratch only */
        }
        TCHECK(pml_cpu_group_tileable(ops, n), "layernorm and log-softmax over %s form a row group",
               t_dims_str(rank, full));
        size_t bytes = pml_cpu_group_scratch(ops, n, 1);
        void *scratch = aligned_alloc(64, (bytes + 64) & ~(size_t)63);
        pml_err err = {0};
        TCHECK(pml_cpu_run_group(ops, n, NULL, scratch, bytes, &err) == PML_OK, "run_group: %s", err.msg);
        for (int i = 0; i < n; i++) {
            if (!ops[i].call.out.data) continue;
            int64_t m = t_numel(&ref[i]);
            double *want = malloc(sizeof(double) * (size_t)(m + 1));
            for (int64_t j = 0; j < m; j++) want[j] = t_get(&ref[i], j);
            char what[96];
            snprintf(what, sizeof what, "row group op %d (%s) over %s", i, pml_op_name(ops[i].call.op),
                     t_dims_str(rank, full));
            bad += t_compare(what, &got[i], want, 0, 0);
            free(want);
        }
        free(scratch);
        for (int i = 0; i < n; i++) t_free(&ref[i]), t_free(&got[i]);
        t_free(&x), t_free(&eps);
    }
    TCHECK(bad == 0, "%d elements differ", bad);
}

/* nn's layernorm written op for op (stdlib/nn.pml), after a residual add (or the add of
 * a [T, C] table) and before a tanh, with a weight and a bias over the last axis and its
 * eight intermediates in scratch only, or with the three training keeps (mean,
 * variance, normalised rows) written too: the group hands the nine ops to ln_rows.c's
 * four-row kernel, which must give the op-by-op bits in every output, over odd row
 * lengths, one tile and many, one thread and three; the sum before it and the outputs
 * after it too. */
void test_fused_layernorm_in_a_group_gives_the_op_by_op_bits(void)
{
    t_seed(31);
    int bad = 0;
    for (int trial = 0; trial < 24; trial++) {
        int rank = t_int(2, 3);
        int64_t full[3], red[3], row[1];
        t_rand_dims(rank, full, 1, 5);
        full[0] = t_int(1, 70);
        full[rank - 1] = trial % 3 ? t_int(4, 900) : t_int(1, 7);
        memcpy(red, full, sizeof full);
        red[rank - 1] = 1;
        row[0] = full[rank - 1];
        int64_t last[2] = {rank - 1, 1}, zero[1] = {0};
        /* every other trial of rank 3 adds a [T, C] table (as a position embedding), which
         * keeps the first axis apart: a space row then holds T layernorm rows */
        int table = rank == 3 && trial % 2;
        pml_view x = t_new(PML_F32, rank, full), y = t_new(PML_F32, table ? rank - 1 : rank, table ? full + 1 : full),
                 eps = t_new(PML_F32, 0, zero),
                 w = t_new(PML_F32, 1, row), bias = t_new(PML_F32, 1, row);
        t_fill_rand(&x, -3, 3), t_fill_rand(&y, -1, 1), t_fill_rand(&w, 0.5, 1.5), t_fill_rand(&bias, -1, 1);
        t_fill_rand(&eps, 1e-5, 1e-5);
        /* op, inputs (>= 0: an earlier op; -1 x, -2 y, -3 eps, -4 w, -5 bias), output [..., 1]?, kept */
        static const struct {
            pml_opcode op;
            int a, b, n_in, narrow, kept;
        } chain[] = {{PML_OP_ADD, -1, -2, 2, 0, 1}, {PML_OP_MEAN, 0, 0, 1, 1, 0}, {PML_OP_SUB, 0, 1, 2, 0, 0},
                     {PML_OP_MUL, 2, 2, 2, 0, 0},   {PML_OP_MEAN, 3, 0, 1, 1, 0}, {PML_OP_ADD, 4, -3, 2, 1, 0},
                     {PML_OP_RSQRT, 5, 0, 1, 1, 0}, {PML_OP_MUL, 2, 6, 2, 0, 0},  {PML_OP_MUL, 7, -4, 2, 0, 0},
                     {PML_OP_ADD, 8, -5, 2, 0, 1},  {PML_OP_TANH, 9, 0, 1, 0, 1}};
        enum { N = sizeof chain / sizeof chain[0] };
        pml_view outside[5] = {x, y, eps, w, bias}, ref[N], got[N], rin[N][2], gin[N][2];
        pml_cpu_group_op ops[N];
        /* half the trials keep what training keeps for the backward pass: the mean, the
         * variance and the normalised rows */
        int kept[N];
        for (int i = 0; i < N; i++) kept[i] = chain[i].kept || (trial % 4 >= 2 && (i == 1 || i == 4 || i == 7));
        for (int i = 0; i < N; i++) {
            pml_opcode op = chain[i].op;
            int reduction = op == PML_OP_MEAN, src[2] = {chain[i].a, chain[i].b};
            ref[i] = t_new(PML_F32, rank, chain[i].narrow ? red : full);
            got[i] = t_new(PML_F32, rank, chain[i].narrow ? red : full);
            memset(&ops[i], 0, sizeof ops[i]);
            for (int k = 0; k < chain[i].n_in; k++) {
                rin[i][k] = src[k] >= 0 ? ref[src[k]] : outside[-src[k] - 1];
                gin[i][k] = src[k] >= 0 ? got[src[k]] : outside[-src[k] - 1];
                ops[i].from[k] = (int16_t)(src[k] >= 0 ? src[k] : -1);
            }
            t_run_ok(op, rin[i], chain[i].n_in, &ref[i], reduction ? last : NULL, reduction ? 2 : 0, 0);
            ops[i].call = (pml_op_call){.op = op, .attr = reduction ? last : NULL, .n_attr = reduction ? 2 : 0,
                                        .n_in = chain[i].n_in, .in = gin[i], .out = got[i], .threads = 1};
            if (!kept[i]) ops[i].call.out.data = NULL;
        }
        for (int threads = 1; threads <= 3; threads += 2) {
            pml_cpu_pool *pool = NULL;
            pml_err err = {0};
            if (threads > 1) TCHECK(pml_cpu_pool_create(threads, &pool, &err) == PML_OK, "pool: %s", err.msg);
            for (int i = 0; i < N; i++)
                if (kept[i]) memset(got[i].data, 0xff, (size_t)t_numel(&got[i]) * sizeof(float));
            size_t bytes = pml_cpu_group_scratch(ops, N, threads);
            void *scratch = aligned_alloc(64, (bytes + 64) & ~(size_t)63);
            TCHECK(pml_cpu_run_group(ops, N, pool, scratch, bytes, &err) == PML_OK, "run_group: %s", err.msg);
            for (int i = 0; i < N; i++)
                if (kept[i] && memcmp(ref[i].data, got[i].data, (size_t)t_numel(&got[i]) * sizeof(float))) {
                    TCHECK(0, "layernorm group op %d (%s) over %s on %d thread(s): other bits than op by op", i,
                           pml_op_name(chain[i].op), t_dims_str(rank, full), threads);
                    bad++;
                }
            free(scratch);
            pml_cpu_pool_destroy(pool);
        }
        for (int i = 0; i < N; i++) t_free(&ref[i]), t_free(&got[i]);
        for (int q = 0; q < 5; q++) t_free(&outside[q]);
    }
    TCHECK(bad == 0, "%d outputs differ", bad);
}

/* A [B, T, C] group whose every op and input spans B and T (or none of them, as a bias)
 * tiles over B·T rows of C: a tile is a few rows, not a whole [T, C] slab per op, which
 * for a long T did not stay in cache. A [T, C] input keeps B and T apart (tiles of one
 * b), and both give the op-by-op values. */
void test_fused_group_tiles_over_every_leading_axis(void)
{
    int64_t sp[3] = {8, 64, 512}, tc[2] = {64, 512}, c1[1] = {512};
    pml_view x = t_new(PML_F32, 3, sp), bias = t_new(PML_F32, 1, c1), pos = t_new(PML_F32, 2, tc);
    pml_view y = t_new(PML_F32, 3, sp), ref = t_new(PML_F32, 3, sp), tmp = t_new(PML_F32, 3, sp);
    t_fill_rand(&x, -2, 2), t_fill_rand(&bias, -1, 1), t_fill_rand(&pos, -1, 1);
    for (int with_pos = 0; with_pos < 2; with_pos++) {
        pml_view add_in[2] = {x, with_pos ? pos : bias}, tanh_in[1] = {tmp};
        t_run_ok(PML_OP_ADD, add_in, 2, &tmp, NULL, 0, 0);
        t_run_ok(PML_OP_TANH, tanh_in, 1, &ref, NULL, 0, 0);
        pml_view g_add[2] = {x, with_pos ? pos : bias};
        pml_cpu_group_op ops[2] = {
            {.call = {.op = PML_OP_ADD, .n_in = 2, .in = g_add, .out = {NULL, PML_F32, 3, {8, 64, 512}}, .threads = 1},
             .from = {-1, -1}},
            {.call = {.op = PML_OP_TANH, .n_in = 1, .in = tanh_in, .out = y, .threads = 1}, .from = {0}}};
        size_t bytes = pml_cpu_group_scratch(ops, 2, 1), slab = 2 * 64 * 512 * 8;
        if (with_pos)
            TCHECK(bytes >= slab, "a [T, C] input keeps B and T apart: a tile is a whole [T, C] (%zu bytes)", bytes);
        else
            TCHECK(bytes < slab / 4, "a bias lets B and T be one axis: %zu bytes of scratch, not %zu", bytes, slab);
        void *scratch = aligned_alloc(64, (bytes + 64) & ~(size_t)63);
        pml_err err = {0};
        TCHECK(pml_cpu_run_group(ops, 2, NULL, scratch, bytes, &err) == PML_OK, "run_group: %s", err.msg);
        int64_t m = t_numel(&ref);
        double *want = malloc(sizeof(double) * (size_t)m);
        for (int64_t j = 0; j < m; j++) want[j] = t_get(&ref, j);
        TCHECK(t_compare(with_pos ? "tanh(x + pos)" : "tanh(x + bias)", &y, want, 0, 0) == 0, "op-by-op values");
        free(want), free(scratch);
    }
    t_free(&x), t_free(&bias), t_free(&pos), t_free(&y), t_free(&ref), t_free(&tmp);
}

/* Groups the runner cannot take are refused with a status, not run wrongly. */
void test_fused_group_refuses_what_it_cannot_tile(void)
{
    int64_t d[2] = {4, 8}, e[2] = {4, 4};
    pml_view x = t_new(PML_F32, 2, d), y = t_new(PML_F32, 2, d), z = t_new(PML_F32, 2, e);
    t_fill_rand(&x, -1, 1);
    pml_cpu_group_op ops[2] = {{.call = {.op = PML_OP_TANH, .n_in = 1, .in = &x, .out = y}, .from = {-1}},
                               {.call = {.op = PML_OP_DROPOUT, .n_in = 1, .in = &x, .out = y}, .from = {0}}};
    TCHECK(!pml_cpu_group_tileable(ops, 2), "dropout depends on the element's index: not tileable");
    ops[1].call = (pml_op_call){.op = PML_OP_NEG, .n_in = 1, .in = &x, .out = z};
    TCHECK(!pml_cpu_group_tileable(ops, 2), "ops of different shapes: not tileable");
    pml_err err = {0};
    TCHECK(pml_cpu_run_group(ops, 2, NULL, NULL, 0, &err) == PML_ERR_INVALID_ARG && strstr(err.msg, "element-wise"),
           "refused with a message: '%s'", err.msg);
    int64_t first[2] = {0, 1}, e1[2] = {1, 8};
    pml_view w = t_new(PML_F32, 2, e1);
    ops[1].call = (pml_op_call){.op = PML_OP_SUM, .attr = first, .n_attr = 2, .n_in = 1, .in = &y, .out = w};
    TCHECK(!pml_cpu_group_tileable(ops, 2), "a sum over the first axis, which tiles cut: not tileable");
    t_free(&w);
    ops[1].call = (pml_op_call){.op = PML_OP_NEG, .n_in = 1, .in = &x, .out = y};
    TCHECK(pml_cpu_group_tileable(ops, 2), "tanh then neg is tileable");
    TCHECK(pml_cpu_run_group(ops, 2, NULL, NULL, 0, &err) == PML_ERR_INVALID_ARG && strstr(err.msg, "scratch"),
           "too little scratch is refused: '%s'", err.msg);
    t_free(&x), t_free(&y), t_free(&z);
}
