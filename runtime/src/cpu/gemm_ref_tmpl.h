/* gemm_ref_tmpl.h — the portable blocked GEMM for one element type; included by
 * gemm_ref.c with T and F(name) defined. No include guard.
 *
 * C is zeroed (unless op.acc), then built from KB x NB panels of B that stay in cache while four rows
 * of A at a time stream past; the innermost loop runs along a row of B and of C, so
 * it vectorises without any packing. A transposed A costs nothing (one scalar per row
 * and p); a transposed B is read with a stride, which is slower but only the fallback.
 * Rows [i0, i1) only, so threads can share a C. */
/* c[j] += a0 * b(p, j) over one panel row of B, with B read along its row (bs = 1) or,
 * when B is given transposed, down a column (bs = ldb). */
static inline void F(axpy)(T *c, T a0, const T *b, int64_t bs, int64_t nb)
{
    if (bs == 1)
        for (int64_t j = 0; j < nb; j++) c[j] += a0 * b[j];
    else
        for (int64_t j = 0; j < nb; j++) c[j] += a0 * b[j * bs];
}

static void F(gemm_rows)(pml_cpu_gemm_op op, int64_t i0, int64_t i1, int64_t n, int64_t k, const T *a, int64_t lda,
                         const T *b, int64_t ldb, T *c, int64_t ldc)
{
    enum { KB = 256, NB = 512 };
    /* element (i, p) of op(A) is a[i * ars + p * acs]; (p, j) of op(B) is b[p * brs + j * bcs] */
    int64_t ars = op.ta ? 1 : lda, acs = op.ta ? lda : 1, brs = op.tb ? 1 : ldb, bcs = op.tb ? ldb : 1;
    if (!op.acc)
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = 0;
    for (int64_t p0 = 0; p0 < k; p0 += KB) {
        int64_t p1 = p0 + KB < k ? p0 + KB : k;
        for (int64_t j0 = 0; j0 < n; j0 += NB) {
            int64_t nb = j0 + NB < n ? NB : n - j0;
            int64_t i = i0;
            for (; i + 4 <= i1; i += 4) {
                T *c0 = c + i * ldc + j0, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
                for (int64_t p = p0; p < p1; p++) {
                    const T *bp = b + p * brs + j0 * bcs, *ap = a + i * ars + p * acs;
                    T a0 = ap[0], a1 = ap[ars], a2 = ap[2 * ars], a3 = ap[3 * ars];
                    if (bcs == 1) {
                        for (int64_t j = 0; j < nb; j++) {
                            T bv = bp[j];
                            c0[j] += a0 * bv;
                            c1[j] += a1 * bv;
                            c2[j] += a2 * bv;
                            c3[j] += a3 * bv;
                        }
                    } else {
                        F(axpy)(c0, a0, bp, bcs, nb);
                        F(axpy)(c1, a1, bp, bcs, nb);
                        F(axpy)(c2, a2, bp, bcs, nb);
                        F(axpy)(c3, a3, bp, bcs, nb);
                    }
                }
            }
            for (; i < i1; i++)
                for (int64_t p = p0; p < p1; p++)
                    F(axpy)(c + i * ldc + j0, a[i * ars + p * acs], b + p * brs + j0 * bcs, bcs, nb);
        }
    }
}

typedef struct F(gemm_job) {
    pml_cpu_gemm_op op;
    int64_t i0, i1, n, k, lda, ldb, ldc;
    const T *a, *b;
    T *c;
} F(gemm_job);

static void *F(gemm_thread)(void *arg)
{
    F(gemm_job) *j = arg;
    F(gemm_rows)(j->op, j->i0, j->i1, j->n, j->k, j->a, j->lda, j->b, j->ldb, j->c, j->ldc);
    return NULL;
}

void F(pml_cpu_gemm_ref)(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const T *a, int64_t lda, const T *b,
                         int64_t ldb, T *c, int64_t ldc, int threads)
{
    int nt = threads > 1 ? threads : 1;
    if (nt > MAX_THREADS) nt = MAX_THREADS;
    if ((double)m * (double)n * (double)k < 4e6) nt = 1; /* not worth a thread start */
    if (nt > m / 4) nt = m / 4 > 1 ? (int)(m / 4) : 1;
    F(gemm_job) jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < nt; t++) {
        /* row blocks of a multiple of 4, so every thread gets the 4-row kernel */
        int64_t per = ((m + nt - 1) / nt + 3) / 4 * 4;
        jobs[t] = (F(gemm_job)){
            op, t * per < m ? t * per : m, (t + 1) * per < m ? (t + 1) * per : m, n, k, lda, ldb, ldc, a, b, c};
        if (t > 0) started[t] = pthread_create(&tid[t], NULL, F(gemm_thread), &jobs[t]) == 0;
    }
    F(gemm_thread)(&jobs[0]);
    for (int t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            F(gemm_thread)(&jobs[t]); /* no thread to be had: do its share here */
    }
}
