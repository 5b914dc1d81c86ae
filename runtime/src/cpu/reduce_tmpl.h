/* reduce_tmpl.h — sum, max, mean and sum_to for one element type; included by reduce.c
 * once per type with T and F(name) defined, and for sum_to of 16-bit storage into T
 * (SUM_TO_ONLY) with SX the stored type and LDX(v) its element as T (default: T's own
 * elements). No include guard. */
#ifndef SX
#define SX T
#define LDX(v) (v)
#endif

/* The sum of a contiguous row in f64, with four accumulators to break the add chain
 * (the order every row sum of reduce and sum_to uses). */
static inline double F(row_sum)(const SX *r, int64_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += LDX(r[k]);
        s1 += LDX(r[k + 1]);
        s2 += LDX(r[k + 2]);
        s3 += LDX(r[k + 3]);
    }
    for (; k < n; k++) s0 += LDX(r[k]);
    return (s0 + s1) + (s2 + s3);
}

#ifndef SUM_TO_ONLY

/* The sums of four contiguous rows of n, each in row_sum's order: a row's four
 * accumulators are the lanes of one vector, and the four rows' vectors are independent,
 * so four add chains run at once where one row's sum waits on its own. */
static inline __attribute__((always_inline)) void F(row_sum4)(const T *r, int64_t n, double *out)
{
    typedef T vt __attribute__((vector_size(4 * sizeof(T))));
    typedef double vd __attribute__((vector_size(32)));
    vd s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        vt a, b, c, d;
        memcpy(&a, r + k, sizeof a);
        memcpy(&b, r + n + k, sizeof b);
        memcpy(&c, r + 2 * n + k, sizeof c);
        memcpy(&d, r + 3 * n + k, sizeof d);
        s0 += __builtin_convertvector(a, vd);
        s1 += __builtin_convertvector(b, vd);
        s2 += __builtin_convertvector(c, vd);
        s3 += __builtin_convertvector(d, vd);
    }
    for (; k < n; k++) {
        s0[0] += r[k];
        s1[0] += r[n + k];
        s2[0] += r[2 * n + k];
        s3[0] += r[3 * n + k];
    }
    out[0] = (s0[0] + s0[1]) + (s0[2] + s0[3]);
    out[1] = (s1[0] + s1[1]) + (s1[2] + s1[3]);
    out[2] = (s2[0] + s2[1]) + (s2[2] + s2[3]);
    out[3] = (s3[0] + s3[1]) + (s3[2] + s3[3]);
}

/* Reduces x viewed as [outer, n, inner] over its middle axis into o[outer, inner]. */
PML_VECTOR_CLONES static void F(reduce)(pml_opcode op, T *o, const T *x, int64_t outer, int64_t n, int64_t inner)
{
    if (inner == 1) { /* contiguous rows */
        int64_t p = 0;
        for (; op != PML_OP_MAX && p + 4 <= outer; p += 4) {
            double s[4];
            F(row_sum4)(x + p * n, n, s);
            for (int q = 0; q < 4; q++) o[p + q] = (T)(op == PML_OP_MEAN ? s[q] / (double)n : s[q]);
        }
        for (; p < outer; p++) {
            const T *r = x + p * n;
            if (op == PML_OP_MAX) {
                T m = (T)-INFINITY;
                for (int64_t k = 0; k < n; k++) m = r[k] > m || r[k] != r[k] ? r[k] : m;
                o[p] = m;
                continue;
            }
            double s = F(row_sum)(r, n);
            o[p] = (T)(op == PML_OP_MEAN ? s / (double)n : s);
        }
        return;
    }
    for (int64_t p = 0; p < outer; p++) { /* rows of `inner` combined element-wise: vectorises */
        T *orow = o + p * inner;
        const T *xp = x + p * n * inner;
        if (op == PML_OP_MAX) {
            for (int64_t j = 0; j < inner; j++) orow[j] = (T)-INFINITY;
            for (int64_t k = 0; k < n; k++)
                for (int64_t j = 0; j < inner; j++) {
                    T v = xp[k * inner + j];
                    orow[j] = v > orow[j] || v != v ? v : orow[j];
                }
            continue;
        }
        for (int64_t j = 0; j < inner; j++) orow[j] = 0;
        for (int64_t k = 0; k < n; k++)
            for (int64_t j = 0; j < inner; j++) orow[j] += xp[k * inner + j];
        if (op == PML_OP_MEAN)
            for (int64_t j = 0; j < inner; j++) orow[j] = orow[j] / (T)n;
    }
}

#endif /* SUM_TO_ONLY */

/* sum_to: `it` runs over x (operand 0) with the output as operand 1 (stride 0 on the
 * axes summed away). */
PML_VECTOR_CLONES static void F(sum_to)(pml_cpu_iter *it, T *out, int64_t n_out, const SX *x)
{
    for (int64_t i = 0; i < n_out; i++) out[i] = 0;
    int64_t rows = pml_cpu_iter_rows(it), len = it->dims[it->rank - 1], so = it->st[1][it->rank - 1];
    for (int64_t r = 0; r < rows; r++, pml_cpu_iter_next(it)) {
        const SX *xr = x + it->off[0];
        T *o = out + it->off[1];
        if (so == 1) {
            for (int64_t i = 0; i < len; i++) o[i] += LDX(xr[i]);
        } else if (so == 0) { /* a row into one sum */
            o[0] += (T)F(row_sum)(xr, len);
        } else {
            for (int64_t i = 0; i < len; i++) o[i * so] += LDX(xr[i]);
        }
    }
}
#undef SX
#undef LDX
