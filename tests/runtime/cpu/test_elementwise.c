/* test_elementwise.c — const, arange, unary, binary, comparisons, where, cast, dropout
 * and causal_mask against naive double-precision references. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "cpu_test.h"
#include "cpu_tests.h"

/* Every unary op of pml/ops.def; ref_unary must have each one's reference (-Wswitch). */
static const pml_opcode unary_ops[] = {
#define PML_OP(...)
#define PML_UNARY(e, ...) PML_OP_##e,
#include "pml/ops.def"
#undef PML_UNARY
#undef PML_OP
};

static double ref_unary(pml_opcode op, double x)
{
    switch (op) {
    case PML_OP_NEG:
        return -x;
    case PML_OP_EXP:
        return exp(x);
    case PML_OP_LOG:
        return log(x);
    case PML_OP_SQRT:
        return sqrt(x);
    case PML_OP_RSQRT:
        return 1 / sqrt(x);
    case PML_OP_TANH:
        return tanh(x);
    case PML_OP_SIGMOID:
        return 1 / (1 + exp(-x));
    case PML_OP_RELU:
        return x < 0 ? 0 : x;
    case PML_OP_ERF:
        return erf(x);
    case PML_OP_RECIP:
        return 1 / x;
    case PML_OP_ABS:
        return fabs(x);
    case PML_OP_GELU_TANH:
        return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
#define PML_CASE(e) case PML_OP_##e:
#define PML_OWN_UNARY
#include "pml/op_cases.h"
        break;
    }
    return NAN;
}

void test_unary_ops_match_libm_in_double(void)
{
    for (size_t o = 0; o < sizeof unary_ops / sizeof unary_ops[0]; o++)
        for (int ti = 0; ti < 2; ti++)
            for (int trial = 0; trial < 6; trial++) {
                int rank = trial == 0 ? 0 : trial == 1 ? 5 : t_int(1, 4);
                int64_t dims[8];
                t_rand_dims(rank, dims, trial == 2 ? 0 : 1, rank == 5 ? 3 : 9);
                pml_view x = t_new(t_float_types[ti], rank, dims), y = t_new(t_float_types[ti], rank, dims);
                t_fill_rand(&x,
                            unary_ops[o] == PML_OP_LOG || unary_ops[o] == PML_OP_SQRT || unary_ops[o] == PML_OP_RSQRT
                                ? 0.01
                                : -4,
                            4);
                int64_t n = t_numel(&x);
                double *ref = malloc(sizeof(double) * (size_t)(n + 1));
                for (int64_t i = 0; i < n; i++) ref[i] = ref_unary(unary_ops[o], t_get(&x, i));
                if (t_run_ok(unary_ops[o], &x, 1, &y, NULL, 0, 0))
                    t_compare_default(pml_op_name(unary_ops[o]), &y, ref);
                free(ref);
                t_free(&x);
                t_free(&y);
            }
}

/* gelu_tanh and gelu_tanh_grad are the stdlib's former GELU in primitives and the
 * backward pass autodiff made of it, fused: each must give the bits of those ops run
 * one by one in f32 (the nodes, in autodiff's order, are written out below), and the
 * gradient must be the derivative (against the f64 formula). */
enum { G_X = -1, G_DY = -2 };
typedef struct gstep {
    pml_opcode op;
    int a, b;  /* an earlier step, G_X, G_DY, or (b only, for a constant) -10 - k */
} gstep;

static const double gelu_consts[] = {0.5, 0.044715, 0.7978845608028654, 1.0};

/* Runs steps over x and dy (f32, n elements); returns the last step's values in `out`. */
static void run_steps(const gstep *st, int n_steps, const pml_view *x, const pml_view *dy, pml_view *out)
{
    pml_view v[32], k[4];
    int64_t none[1] = {0};
    for (int c = 0; c < 4; c++) {
        k[c] = t_new(PML_F32, 0, none);
        t_set(&k[c], 0, (float)gelu_consts[c]);
    }
    for (int i = 0; i < n_steps; i++) {
        pml_view in[2];
        int src[2] = {st[i].a, st[i].b};
        for (int q = 0; q < 2; q++)
            in[q] = src[q] >= 0 ? v[src[q]] : src[q] == G_X ? *x : src[q] == G_DY ? *dy : k[-10 - src[q]];
        v[i] = t_new(PML_F32, x->rank, x->dims);
        t_run_ok(st[i].op, in, pml_op_class_of(st[i].op) == PML_OPC_UNARY ? 1 : 2, &v[i], NULL, 0, 0);
    }
    memcpy(out->data, v[n_steps - 1].data, (size_t)t_numel(out) * 4);
    for (int i = 0; i < n_steps; i++) t_free(&v[i]);
    for (int c = 0; c < 4; c++) t_free(&k[c]);
}

void test_gelu_tanh_gives_the_bits_of_its_definition_in_primitives(void)
{
    /* forward: 0.5 * x * (1 + tanh(k * (x + 0.044715 * x * x * x))) */
    static const gstep fwd[] = {{PML_OP_MUL, G_X, -10}, {PML_OP_MUL, G_X, -11}, {PML_OP_MUL, 1, G_X},
                                {PML_OP_MUL, 2, G_X},   {PML_OP_ADD, G_X, 3},   {PML_OP_MUL, 4, -12},
                                {PML_OP_TANH, 5, 0},    {PML_OP_ADD, 6, -13},   {PML_OP_MUL, 0, 7}};
    /* backward, the nodes autodiff made of it (copies of the forward values first) */
    static const gstep bwd[] = {
        {PML_OP_MUL, G_X, -11}, {PML_OP_MUL, 0, G_X},   {PML_OP_MUL, 1, G_X},   {PML_OP_ADD, G_X, 2},
        {PML_OP_MUL, 3, -12},   {PML_OP_TANH, 4, 0},    {PML_OP_ADD, 5, -13},   {PML_OP_MUL, G_DY, 6},
        {PML_OP_MUL, G_X, -10}, {PML_OP_MUL, G_DY, 8},  {PML_OP_MUL, 5, 5},     {PML_OP_SUB, -13, 10},
        {PML_OP_MUL, 9, 11},    {PML_OP_MUL, 12, -12},  {PML_OP_MUL, 13, G_X},  {PML_OP_MUL, 13, 1},
        {PML_OP_ADD, 13, 15},   {PML_OP_MUL, 14, G_X},  {PML_OP_MUL, 14, 0},    {PML_OP_ADD, 16, 18},
        {PML_OP_MUL, 17, -11},  {PML_OP_ADD, 19, 20},   {PML_OP_MUL, 7, -10},   {PML_OP_ADD, 21, 22}};
    int64_t d[1] = {4099};
    pml_view x = t_new(PML_F32, 1, d), dy = t_new(PML_F32, 1, d), want = t_new(PML_F32, 1, d),
             got = t_new(PML_F32, 1, d);
    t_fill_rand(&x, -9, 9);
    t_fill_rand(&dy, -2, 2);
    t_set(&x, 0, 0), t_set(&x, 1, 1e-4), t_set(&x, 2, -20), t_set(&x, 3, 20);
    run_steps(fwd, sizeof fwd / sizeof *fwd, &x, &dy, &want);
    t_run_ok(PML_OP_GELU_TANH, &x, 1, &got, NULL, 0, 0);
    TCHECK(!memcmp(want.data, got.data, (size_t)d[0] * 4), "gelu_tanh: other bits than its nine primitives");
    run_steps(bwd, sizeof bwd / sizeof *bwd, &x, &dy, &want);
    pml_view in[2] = {x, dy};
    t_run_ok(PML_OP_GELU_TANH_GRAD, in, 2, &got, NULL, 0, 0);
    TCHECK(!memcmp(want.data, got.data, (size_t)d[0] * 4), "gelu_tanh_grad: other bits than autodiff's 24 nodes");
    double *ref = malloc(sizeof(double) * (size_t)d[0]);
    for (int64_t i = 0; i < d[0]; i++) {
        double v = t_get(&x, i), k = sqrt(2 / M_PI), t = tanh(k * (v + 0.044715 * v * v * v));
        ref[i] = t_get(&dy, i) * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * 0.044715 * v * v));
    }
    t_compare_default("gelu_tanh_grad against the derivative", &got, ref);
    free(ref);
    t_free(&x), t_free(&dy), t_free(&want), t_free(&got);
}

static double ref_binary(pml_opcode op, double a, double b)
{
    switch (op) {
    case PML_OP_ADD:
        return a + b;
    case PML_OP_SUB:
        return a - b;
    case PML_OP_MUL:
        return a * b;
    case PML_OP_DIV:
        return a / b;
    case PML_OP_MAXIMUM:
        return a != a || b != b ? NAN : a > b ? a : b;
    case PML_OP_MINIMUM:
        return a != a || b != b ? NAN : a < b ? a : b;
    case PML_OP_POW:
        return pow(a, b);
    case PML_OP_LT:
        return a < b;
    case PML_OP_LE:
        return a <= b;
    case PML_OP_GT:
        return a > b;
    case PML_OP_GE:
        return a >= b;
    case PML_OP_EQ:
        return a == b;
    default:
        return a != b;
    }
}

/* A random output shape and two inputs that broadcast to it: each input drops some
 * leading axes and has some others at size 1 (or is a scalar). */
static void bcast_shapes(int *rank, int64_t *out, int *ra, int64_t *da, int *rb, int64_t *db)
{
    *rank = t_int(0, 5);
    t_rand_dims(*rank, out, 1, *rank >= 4 ? 4 : 7);
    if (t_int(0, 9) == 0 && *rank > 0) out[t_int(0, *rank - 1)] = 0; /* an empty tensor */
    int *rs[2] = {ra, rb};
    int64_t *ds[2] = {da, db};
    for (int s = 0; s < 2; s++) {
        int mode = t_int(0, 5);
        *rs[s] = mode == 0 ? 0 : mode == 1 ? *rank : t_int(0, *rank);
        for (int k = 0; k < *rs[s]; k++) {
            int64_t d = out[*rank - *rs[s] + k];
            ds[s][k] = mode >= 3 && t_int(0, 2) == 0 ? 1 : d;
        }
    }
}

static void check_binary(pml_opcode op, pml_dtype t, int trials)
{
    for (int trial = 0; trial < trials; trial++) {
        int rank, ra, rb;
        int64_t d[8], da[8], db[8];
        bcast_shapes(&rank, d, &ra, da, &rb, db);
        if (trial & 1) { /* the other operand full-sized */
            rb = rank;
            memcpy(db, d, sizeof d);
        }
        pml_view in[2] = {t_new(t, ra, da), t_new(t, rb, db)}, y = t_new(t, rank, d);
        int small = op == PML_OP_POW || op == PML_OP_MUL;
        t_fill_rand(&in[0], op == PML_OP_POW ? 0.1 : -3, small ? 2 : 3);
        t_fill_rand(&in[1], -3, 3);
        if (t == PML_I32 || op >= PML_OP_LT) { /* ties matter for comparisons */
            t_fill_rand(&in[0], -3, 3);
            if (t != PML_I32)
                for (int64_t i = 0; i < t_numel(&in[0]); i++) t_set(&in[0], i, floor(t_get(&in[0], i)));
            if (t != PML_I32)
                for (int64_t i = 0; i < t_numel(&in[1]); i++) t_set(&in[1], i, floor(t_get(&in[1], i)));
        }
        int64_t n = t_numel(&y), idx[8];
        double *ref = malloc(sizeof(double) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++) {
            t_unravel(i, rank, d, idx);
            ref[i] = ref_binary(op, t_get(&in[0], t_bcast_index(&in[0], rank, idx)),
                                t_get(&in[1], t_bcast_index(&in[1], rank, idx)));
        }
        char what[256];
        snprintf(what, sizeof what, "%s %s %s -> %s", pml_op_name(op), t_dims_str(ra, da), t_dims_str(rb, db),
                 t_dims_str(rank, d));
        if (t_run_ok(op, in, 2, &y, NULL, 0, 0)) t_compare_default(what, &y, ref);
        free(ref);
        t_free(&in[0]);
        t_free(&in[1]);
        t_free(&y);
    }
}

void test_binary_ops_broadcast_in_every_position(void)
{
    for (pml_opcode op = PML_OP_ADD; op <= PML_OP_POW; op++) {
        for (int ti = 0; ti < 2; ti++) check_binary(op, t_float_types[ti], 40);
        if (op != PML_OP_DIV && op != PML_OP_POW) check_binary(op, PML_I32, 20);
    }
    /* NaN wins in maximum and minimum, from either side. */
    int64_t two[1] = {2};
    pml_view a = t_new(PML_F32, 1, two), b = t_new(PML_F32, 1, two), y = t_new(PML_F32, 1, two);
    t_set(&a, 0, NAN), t_set(&a, 1, 1), t_set(&b, 0, 1), t_set(&b, 1, NAN);
    pml_view in[2] = {a, b};
    for (pml_opcode op = PML_OP_MAXIMUM; op <= PML_OP_MINIMUM; op++)
        if (t_run_ok(op, in, 2, &y, NULL, 0, 0))
            TCHECK(isnan(t_get(&y, 0)) && isnan(t_get(&y, 1)), "%s does not propagate NaN", pml_op_name(op));
    t_free(&a), t_free(&b), t_free(&y);
}

void test_comparisons_give_one_or_zero_in_the_output_type(void)
{
    pml_dtype types[3] = {PML_F32, PML_F64, PML_I32};
    for (pml_opcode op = PML_OP_LT; op <= PML_OP_NE; op++)
        for (int ti = 0; ti < 3; ti++) check_binary(op, types[ti], 30);
}

void test_where_broadcasts_condition_and_both_values(void)
{
    pml_dtype types[3] = {PML_F32, PML_F64, PML_I32};
    for (int trial = 0; trial < 90; trial++) {
        pml_dtype tc = types[trial % 3], tv = types[(trial / 3) % 3];
        int rank, ra, rb, rc;
        int64_t d[8], da[8], db[8], dc[8], dummy[8];
        bcast_shapes(&rank, d, &ra, da, &rb, db);
        int r2;
        bcast_shapes(&r2, dummy, &rc, dc, &rc, dc);
        /* the condition: a suffix of d, some axes at 1 */
        rc = t_int(0, rank);
        for (int k = 0; k < rc; k++) dc[k] = t_int(0, 1) ? 1 : d[rank - rc + k];
        pml_view in[3] = {t_new(tc, rc, dc), t_new(tv, ra, da), t_new(tv, rb, db)}, y = t_new(tv, rank, d);
        t_fill_rand(&in[0], 0, 1);
        for (int64_t i = 0; i < t_numel(&in[0]); i++)
            t_set(&in[0], i, t_get(&in[0], i) < 0.5 ? 0 : (tc == PML_I32 ? 1 : 0.25));
        t_fill_rand(&in[1], -9, 9);
        t_fill_rand(&in[2], -9, 9);
        int64_t n = t_numel(&y), idx[8];
        double *ref = malloc(sizeof(double) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++) {
            t_unravel(i, rank, d, idx);
            ref[i] = t_get(&in[0], t_bcast_index(&in[0], rank, idx)) != 0
                         ? t_get(&in[1], t_bcast_index(&in[1], rank, idx))
                         : t_get(&in[2], t_bcast_index(&in[2], rank, idx));
        }
        if (t_run_ok(PML_OP_WHERE, in, 3, &y, NULL, 0, 0)) t_compare("where", &y, ref, 0, 0);
        free(ref);
        for (int i = 0; i < 3; i++) t_free(&in[i]);
        t_free(&y);
    }
}

void test_cast_converts_and_saturates_to_i32(void)
{
    pml_dtype types[3] = {PML_F32, PML_F64, PML_I32};
    double special[] = {NAN, INFINITY, -INFINITY, 3e9, -3e9, 2.9, -2.9, 0.5, -0.0, 2147483647.0, -2147483648.0};
    int ns = sizeof special / sizeof special[0];
    for (int from = 0; from < 3; from++)
        for (int to = 0; to < 3; to++) {
            int64_t dims[2] = {3, ns};
            pml_view x = t_new(types[from], 2, dims), y = t_new(types[to], 2, dims);
            t_fill_rand(&x, -1000, 1000);
            if (types[from] != PML_I32)
                for (int i = 0; i < ns; i++) t_set(&x, i, special[i]);
            int64_t n = t_numel(&x);
            double ref[3 * 16];
            for (int64_t i = 0; i < n; i++) {
                double v = t_get(&x, i);
                if (types[to] == PML_I32)
                    v = v != v ? 0 : v >= 2147483647.0 ? 2147483647.0 : v <= -2147483648.0 ? -2147483648.0 : trunc(v);
                else if (types[to] == PML_F32)
                    v = (float)v;
                ref[i] = v;
            }
            int64_t attr[1] = {types[to]};
            if (t_run_ok(PML_OP_CAST, &x, 1, &y, attr, 1, 0)) t_compare("cast", &y, ref, 0, 0);
            t_free(&x);
            t_free(&y);
        }
}

void test_const_and_arange_fill_the_output(void)
{
    pml_dtype types[3] = {PML_F32, PML_F64, PML_I32};
    for (int ti = 0; ti < 3; ti++) {
        int64_t dims[5] = {2, 3, 1, 4, 2}, n = 48;
        double ref[48];
        pml_view y = t_new(types[ti], 5, dims);
        for (int64_t i = 0; i < n; i++) ref[i] = types[ti] == PML_I32 ? -7 : -7.25;
        if (t_run_ok(PML_OP_CONST, NULL, 0, &y, NULL, 0, -7.25)) t_compare("const", &y, ref, 0, 0);
        pml_view s = t_new(types[ti], 0, dims);
        ref[0] = 3;
        if (t_run_ok(PML_OP_CONST, NULL, 0, &s, NULL, 0, 3)) t_compare("const scalar", &s, ref, 0, 0);
        int64_t len[1] = {37};
        pml_view r = t_new(types[ti], 1, len);
        for (int64_t i = 0; i < 37; i++) ref[i] = (double)i;
        if (t_run_ok(PML_OP_ARANGE, NULL, 0, &r, NULL, 0, 0)) t_compare("arange", &r, ref, 0, 0);
        t_free(&y), t_free(&s), t_free(&r);
    }
}

void test_division_by_zero_follows_ieee(void)
{
    for (int ti = 0; ti < 2; ti++) {
        int64_t dims[1] = {4};
        pml_view a = t_new(t_float_types[ti], 1, dims), b = t_new(t_float_types[ti], 0, dims),
                 y = t_new(t_float_types[ti], 1, dims);
        double av[4] = {1, -1, 0, NAN}, ref[4] = {INFINITY, -INFINITY, NAN, NAN};
        for (int i = 0; i < 4; i++) t_set(&a, i, av[i]);
        t_set(&b, 0, 0);
        pml_view in[2] = {a, b};
        if (t_run_ok(PML_OP_DIV, in, 2, &y, NULL, 0, 0)) t_compare("x / 0", &y, ref, 0, 0);
        double lref[4] = {0, NAN, -INFINITY, NAN};
        if (t_run_ok(PML_OP_LOG, &a, 1, &y, NULL, 0, 0)) t_compare("log", &y, lref, 0, 0);
        double rref[4] = {1, -1, INFINITY, NAN};
        if (t_run_ok(PML_OP_RECIP, &a, 1, &y, NULL, 0, 0)) t_compare("recip", &y, rref, 0, 0);
        t_free(&a), t_free(&b), t_free(&y);
    }
}

static pml_status run_dropout(pml_view *x, pml_view *y, double p, uint64_t seed, int64_t key, int threads)
{
    pml_op_call c = {0};
    c.op = PML_OP_DROPOUT;
    c.attr = &key;
    c.n_attr = 1;
    c.fval = p;
    c.n_in = 1;
    c.in = x;
    c.out = *y;
    c.seed = seed;
    c.threads = threads;
    pml_err err = {0};
    pml_status s = pml_cpu_run(&c, &err);
    TCHECK(s == PML_OK, "dropout: %s", err.msg);
    return s;
}

void test_dropout_mask_depends_only_on_seed_key_and_element(void)
{
    for (int ti = 0; ti < 2; ti++) {
        pml_dtype t = t_float_types[ti];
        int64_t dims[3] = {8, 50, 250}, n = 100000;
        pml_view x = t_new(t, 3, dims), y1 = t_new(t, 3, dims), y2 = t_new(t, 3, dims), y3 = t_new(t, 3, dims);
        t_fill_rand(&x, 0.5, 2);
        double p = 0.3, scale = 1 / (1 - p);
        run_dropout(&x, &y1, p, 77, 5, 1);
        run_dropout(&x, &y2, p, 77, 5, 4);
        run_dropout(&x, &y3, p, 77, 6, 1);
        int64_t kept = 0, same_key_diff = 0, other_key_same = 0, bad = 0;
        for (int64_t j = 0; j < n; j++) {
            double a = t_get(&y1, j), b = t_get(&y2, j), c = t_get(&y3, j), xv = t_get(&x, j);
            int keep = (double)pml_rng_uniform_f32(77, 5, (uint64_t)j) >= p;
            kept += a != 0;
            same_key_diff += a != b;
            other_key_same += (a != 0) == (c != 0);
            double want = keep ? xv * scale : 0;
            if (fabs(a - want) > (t == PML_F32 ? 1e-6 : 1e-15) * fabs(want)) bad++;
        }
        TCHECK(bad == 0, "%lld elements differ from the spec (uniform_f32(seed, key, j) >= p, scaled)", (long long)bad);
        TCHECK(same_key_diff == 0, "the mask depends on the thread count (%lld differ)", (long long)same_key_diff);
        /* keep rate 0.7; 6 sigma of a binomial over 1e5 is about 0.0087 */
        double rate = (double)kept / (double)n;
        TCHECK(fabs(rate - 0.7) < 0.0087, "keep rate %.4f, want 0.7", rate);
        /* another key is an independent mask: agreement p^2 + (1-p)^2 = 0.58 */
        double agree = (double)other_key_same / (double)n;
        TCHECK(fabs(agree - 0.58) < 0.01, "another key agrees on %.4f of elements, want 0.58", agree);
        run_dropout(&x, &y1, 0, 9, 1, 1);
        run_dropout(&x, &y2, 1, 9, 1, 1);
        int64_t p0_bad = 0, p1_bad = 0;
        for (int64_t j = 0; j < n; j++) {
            p0_bad += t_get(&y1, j) != t_get(&x, j);
            p1_bad += t_get(&y2, j) != 0;
        }
        TCHECK(p0_bad == 0 && p1_bad == 0, "p = 0 keeps all (%lld differ), p = 1 drops all (%lld kept)",
               (long long)p0_bad, (long long)p1_bad);
        t_free(&x), t_free(&y1), t_free(&y2), t_free(&y3);
    }
}

void test_causal_mask_fills_above_the_diagonal(void)
{
    for (int ti = 0; ti < 2; ti++)
        for (int trial = 0; trial < 10; trial++) {
            int rank = t_int(2, 5);
            int64_t d[8];
            t_rand_dims(rank, d, 1, 4);
            d[rank - 1] = d[rank - 2] = t_int(trial == 0 ? 0 : 1, 9);
            pml_view x = t_new(t_float_types[ti], rank, d), y = t_new(t_float_types[ti], rank, d);
            t_fill_rand(&x, -5, 5);
            int64_t n = t_numel(&x), idx[8];
            double fill = trial & 1 ? -INFINITY : 0;
            double *ref = malloc(sizeof(double) * (size_t)(n + 1));
            for (int64_t i = 0; i < n; i++) {
                t_unravel(i, rank, d, idx);
                ref[i] = idx[rank - 1] > idx[rank - 2] ? fill : t_get(&x, i);
            }
            if (t_run_ok(PML_OP_CAUSAL_MASK, &x, 1, &y, NULL, 0, fill)) t_compare("causal_mask", &y, ref, 0, 0);
            free(ref);
            t_free(&x), t_free(&y);
        }
}

/* f32 exp is elementwise.c's own (no libm call): within one ulp of the correctly rounded
 * e^x on a sweep of every 4099th f32 bit pattern, both signs, every length's tail (n
 * from 1 to 40 exercises the vector loop's masked end), outputs poisoned first; and the
 * edges as expf has them: e^0 = 1, e^-inf = 0, e^inf = inf, NaN stays NaN, 0 below
 * -103.98 and inf above 88.73, denormal results between. Sigmoid, 1 / (1 + e^-x), is
 * built on it: within 2 ulp where e^-x does not overflow. */
void test_f32_exp_is_within_one_ulp_of_the_correctly_rounded_value(void)
{
    enum { N = 1 << 20 };
    float *x = malloc(sizeof(float) * N);
    int64_t dims[1] = {0};
    long checked = 0, off = 0, soff = 0;
    for (uint64_t u0 = 0; x && u0 < (1ull << 32); u0 += (uint64_t)4099 * N) {
        int64_t n = 0;
        for (uint64_t u = u0; u < (1ull << 32) && n < N; u += 4099) memcpy(&x[n++], &(uint32_t){(uint32_t)u}, 4);
        dims[0] = n;
        pml_view in = t_new(PML_F32, 1, dims), y = t_new(PML_F32, 1, dims), s = t_new(PML_F32, 1, dims);
        memcpy(in.data, x, sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++) ((float *)y.data)[i] = ((float *)s.data)[i] = NAN;
        if (!t_run_ok(PML_OP_EXP, &in, 1, &y, NULL, 0, 0) || !t_run_ok(PML_OP_SIGMOID, &in, 1, &s, NULL, 0, 0)) break;
        for (int64_t i = 0; i < n; i++) {
            float v = x[i], e = ((float *)y.data)[i], sg = ((float *)s.data)[i];
            if (isnan(v)) {
                off += !isnan(e), soff += !isnan(sg);
                continue;
            }
            float want = (float)exp((double)v), swant = (float)(1.0 / (1.0 + exp(-(double)v)));
            checked++;
            off += e != want && nextafterf(want, e) != e;
            if (-v < 88.7f) soff += !(fabsf(sg - swant) <= 2 * (nextafterf(swant, INFINITY) - swant));
        }
        t_free(&in), t_free(&y), t_free(&s);
    }
    printf("exp: %ld values, %ld more than one ulp off; sigmoid: %ld more than 2 ulp off\n", checked, off, soff);
    TCHECK(checked > 1000000 && off == 0 && soff == 0, "exp: %ld of %ld off by more than one ulp, sigmoid %ld",
           off, checked, soff);
    /* edges, at every tail length */
    static const float edge[] = {0.0f, -0.0f, -INFINITY, INFINITY, NAN, -104.0f, -103.98f, -103.9f, -100.0f, -87.5f,
                                 88.72f, 88.73f, 89.0f, 1e-30f, -1e-30f, 1.0f, -1.0f, 20.5f, -20.5f, 1e30f, -1e30f};
    enum { E = sizeof edge / sizeof edge[0] };
    for (int64_t n = 1; n <= 40; n++) {
        dims[0] = n;
        pml_view in = t_new(PML_F32, 1, dims), y = t_new(PML_F32, 1, dims);
        for (int64_t i = 0; i < n; i++) ((float *)in.data)[i] = edge[i % E], ((float *)y.data)[i] = 12345.0f;
        if (t_run_ok(PML_OP_EXP, &in, 1, &y, NULL, 0, 0))
            for (int64_t i = 0; i < n; i++) {
                float v = edge[i % E], e = ((float *)y.data)[i], want = (float)exp((double)v);
                int ok = isnan(v) ? isnan(e) : e == want || nextafterf(want, e) == e;
                TCHECK(ok, "exp(%g) at length %lld: %g, want %g", v, (long long)n, e, want);
            }
        t_free(&in), t_free(&y);
    }
    free(x);
}
