/* test_half.c — 16-bit storage (bf16, f16): the conversions round to nearest even
 * (and F16C agrees with the scalar code), and every kind of kernel reading and writing
 * 16-bit storage computes what an f64 reference computes from the same stored inputs,
 * rounded once to the output's dtype: element-wise ops with broadcasting (small calls,
 * and calls large enough to run as one-op tiled groups), reductions (over the last axis
 * in tiles, over the first axis widened), products of odd shapes (transposed, and
 * accumulating into f32), the row loss, casts, layout ops, and a fused group with
 * 16-bit intermediates, which must equal its ops run one by one. Outputs are poisoned
 * first. The tolerance is one unit in the last place of the output's dtype: the f32
 * arithmetic may land on the other side of a rounding tie than f64. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "cpu/convert.h"
#include "cpu_test.h"
#include "cpu_tests.h"
#include "cpu/pool.h"

static const pml_dtype halves[2] = {PML_BF16, PML_F16};

/* Relative size of one unit in the last place. */
static double ulp(pml_dtype t) { return t == PML_BF16 ? 0x1p-7 : t == PML_F16 ? 0x1p-10 : 0x1p-22; }

/* x as the dtype stores it (f32 math: the reference rounds through f32, as kernels do). */
static double stored(pml_dtype t, double x)
{
    float f = (float)x;
    return t == PML_BF16 ? pml_bf16_to_f32(pml_f32_to_bf16(f)) : t == PML_F16 ? pml_f16_to_f32(pml_f32_to_f16(f)) : f;
}

static int compare_stored(const char *what, const pml_view *out, double *ref)
{
    for (int64_t i = 0; i < t_numel(out); i++) ref[i] = stored(out->dtype, ref[i]);
    return t_compare(what, out, ref, 1e-6, 2 * ulp(out->dtype));
}

void test_half_conversions_round_to_nearest_even(void)
{
    /* bf16: 8 bits of precision, f16: 11 and a 5-bit exponent */
    struct { float x; uint16_t bf16, f16; } cases[] = {
        {1.0f, 0x3f80, 0x3c00},
        {1.0f + 0x1p-8f, 0x3f80, 0x3c04},       /* bf16 tie: to even (down); f16 exact */
        {1.0f + 3 * 0x1p-8f, 0x3f82, 0x3c0c},   /* bf16 tie: to even (up); f16 exact */
        {1.0f + 0x1p-11f, 0x3f80, 0x3c00},      /* f16 tie: to even (down) */
        {1.0f + 3 * 0x1p-11f, 0x3f80, 0x3c02},  /* f16 tie: to even (up) */
        {-2.5f, 0xc020, 0xc100},
        {65504.0f, 0x4780, 0x7bff},              /* f16's largest */
        {65519.0f, 0x4780, 0x7bff},
        {65520.0f, 0x4780, 0x7c00},              /* ties to infinity */
        {0x1p-24f, 0x3380, 0x0001},              /* f16's smallest subnormal */
        {0x1p-25f, 0x3300, 0x0000},              /* tie: to even, zero */
        {3 * 0x1p-25f, 0x33c0, 0x0002},          /* tie: to even, two units */
        {0x1p-14f, 0x3880, 0x0400},              /* f16's smallest normal */
        {INFINITY, 0x7f80, 0x7c00},
        {-INFINITY, 0xff80, 0xfc00},
        {3.4028235e38f, 0x7f80, 0x7c00},         /* f32's largest rounds up to infinity in bf16 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint16_t b = pml_f32_to_bf16(cases[i].x), h = pml_f32_to_f16(cases[i].x);
        TCHECK(b == cases[i].bf16, "bf16(%g) = %04x, want %04x", (double)cases[i].x, b, cases[i].bf16);
        TCHECK(h == cases[i].f16, "f16(%g) = %04x, want %04x", (double)cases[i].x, h, cases[i].f16);
    }
    TCHECK(isnan(pml_bf16_to_f32(pml_f32_to_bf16(NAN))) && isnan(pml_f16_to_f32(pml_f32_to_f16(NAN))), "NaN stays");
    /* Every 16-bit pattern widens exactly and narrows back to itself (NaNs to a NaN). */
    for (uint32_t u = 0; u < 65536; u++) {
        float b = pml_bf16_to_f32((uint16_t)u), h = pml_f16_to_f32((uint16_t)u);
        if (b == b) TCHECK(pml_f32_to_bf16(b) == u, "bf16 %04x round trip", u);
        if (h == h) TCHECK(pml_f32_to_f16(h) == u, "f16 %04x round trip", u);
    }
    /* Random f32 bit patterns: the bulk paths (F16C where the CPU has it) give the
     * scalar code's bits, and the result is one of the two neighbours, the nearer. */
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof *x), *back = malloc(N * sizeof *back);
    uint16_t *h = malloc(N * sizeof *h);
    for (int k = 0; k < 2; k++) {
        pml_dtype t = halves[k];
        for (int i = 0; i < N; i++) x[i] = pml_f32_from_bits((uint32_t)t_u64());
        pml_cpu_narrow(h, t, x, N);
        pml_cpu_widen(back, h, t, N);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            uint16_t s = t == PML_BF16 ? pml_f32_to_bf16(x[i]) : pml_f32_to_f16(x[i]);
            if (x[i] != x[i]) {
                bad += back[i] == back[i];
                continue;
            }
            bad += h[i] != s;
            double err = fabs((double)back[i] - (double)x[i]);
            /* the other neighbour is at least as far */
            uint16_t other = (uint16_t)(h[i] + ((double)back[i] < (double)x[i] ? 1 : -1) * ((h[i] & 0x8000) ? -1 : 1));
            float o = t == PML_BF16 ? pml_bf16_to_f32(other) : pml_f16_to_f32(other);
            if (!isinf(back[i]) && (other & 0x7fff) != 0x7fff && o == o && fabs((double)o - (double)x[i]) < err) bad++;
        }
        TCHECK(bad == 0, "%s: %d of %d random values converted wrongly (F16C: %d)", pml_dtype_name(t), bad, N,
               pml_cpu_convert_f16c());
    }
    free(x), free(back), free(h);
}

/* out = op(a, b) with a and b of dtypes ta, tb broadcast (b is a row), out of dtype t. */
static void check_binary(pml_opcode op, pml_dtype t, pml_dtype ta, pml_dtype tb, int64_t rows, int64_t cols)
{
    int64_t da[2] = {rows, cols}, db[1] = {cols};
    pml_view a = t_new(ta, 2, da), b = t_new(tb, 1, db), o = t_new(t, 2, da);
    t_fill_rand(&a, -3, 3);
    t_fill_rand(&b, 0.5, 2);
    pml_view in[2] = {a, b};
    if (t_run_ok(op, in, 2, &o, NULL, 0, 0)) {
        double *ref = malloc(sizeof(double) * (size_t)(rows * cols));
        for (int64_t i = 0; i < rows * cols; i++) {
            double x = t_get(&a, i), y = t_get(&b, i % cols);
            ref[i] = op == PML_OP_ADD ? x + y : op == PML_OP_MUL ? x * y : x / y;
        }
        char what[96];
        snprintf(what, sizeof what, "%s %s=%s,%s %s", pml_op_name(op), pml_dtype_name(t), pml_dtype_name(ta),
                 pml_dtype_name(tb), t_dims_str(2, da));
        TCHECK(compare_stored(what, &o, ref) == 0, "%s", what);
        free(ref);
    }
    t_free(&a), t_free(&b), t_free(&o);
}

static void check_unary(pml_dtype t, int64_t n)
{
    int64_t d[2] = {n / 7, 7};
    pml_view x = t_new(t, 2, d), o = t_new(t, 2, d);
    t_fill_rand(&x, -3, 3);
    if (t_run_ok(PML_OP_TANH, &x, 1, &o, NULL, 0, 0)) {
        double *ref = malloc(sizeof(double) * (size_t)t_numel(&x));
        for (int64_t i = 0; i < t_numel(&x); i++) ref[i] = tanh(t_get(&x, i));
        TCHECK(compare_stored("tanh", &o, ref) == 0, "tanh %s over %lld elements", pml_dtype_name(t), (long long)n);
        free(ref);
    }
    t_free(&x), t_free(&o);
}

/* sum over `axis` of a 16-bit [R, C] into f32 (the precision table's reductions). */
static void check_sum(pml_dtype t, int64_t R, int64_t C, int axis)
{
    int64_t d[2] = {R, C}, od[2] = {axis ? R : 1, axis ? 1 : C};
    pml_view x = t_new(t, 2, d), o = t_new(PML_F32, 2, od);
    t_fill_rand(&x, -1, 1);
    int64_t attr[2] = {axis, 1};
    if (t_run_ok(PML_OP_SUM, &x, 1, &o, attr, 2, 0)) {
        double *ref = calloc((size_t)(axis ? R : C), sizeof(double));
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < C; c++) ref[axis ? r : c] += t_get(&x, r * C + c);
        TCHECK(t_compare("sum", &o, ref, 1e-4, 1e-5) == 0, "sum of %s %s over axis %d", pml_dtype_name(t),
               t_dims_str(2, d), axis);
        free(ref);
    }
    t_free(&x), t_free(&o);
}

/* out[M, N] (+)= op(a) op(b), 16-bit operands, f32 accumulation. */
static void check_matmul(pml_dtype t, pml_dtype to, int64_t M, int64_t K, int64_t N, int ta, int tb, int acc)
{
    int64_t da[2] = {ta ? K : M, ta ? M : K}, db[2] = {tb ? N : K, tb ? K : N}, dc[2] = {M, N};
    pml_view a = t_new(t, 2, da), b = t_new(t, 2, db), c = t_new(to, 2, dc);
    t_fill_rand(&a, -1, 1);
    t_fill_rand(&b, -1, 1);
    double *ref = malloc(sizeof(double) * (size_t)(M * N));
    if (acc) t_fill_rand(&c, -1, 1);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = acc ? t_get(&c, i * N + j) : 0;
            for (int64_t k = 0; k < K; k++)
                s += t_get(&a, ta ? k * M + i : i * K + k) * t_get(&b, tb ? j * K + k : k * N + j);
            ref[i * N + j] = s;
        }
    pml_view in[2] = {a, b};
    pml_op_call call = {.op = PML_OP_MATMUL, .n_in = 2, .in = in, .out = c, .trans = {(uint8_t)ta, (uint8_t)tb},
                        .accumulate = (uint8_t)acc, .threads = 1};
    pml_err err = {0};
    pml_status s = pml_cpu_run(&call, &err);
    TCHECK(s == PML_OK, "matmul: %s", err.msg);
    char what[96];
    snprintf(what, sizeof what, "matmul %s x %s -> %s%s%s%s", pml_dtype_name(t), t_dims_str(2, da),
             pml_dtype_name(to), ta ? " a^T" : "", tb ? " b^T" : "", acc ? " +=" : "");
    if (!s) TCHECK(compare_stored(what, &c, ref) == 0, "%s", what);
    free(ref);
    t_free(&a), t_free(&b), t_free(&c);
}

static void check_xent(pml_dtype t, int64_t rows, int64_t V)
{
    int64_t dl[2] = {rows, V}, dr[1] = {rows};
    pml_view x = t_new(t, 2, dl), lab = t_new(PML_I32, 1, dr), o = t_new(PML_F32, 1, dr);
    t_fill_rand(&x, -4, 4);
    t_fill_rand(&lab, 0, (double)V - 1);
    pml_view in[2] = {x, lab};
    if (t_run_ok(PML_OP_XENT, in, 2, &o, NULL, 0, 0)) {
        double *ref = malloc(sizeof(double) * (size_t)rows);
        for (int64_t r = 0; r < rows; r++) {
            double m = -INFINITY, s = 0;
            for (int64_t v = 0; v < V; v++) m = fmax(m, t_get(&x, r * V + v));
            for (int64_t v = 0; v < V; v++) s += exp(t_get(&x, r * V + v) - m);
            ref[r] = m + log(s) - t_get(&x, r * V + (int64_t)t_get(&lab, r));
        }
        TCHECK(t_compare("xent", &o, ref, 1e-5, 1e-5) == 0, "xent of %s logits %s", pml_dtype_name(t),
               t_dims_str(2, dl));
        free(ref);
    }
    t_free(&x), t_free(&lab), t_free(&o);
}

/* cast f32 -> 16 bits -> f32, and a permute of 16-bit values moving bytes only. */
static void check_cast_and_permute(pml_dtype t)
{
    int64_t d[2] = {13, 11}, dt[2] = {11, 13};
    pml_view x = t_new(PML_F32, 2, d), h = t_new(t, 2, d), back = t_new(PML_F32, 2, d), p = t_new(t, 2, dt);
    t_fill_rand(&x, -100, 100);
    int64_t to = t, to32 = PML_F32, perm[2] = {1, 0};
    double ref[13 * 11], pref[13 * 11];
    for (int i = 0; i < 13 * 11; i++) ref[i] = t_get(&x, i);
    if (t_run_ok(PML_OP_CAST, &x, 1, &h, &to, 1, 0)) TCHECK(compare_stored("cast to 16", &h, ref) == 0, "cast");
    for (int i = 0; i < 13 * 11; i++) ref[i] = t_get(&h, i);
    if (t_run_ok(PML_OP_CAST, &h, 1, &back, &to32, 1, 0))
        TCHECK(t_compare("cast back", &back, ref, 0, 0) == 0, "widening is exact");
    for (int i = 0; i < 11; i++)
        for (int j = 0; j < 13; j++) pref[i * 13 + j] = t_get(&h, j * 11 + i);
    if (t_run_ok(PML_OP_PERMUTE, &h, 1, &p, perm, 2, 0))
        TCHECK(t_compare("permute", &p, pref, 0, 0) == 0, "permute moves 16-bit elements");
    t_free(&x), t_free(&h), t_free(&back), t_free(&p);
}

void test_half_storage_kernels_match_the_f64_reference(void)
{
    t_seed(21);
    for (int k = 0; k < 2; k++) {
        pml_dtype t = halves[k];
        check_binary(PML_OP_ADD, t, t, t, 37, 19);
        check_binary(PML_OP_MUL, t, PML_F32, t, 5, 3);   /* an f32 operand beside a 16-bit one */
        check_binary(PML_OP_DIV, PML_F32, t, t, 203, 129); /* 16-bit in, f32 out, as one-op tiles */
        check_unary(t, 7 * 13);
        check_unary(t, 7 * 5003); /* past the direct size: a one-op tiled group */
        check_sum(t, 37, 23, 1);
        check_sum(t, 300, 129, 1);
        check_sum(t, 41, 17, 0);
        check_matmul(t, t, 37, 53, 29, 0, 0, 0);
        check_matmul(t, t, 1, 67, 3, 1, 0, 0);
        check_matmul(t, t, 33, 17, 65, 0, 1, 0);
        check_matmul(t, PML_F32, 19, 31, 23, 1, 1, 1); /* a weight gradient into an f32 accumulator */
        check_xent(t, 9, 37);
        check_cast_and_permute(t);
    }
}

/* A chain with 16-bit intermediates run as a fused group gives the bits of its ops run
 * one by one on whole tensors: rounding happens where an op stores, fused or not. */
void test_half_fused_group_rounds_as_op_by_op(void)
{
    t_seed(22);
    for (int k = 0; k < 2; k++) {
        pml_dtype t = halves[k];
        int64_t d[2] = {301, 37}, dr[1] = {37};
        pml_view x = t_new(t, 2, d), b = t_new(PML_F32, 1, dr), ref[3], got[3];
        t_fill_rand(&x, -2, 2);
        t_fill_rand(&b, -1, 1);
        pml_opcode ops[3] = {PML_OP_MUL, PML_OP_TANH, PML_OP_ADD};
        pml_dtype dts[3] = {t, t, PML_F32};
        pml_view rin[3][2], gin[3][2];
        pml_cpu_group_op g[3];
        memset(g, 0, sizeof g);
        for (int i = 0; i < 3; i++) {
            ref[i] = t_new(dts[i], 2, d);
            got[i] = t_new(dts[i], 2, d);
        }
        rin[0][0] = x, rin[0][1] = x; /* x * x */
        rin[1][0] = ref[0];           /* tanh */
        rin[2][0] = ref[1], rin[2][1] = b;
        gin[0][0] = x, gin[0][1] = x;
        gin[2][1] = b;
        int n_in[3] = {2, 1, 2};
        int16_t from[3][3] = {{-1, -1, -1}, {0, -1, -1}, {1, -1, -1}};
        for (int i = 0; i < 3; i++) {
            t_run_ok(ops[i], rin[i], n_in[i], &ref[i], NULL, 0, 0);
            g[i].call = (pml_op_call){.op = ops[i], .n_in = n_in[i], .in = gin[i], .out = got[i], .threads = 1};
            memcpy(g[i].from, from[i], sizeof from[i]);
        }
        g[0].call.out.data = g[1].call.out.data = NULL; /* intermediates */
        size_t bytes = pml_cpu_group_scratch(g, 3, 1);
        void *scratch = aligned_alloc(64, (bytes + 64) & ~(size_t)63);
        pml_err err = {0};
        TCHECK(pml_cpu_run_group(g, 3, NULL, scratch, bytes, &err) == PML_OK, "group: %s", err.msg);
        TCHECK(memcmp(ref[2].data, got[2].data, (size_t)t_numel(&ref[2]) * 4) == 0, "%s: fused differs from op by op",
               pml_dtype_name(t));
        free(scratch);
        t_free(&x), t_free(&b);
        for (int i = 0; i < 3; i++) t_free(&ref[i]), t_free(&got[i]);
    }
}

/* A flat chain (whole tensors and scalars only, as GELU's) with 16-bit and f32 values
 * mixed runs a strip of every op at a time (cpu/group.c): the same bits as its ops run
 * one by one, each widening its 16-bit operands and rounding its output (calls this
 * small widen whole tensors, not through a group), on one thread and on three. */
void test_half_flat_group_runs_in_strips_with_op_by_op_bits(void)
{
    t_seed(23);
    enum { N = 8 };
    for (int k = 0; k < 2; k++) {
        pml_dtype t = halves[k];
        int64_t d[2] = {3, 1001}, none[1] = {0};
        pml_view x = t_new(t, 2, d), y = t_new(PML_F32, 2, d), c = t_new(t, 0, none), e = t_new(PML_F32, 0, none);
        t_fill_rand(&x, -2, 2), t_fill_rand(&y, -1, 1), t_fill_rand(&c, 0.5, 1.5), t_fill_rand(&e, -1, 1);
        /* op, output dtype, inputs (>= 0: an earlier op; -1 x, -2 y, -3 c, -4 e), kept */
        static const struct {
            pml_opcode op;
            int half_out, a, b, n_in, kept;
        } chain[N] = {{PML_OP_MUL, 1, -1, -1, 2, 0}, {PML_OP_TANH, 1, 0, 0, 1, 0}, {PML_OP_ADD, 0, 1, -2, 2, 0},
                      {PML_OP_MUL, 1, 2, -3, 2, 1},  {PML_OP_SUB, 0, -4, 3, 2, 0}, {PML_OP_SIGMOID, 1, 4, 0, 1, 0},
                      {PML_OP_MUL, 0, 5, -1, 2, 1},  {PML_OP_DIV, 1, 6, 0, 2, 1}};
        pml_view outside[4] = {x, y, c, e}, ref[N], got[N], rin[N][2], gin[N][2];
        pml_cpu_group_op g[N];
        memset(g, 0, sizeof g);
        for (int i = 0; i < N; i++) {
            pml_dtype dt = chain[i].half_out ? t : PML_F32;
            ref[i] = t_new(dt, 2, d), got[i] = t_new(dt, 2, d);
            memset(got[i].data, 0xff, (size_t)t_numel(&got[i]) * pml_dtype_size(dt)); /* poisoned */
            int src[2] = {chain[i].a, chain[i].b};
            for (int q = 0; q < chain[i].n_in; q++) {
                rin[i][q] = src[q] >= 0 ? ref[src[q]] : outside[-src[q] - 1];
                gin[i][q] = src[q] >= 0 ? got[src[q]] : outside[-src[q] - 1];
                g[i].from[q] = (int16_t)(src[q] >= 0 ? src[q] : -1);
            }
            t_run_ok(chain[i].op, rin[i], chain[i].n_in, &ref[i], NULL, 0, 0);
            g[i].call =
                (pml_op_call){.op = chain[i].op, .n_in = chain[i].n_in, .in = gin[i], .out = got[i], .threads = 1};
            if (!chain[i].kept) g[i].call.out.data = NULL;
        }
        for (int threads = 1; threads <= 3; threads += 2) {
            pml_cpu_pool *pool = NULL;
            pml_err err = {0};
            if (threads > 1) TCHECK(pml_cpu_pool_create(threads, &pool, &err) == PML_OK, "pool: %s", err.msg);
            size_t bytes = pml_cpu_group_scratch(g, N, threads);
            void *scratch = aligned_alloc(64, (bytes + 64) & ~(size_t)63);
            TCHECK(pml_cpu_run_group(g, N, pool, scratch, bytes, &err) == PML_OK, "group: %s", err.msg);
            for (int i = 0; i < N; i++)
                if (chain[i].kept)
                    TCHECK(!memcmp(ref[i].data, got[i].data, (size_t)t_numel(&got[i]) * pml_dtype_size(got[i].dtype)),
                           "%s chain, op %d (%s) on %d thread(s): strips differ from op by op", pml_dtype_name(t), i,
                           pml_op_name(chain[i].op), threads);
            free(scratch);
            pml_cpu_pool_destroy(pool);
        }
        for (int i = 0; i < N; i++) t_free(&ref[i]), t_free(&got[i]);
        for (int q = 0; q < 4; q++) t_free(&outside[q]);
    }
}

/* ---- the bf16 GEMM (cpu/gemm_bf16.c) ------------------------------------------------
 * C (f32 or bf16) (+)= op(A) op(B) on bf16 A, B, against an f64 reference from the same
 * stored values, on odd shapes (1, 7, 33, 65, 127: none a multiple of a kernel's
 * block), transposed operands, leading dimensions past the row and accumulation. C is
 * poisoned with NaN first (but for accumulation), and the padding past each row of C
 * must keep its poison. Tolerance: a product of two bf16 numbers (8 significant bits
 * each) is exact in f32 (24), so the only error is the f32 sum's order and rounding:
 * |c - ref| <= k 2^-24 (sum |a b| + |c0|) (the classic bound for a recursive sum,
 * without its second-order term), doubled for slack, and, for a bf16 C, one rounding
 * to bf16: 2^-8 |ref| (half an ulp is 2^-9 relative; oneDNN may round the f32 sum once
 * more, so a whole ulp). */
static void check_gemm_bf16(int64_t m, int64_t n, int64_t k, int ta, int tb, int acc, int c_bf16, int *ran)
{
    int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
    int64_t ar = ta ? k : m, br = tb ? n : k;
    uint16_t *a = malloc(sizeof *a * (size_t)(ar * lda)), *b = malloc(sizeof *b * (size_t)(br * ldb));
    size_t es = c_bf16 ? 2 : 4;
    char *c = malloc(es * (size_t)(m * ldc));
    double *ref = malloc(sizeof *ref * (size_t)(m * n)), *mag = malloc(sizeof *mag * (size_t)(m * n));
    for (int64_t i = 0; i < ar * lda; i++) a[i] = pml_f32_to_bf16((float)(2 * t_unit() - 1));
    for (int64_t i = 0; i < br * ldb; i++) b[i] = pml_f32_to_bf16((float)(2 * t_unit() - 1));
    for (int64_t i = 0; i < m * ldc; i++) {
        float v = acc && i % ldc < n ? (float)(2 * t_unit() - 1) : NAN;
        if (c_bf16)
            ((uint16_t *)c)[i] = pml_f32_to_bf16(v);
        else
            ((float *)c)[i] = v;
    }
#define CGET(i) (c_bf16 ? (double)pml_bf16_to_f32(((uint16_t *)c)[i]) : (double)((float *)c)[i])
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = acc ? CGET(i * ldc + j) : 0, g = fabs(s);
            for (int64_t p = 0; p < k; p++) {
                double x = pml_bf16_to_f32(a[ta ? p * lda + i : i * lda + p]) *
                           (double)pml_bf16_to_f32(b[tb ? j * ldb + p : p * ldb + j]);
                s += x, g += fabs(x);
            }
            ref[i * n + j] = s, mag[i * n + j] = g;
        }
    int done = pml_cpu_gemm_bf16((pml_cpu_gemm_op){ta, tb, acc}, m, n, k, a, lda, b, ldb, c, c_bf16, ldc, 1);
    TCHECK(done == pml_cpu_gemm_bf16_ready(), "bf16 GEMM %lldx%lldx%lld: %s, but ready says %d", (long long)m,
           (long long)n, (long long)k, done ? "ran" : "declined", pml_cpu_gemm_bf16_ready());
    *ran += done;
    int bad = 0;
    for (int64_t i = 0; done && i < m; i++)
        for (int64_t j = 0; j < ldc; j++) {
            double got = CGET(i * ldc + j);
            if (j >= n) { /* padding: untouched */
                if (!isnan(got) && bad++ < 3)
                    TCHECK(0, "C[%lld][%lld] past n = %lld was written", (long long)i, (long long)j, (long long)n);
                continue;
            }
            double r = ref[i * n + j], tol = 2 * (double)k * 0x1p-24 * mag[i * n + j] + (c_bf16 ? 0x1p-8 * fabs(r) : 0);
            if (!(fabs(got - r) <= tol) && bad++ < 3)
                TCHECK(0, "bf16 GEMM %lldx%lldx%lld%s%s%s -> %s: C[%lld][%lld] = %.9g, f64 %.9g (tolerance %.3g)",
                       (long long)m, (long long)n, (long long)k, ta ? " A^T" : "", tb ? " B^T" : "", acc ? " +=" : "",
                       c_bf16 ? "bf16" : "f32", (long long)i, (long long)j, got, r, tol);
        }
#undef CGET
    t_checks++;
    free(a), free(b), free(c), free(ref), free(mag);
}

void test_bf16_gemm_matches_the_f64_reference_on_odd_shapes(void)
{
    static const int64_t sizes[] = {1, 7, 33, 65, 127};
    int ran = 0, calls = 0;
    printf("%s\n", pml_cpu_gemm_bf16_status());
    for (int mi = 0; mi < 5; mi++)
        for (int ni = 0; ni < 5; ni++) {
            int64_t m = sizes[mi], n = sizes[ni], k = sizes[(mi + 2 * ni) % 5];
            int v = (mi * 5 + ni) % 8; /* every combination of ta, tb, acc over the shapes */
            check_gemm_bf16(m, n, k, v & 1, (v >> 1) & 1, (v >> 2) & 1, (mi + ni) % 2, &ran);
            calls++;
        }
    check_gemm_bf16(127, 65, 1000, 1, 0, 1, 0, &ran); /* a long sum: the bound grows with k */
    calls++;
    TCHECK(ran == 0 || ran == calls, "the bf16 GEMM ran %d of %d products", ran, calls);
}

/* Where oneDNN's kernels reach AVX512_BF16 the bf16 GEMM is used; below (a CPU without
 * it, or ONEDNN_MAX_CPU_ISA=AVX512_CORE: a ctest of its own runs this test so) it is
 * not, and its status line says why. */
void test_bf16_gemm_is_used_exactly_where_onednn_has_avx512_bf16(void)
{
    const char *st = pml_cpu_gemm_bf16_status();
    int want = strcmp(pml_cpu_blas_name(), "onednn") == 0 && pml_cpu_gemm_isa() >= PML_ISA_AVX512_BF16;
    printf("oneDNN ISA %s; %s\n", pml_cpu_isa_name(pml_cpu_gemm_isa()), st);
    TCHECK(pml_cpu_gemm_bf16_ready() == want, "bf16 GEMM ready %d, expected %d (%s)", pml_cpu_gemm_bf16_ready(), want,
           st);
    TCHECK(strncmp(st, want ? "bf16 products: oneDNN " : "f32 products of the widened bf16 operands: ",
                   want ? 22 : 43) == 0,
           "status line: %s", st);
    const char *env = getenv("PML_TEST_EXPECT_BF16_GEMM");
    if (env)
        TCHECK(atoi(env) == want, "PML_TEST_EXPECT_BF16_GEMM=%s, but the bf16 GEMM is %sused", env, want ? "" : "not ");
}

/* A row group with 16-bit inputs, intermediates and outputs (layernorm with a 16-bit
 * scale row, then log-softmax) gives the bits of its ops run one by one on whole
 * tensors, at one thread and at two: an intermediate kept in scratch holds f32 rounded
 * to its dtype (cpu/group.c), which must be what storing it and widening it again
 * reads. Odd shapes, several tiles, every output poisoned first; some outputs are
 * materialised and read by later ops, the others live in scratch only. */
void test_half_row_group_with_16_bit_inputs_and_outputs_equals_op_by_op(void)
{
    t_seed(23);
    pml_cpu_pool *pool = NULL;
    pml_err err = {0};
    TCHECK(pml_cpu_pool_create(2, &pool, &err) == PML_OK, "pool: %s", err.msg);
    for (int k = 0; k < 2; k++) {
        pml_dtype t = halves[k];
        for (int s = 0; s < 2; s++) {
            int64_t full[3] = {s ? 5 : 3, s ? 131 : 67, s ? 45 : 301}, red[3] = {full[0], full[1], 1},
                    row[1] = {full[2]}, last[2] = {2, 1}, zero[1] = {0};
            pml_view x = t_new(t, 3, full), g = t_new(t, 1, row), eps = t_new(PML_F32, 0, zero);
            t_fill_rand(&x, -3, 3);
            t_fill_rand(&g, 0.5, 2);
            t_fill_rand(&eps, 1e-5, 1e-5);
            /* op, inputs (>= 0: an earlier op; -1: x; -2: eps; -3: g), reduced output? */
            static const struct {
                pml_opcode op;
                int a, b, n_in, narrow;
            } chain[] = {{PML_OP_MEAN, -1, 0, 1, 1}, {PML_OP_SUB, -1, 0, 2, 0},  {PML_OP_MUL, 1, 1, 2, 0},
                         {PML_OP_MEAN, 2, 0, 1, 1},  {PML_OP_ADD, 3, -2, 2, 1},  {PML_OP_RSQRT, 4, 0, 1, 1},
                         {PML_OP_MUL, 1, 5, 2, 0},   {PML_OP_MUL, 6, -3, 2, 0},  {PML_OP_MAX, 7, 0, 1, 1},
                         {PML_OP_SUB, 7, 8, 2, 0},   {PML_OP_EXP, 9, 0, 1, 0},   {PML_OP_SUM, 10, 0, 1, 1},
                         {PML_OP_LOG, 11, 0, 1, 1},  {PML_OP_SUB, 9, 12, 2, 0}};
            enum { N = sizeof chain / sizeof chain[0] };
            pml_cpu_group_op ops[N];
            pml_view ref[N], got[N], rin[N][2], gin[N][2];
            for (int i = 0; i < N; i++) {
                pml_opcode op = chain[i].op;
                int reduction = op == PML_OP_MEAN || op == PML_OP_MAX || op == PML_OP_SUM;
                int src[2] = {chain[i].a, chain[i].b};
                ref[i] = t_new(t, 3, chain[i].narrow ? red : full);
                got[i] = t_new(t, 3, chain[i].narrow ? red : full);
                memset(&ops[i], 0, sizeof ops[i]);
                for (int j = 0; j < chain[i].n_in; j++) {
                    const pml_view *outside = src[j] == -1 ? &x : src[j] == -2 ? &eps : &g;
                    rin[i][j] = src[j] >= 0 ? ref[src[j]] : *outside;
                    gin[i][j] = src[j] >= 0 ? got[src[j]] : *outside;
                    ops[i].from[j] = (int16_t)(src[j] >= 0 ? src[j] : -1);
                }
                t_run_ok(op, rin[i], chain[i].n_in, &ref[i], reduction ? last : NULL, reduction ? 2 : 0, 0);
                ops[i].call = (pml_op_call){.op = op, .attr = reduction ? last : NULL, .n_attr = reduction ? 2 : 0,
                                            .n_in = chain[i].n_in, .in = gin[i], .out = got[i], .threads = 1};
                if (i % 3 != 1 && i != N - 1) ops[i].call.out.data = NULL; /* most live in scratch only */
            }
            TCHECK(pml_cpu_group_tileable(ops, N), "the chain forms a row group");
            for (int threads = 1; threads <= 2; threads++) {
                pml_cpu_pool *p = threads > 1 ? pool : NULL;
                size_t bytes = pml_cpu_group_scratch(ops, N, threads);
                void *scratch = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
                for (int i = 0; i < N; i++) /* poison again: the previous run wrote them */
                    for (int64_t e = 0; ops[i].call.out.data && e < t_numel(&got[i]); e++) t_set(&got[i], e, NAN);
                TCHECK(pml_cpu_run_group(ops, N, p, scratch, bytes, &err) == PML_OK, "group: %s", err.msg);
                for (int i = 0; i < N; i++)
                    if (ops[i].call.out.data)
                        TCHECK(memcmp(ref[i].data, got[i].data, (size_t)t_numel(&ref[i]) * 2) == 0,
                               "%s, %s, %d thread(s): op %d (%s) fused differs from op by op", pml_dtype_name(t),
                               t_dims_str(3, full), threads, i, pml_op_name(chain[i].op));
                free(scratch);
            }
            t_free(&x), t_free(&g), t_free(&eps);
            for (int i = 0; i < N; i++) t_free(&ref[i]), t_free(&got[i]);
        }
    }
    pml_cpu_pool_destroy(pool);
}

/* Random bit patterns in every element of v (bf16 or f32). */
static void random_bits(pml_view *v)
{
    for (int64_t i = 0; i < t_numel(v); i++)
        if (v->dtype == PML_BF16)
            ((uint16_t *)v->data)[i] = (uint16_t)t_u64();
        else
            ((uint32_t *)v->data)[i] = (uint32_t)t_u64();
}

/* A binary op whose operands and output are bf16 and f32 (every mix) converts in
 * registers (cpu/elementwise_half.c) and must give the bits of widening its operands,
 * running the f32 kernel and rounding the output (the path every other 16-bit op
 * takes): every binary op, random bit patterns (NaNs, infinities, subnormals and ties
 * included; where both operands are NaN the result may carry either one's payload, as
 * the compiler orders a commutative op's operands), odd shapes, the broadcasts (a row,
 * a column, a scalar, both sides), calls small and large, outputs poisoned first. (f16 keeps the widening path: F16C's conversions
 * keep a NaN's payload where core/half.h's make one NaN, so only that path gives
 * today's f16 bits on a CPU with F16C.) */
void test_half_bf16_binary_ops_convert_in_registers_with_the_widened_bits(void)
{
    t_seed(24);
    static const pml_opcode ops[] = {PML_OP_ADD, PML_OP_SUB,     PML_OP_MUL,     PML_OP_DIV, PML_OP_POW,
                                     PML_OP_MAXIMUM, PML_OP_MINIMUM, PML_OP_LT, PML_OP_LE, PML_OP_GT,
                                     PML_OP_GE,  PML_OP_EQ,      PML_OP_NE, PML_OP_GELU_TANH_GRAD};
    /* shapes of a and b against an output of {rows, cols} */
    static const struct { int ra, rb; int64_t a[2], b[2]; } forms[] = {
        {2, 2, {-1, -1}, {-1, -1}}, {2, 1, {-1, -1}, {-1, 0}}, {1, 2, {-1, 0}, {-1, -1}},
        {2, 2, {-1, -1}, {-2, 1}},  {2, 0, {-1, -1}, {0, 0}},  {2, 2, {-2, 1}, {1, -1}},
    };
    static const int64_t sizes[][2] = {{7, 37}, {301, 67}};
    for (int mix = 1; mix < 8; mix++) { /* bit 2: a is bf16, bit 1: b, bit 0: the output */
        pml_dtype ta = mix & 4 ? PML_BF16 : PML_F32, tb = mix & 2 ? PML_BF16 : PML_F32, t = mix & 1 ? PML_BF16 : PML_F32;
        for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
            for (size_t f = 0; f < sizeof forms / sizeof *forms; f++)
                for (int z = 0; z < 2; z++) {
                    int64_t dout[2] = {sizes[z][0], sizes[z][1]}, da[2], db[2];
                    for (int d = 0; d < 2; d++) { /* -1: cols; -2: rows (a column's first axis) */
                        int64_t x = forms[f].a[d], y = forms[f].b[d];
                        da[d] = x == -1 ? dout[forms[f].ra == 1 ? 1 : d] : x == -2 ? dout[0] : x;
                        db[d] = y == -1 ? dout[forms[f].rb == 1 ? 1 : d] : y == -2 ? dout[0] : y;
                    }
                    pml_view a = t_new(ta, forms[f].ra, da), b = t_new(tb, forms[f].rb, db), got = t_new(t, 2, dout);
                    pml_view wa = t_new(PML_F32, a.rank, da), wb = t_new(PML_F32, b.rank, db),
                             wo = t_new(PML_F32, 2, dout), want = t_new(t, 2, dout);
                    random_bits(&a), random_bits(&b);
                    pml_cpu_widen(wa.data, a.data, ta, (size_t)t_numel(&a));
                    pml_cpu_widen(wb.data, b.data, tb, (size_t)t_numel(&b));
                    pml_view win[2] = {wa, wb}, in[2] = {a, b};
                    t_run_ok(ops[o], win, 2, &wo, NULL, 0, 0);
                    pml_cpu_narrow(want.data, t, wo.data, (size_t)t_numel(&wo));
                    t_run_ok(ops[o], in, 2, &got, NULL, 0, 0);
                    int64_t bad = 0;
                    for (int64_t i = 0; i < t_numel(&got); i++) {
                        int nan = t_get(&got, i) != t_get(&got, i) && t_get(&want, i) != t_get(&want, i);
                        bad += !nan && memcmp((char *)got.data + i * (int64_t)pml_dtype_size(t),
                                              (char *)want.data + i * (int64_t)pml_dtype_size(t), pml_dtype_size(t));
                    }
                    TCHECK(bad == 0, "%s %s %s to %s over %s (form %zu): %lld differ from widen, f32 op, round",
                           pml_op_name(ops[o]), pml_dtype_name(ta), pml_dtype_name(tb), pml_dtype_name(t),
                           t_dims_str(2, dout), f, (long long)bad);
                    t_free(&a), t_free(&b), t_free(&got), t_free(&wa), t_free(&wb), t_free(&wo), t_free(&want);
                }
    }
}

/* A unary op from bf16 to bf16 converts in registers (cpu/elementwise.c) and must give
 * the bits of widening its input, running the f32 kernel and rounding (the path it
 * replaced): every unary op it takes, random bit patterns (NaNs, infinities,
 * subnormals, ties), sizes around the vector widths and past the one-op group's size,
 * output poisoned first; exp and sigmoid keep the widening path and are checked the
 * same way, since they pass through here too. */
void test_half_bf16_unary_ops_convert_in_registers_with_the_widened_bits(void)
{
    t_seed(25);
    static const pml_opcode ops[] = {PML_OP_NEG,  PML_OP_EXP,     PML_OP_LOG,  PML_OP_SQRT,  PML_OP_RSQRT,
                                     PML_OP_TANH, PML_OP_SIGMOID, PML_OP_RELU, PML_OP_ERF,   PML_OP_RECIP,
                                     PML_OP_ABS,  PML_OP_GELU_TANH};
    static const int64_t sizes[] = {1, 15, 17, 33, 1001, 70001};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
        for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
            int64_t d[1] = {sizes[z]};
            pml_view x = t_new(PML_BF16, 1, d), got = t_new(PML_BF16, 1, d), wx = t_new(PML_F32, 1, d),
                     wo = t_new(PML_F32, 1, d), want = t_new(PML_BF16, 1, d);
            random_bits(&x);
            memset(got.data, 0xff, (size_t)sizes[z] * 2);
            pml_cpu_widen(wx.data, x.data, PML_BF16, (size_t)sizes[z]);
            t_run_ok(ops[o], &wx, 1, &wo, NULL, 0, 0);
            pml_cpu_narrow(want.data, PML_BF16, wo.data, (size_t)sizes[z]);
            t_run_ok(ops[o], &x, 1, &got, NULL, 0, 0);
            int64_t bad = 0;
            for (int64_t i = 0; i < sizes[z]; i++) bad += ((uint16_t *)got.data)[i] != ((uint16_t *)want.data)[i];
            TCHECK(bad == 0, "%s on bf16 over %lld: %lld differ from widen, f32 op, round", pml_op_name(ops[o]),
                   (long long)sizes[z], (long long)bad);
            t_free(&x), t_free(&got), t_free(&wx), t_free(&wo), t_free(&want);
        }
}

/* sum_to from bf16 into f32 (a bias's gradient from a 16-bit one) widens in registers
 * (cpu/reduce.c) and must give the bits of widening the whole input first and summing
 * in f32: into the last axis, into a column (one sum per row, row_sum's order), and
 * into a middle axis (strided), over odd sizes, outputs poisoned first. */
void test_half_bf16_sum_to_widens_in_registers_with_the_widened_bits(void)
{
    t_seed(26);
    static const struct { int rank, out_rank; int64_t in[3], out[3]; } forms[] = {
        {2, 1, {37, 129}, {129}},      {3, 1, {5, 67, 33}, {33}},        {2, 2, {301, 67}, {301, 1}},
        {3, 3, {7, 9, 131}, {7, 1, 131}}, {3, 3, {6, 5, 7}, {1, 5, 1}}, {2, 2, {1, 1}, {1, 1}},
    };
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        pml_view x = t_new(PML_BF16, forms[f].rank, forms[f].in), wx = t_new(PML_F32, forms[f].rank, forms[f].in);
        pml_view got = t_new(PML_F32, forms[f].out_rank, forms[f].out), want = t_new(PML_F32, forms[f].out_rank, forms[f].out);
        for (int64_t i = 0; i < t_numel(&x); i++) ((uint16_t *)x.data)[i] = pml_f32_to_bf16((float)(t_u64() % 20001) / 1000.0f - 10.0f);
        memset(got.data, 0xff, (size_t)t_numel(&got) * 4);
        pml_cpu_widen(wx.data, x.data, PML_BF16, (size_t)t_numel(&x));
        t_run_ok(PML_OP_SUM_TO, &wx, 1, &want, NULL, 0, 0);
        t_run_ok(PML_OP_SUM_TO, &x, 1, &got, NULL, 0, 0);
        TCHECK(!memcmp(got.data, want.data, (size_t)t_numel(&got) * 4), "sum_to %s -> %s from bf16: other bits than widened",
               t_dims_str(forms[f].rank, forms[f].in), t_dims_str(forms[f].out_rank, forms[f].out));
        t_free(&x), t_free(&wx), t_free(&got), t_free(&want);
    }
}
