/* reduce_tmpl.h — sum, max, mean and sum_to for one element type; included by reduce.c
 * once per type with T and F(name) defined. No include guard. */

/* The sum of a contiguous row in f64, with four accumulators to break the add chain
 * (the order every row sum of reduce and sum_to uses). */
static inline double F(row_sum)(const T *r, int64_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += r[k];
        s1 += r[k + 1];
        s2 += r[k + 2];
        s3 += r[k + 3];
    }
    for (; k < n; k++) s0 += r[k];
    return (s0 + s1) + (s2 + s3);
}

/* Reduces x viewed as [outer, n, inner] over its middle axis into o[outer, inner]. */
PML_VECTOR_CLONES static void F(reduce)(pml_opcode op, T *o, const T *x, int64_t outer, int64_t n, int64_t inner)
{
    if (inner == 1) { /* contiguous rows */
        for (int64_t p = 0; p < outer; p++) {
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

/* sum_to: `it` runs over x (operand 0) with the output as operand 1 (stride 0 on the
 * axes summed away). */
PML_VECTOR_CLONES static void F(sum_to)(pml_cpu_iter *it, T *out, int64_t n_out, const T *x)
{
    for (int64_t i = 0; i < n_out; i++) out[i] = 0;
    int64_t rows = pml_cpu_iter_rows(it), len = it->dims[it->rank - 1], so = it->st[1][it->rank - 1];
    for (int64_t r = 0; r < rows; r++, pml_cpu_iter_next(it)) {
        const T *xr = x + it->off[0];
        T *o = out + it->off[1];
        if (so == 1) {
            for (int64_t i = 0; i < len; i++) o[i] += xr[i];
        } else if (so == 0) { /* a row into one sum */
            o[0] += (T)F(row_sum)(xr, len);
        } else {
            for (int64_t i = 0; i < len; i++) o[i * so] += xr[i];
        }
    }
}
