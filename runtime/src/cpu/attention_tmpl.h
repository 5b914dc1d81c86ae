/* attention_tmpl.h — fused attention over one [n, d] matrix triple (q, k, v) for one
 * element type; included by attention.c once per type with T, F(name) and EXP(x) (an
 * exp for T, x <= 0) defined. No include guard.
 *
 * Tiles: BQ query rows at a time against BK keys at a time; the key tile is transposed
 * into kt[d][BK] so a row of scores is a vector-matrix product over the tile, and each
 * query row's scores (s[BK]) are made, exponentiated and folded into its output before
 * the next row's: the key tile, the row and the query tile's accumulators stay in L1. Under the causal mask a key tile that starts past
 * the query tile's last row is never visited, and within the diagonal tile each row
 * stops at its own position. Every loop runs in one fixed order, so a matrix's results
 * do not depend on which thread runs it. */

/* The key tile transposed, its columns past bk zero: score rows run over whole vectors
 * (att_width) and what they make past a row's own keys is never read. */
static ATT_INLINE void F(att_transpose)(T *kt, const T *k, int64_t d, int64_t j0, int64_t bk)
{
    for (int64_t t = 0; t < d; t++)
        for (int64_t c = bk; c < ATT_BK; c++) kt[t * ATT_BK + c] = 0;
    for (int64_t c = 0; c < bk; c++)
        for (int64_t t = 0; t < d; t++) kt[t * ATT_BK + c] = k[(j0 + c) * d + t];
}

/* cn columns rounded up to whole vectors of ATT_LANES (at most the tile). */
static ATT_INLINE int64_t F(att_width)(int64_t cn)
{
    int64_t w = (cn + ATT_LANES - 1) / ATT_LANES * ATT_LANES;
    return w < ATT_BK ? w : ATT_BK;
}

/* Σ x[0..n) in ATT_LANES partial sums, folded in halves: one fixed order on every call.
 * With `max` set, the largest instead (a NaN is passed over: its exp makes the row NaN). */
static ATT_INLINE T F(att_fold)(const T *x, int64_t n, int max)
{
    T part[ATT_LANES];
    for (int j = 0; j < ATT_LANES; j++) part[j] = max ? (T)-INFINITY : 0;
    int64_t c = 0;
    for (; c + ATT_LANES <= n; c += ATT_LANES)
        for (int j = 0; j < ATT_LANES; j++)
            part[j] = max ? (x[c + j] > part[j] ? x[c + j] : part[j]) : part[j] + x[c + j];
    for (int j = 0; c < n; c++, j++) part[j] = max ? (x[c] > part[j] ? x[c] : part[j]) : part[j] + x[c];
    for (int h = ATT_LANES / 2; h >= 1; h /= 2)
        for (int j = 0; j < h; j++) part[j] = max ? (part[j + h] > part[j] ? part[j + h] : part[j]) : part[j] + part[j + h];
    return part[0];
}

/* Σ a[i] b[i] for i < n in ATT_LANES partial sums, folded in halves (att_fold's order):
 * one chain in order was a serial add per element. */
static ATT_INLINE T F(att_dot)(const T *a, const T *b, int64_t n)
{
    T part[ATT_LANES];
    for (int j = 0; j < ATT_LANES; j++) part[j] = 0;
    int64_t c = 0;
    for (; c + ATT_LANES <= n; c += ATT_LANES)
        for (int j = 0; j < ATT_LANES; j++) part[j] += a[c + j] * b[c + j];
    for (int j = 0; c < n; c++, j++) part[j] += a[c] * b[c];
    for (int h = ATT_LANES / 2; h >= 1; h /= 2)
        for (int j = 0; j < h; j++) part[j] += part[j + h];
    return part[0];
}

/* y[j] += Σ_i a[i] x[i·stride + j] for j < m: a vector-matrix product whose ATT_LANES
 * outputs at a time stay in registers over the whole sum (an axpy per i stored and
 * reloaded y every time; this is most of every product here). Four partial sums, over
 * i mod 4, so four additions are in flight rather than one chain; they are added in a
 * fixed order, so the result does not depend on the caller. */
static ATT_INLINE void F(att_gemv)(T *restrict y, const T *restrict a, const T *restrict x, int64_t stride, int64_t n,
                               int64_t m)
{
    int64_t j0 = 0;
    for (; j0 + ATT_LANES <= m; j0 += ATT_LANES) {
        T a0[ATT_LANES] = {0}, a1[ATT_LANES] = {0}, a2[ATT_LANES] = {0}, a3[ATT_LANES] = {0};
        int64_t i = 0;
        for (; i + 4 <= n; i += 4) {
            const T *x0 = x + i * stride + j0, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
            T b0 = a[i], b1 = a[i + 1], b2 = a[i + 2], b3 = a[i + 3];
            for (int j = 0; j < ATT_LANES; j++) {
                a0[j] += b0 * x0[j];
                a1[j] += b1 * x1[j];
                a2[j] += b2 * x2[j];
                a3[j] += b3 * x3[j];
            }
        }
        for (; i < n; i++) {
            const T *xi = x + i * stride + j0;
            for (int j = 0; j < ATT_LANES; j++) a0[j] += a[i] * xi[j];
        }
        for (int j = 0; j < ATT_LANES; j++) y[j0 + j] += (a0[j] + a1[j]) + (a2[j] + a3[j]);
    }
    for (; j0 < m; j0++) {
        T acc = y[j0];
        for (int64_t i = 0; i < n; i++) acc += a[i] * x[i * stride + j0];
        y[j0] = acc;
    }
}

/* Row r of s (cn columns): scale · q_r · k_c over the key tile, kt = the tile transposed. */
static ATT_INLINE void F(att_scores)(T *s, const T *qr, const T *kt, int64_t d, int64_t cn, T scale)
{
    int64_t w = F(att_width)(cn);
    for (int64_t c = 0; c < w; c++) s[c] = 0;
    F(att_gemv)(s, qr, kt, ATT_BK, d, w);
    for (int64_t c = 0; c < w; c++) s[c] *= scale;
}

/* How many keys of the tile at j0 (bk long) row `row` sees. */
static ATT_INLINE int64_t F(att_cols)(int causal, int64_t row, int64_t j0, int64_t bk)
{
    int64_t cn = causal ? row - j0 + 1 : bk;
    return cn < 0 ? 0 : cn > bk ? bk : cn;
}

/* o = softmax(q kᵀ · scale) v with an online softmax over key tiles, the weights under
 * z's dropout (NULL: none) after the sum counts them; with acc NULL only
 * lse[r] = log Σ_c exp(s_rc) is made (the backward pass's first step). Scratch:
 * kt[d·BK], s[BK], m[BQ], l[BQ], acc[BQ·d]. */
PML_VECTOR_CLONES static void F(att_fwd)(T *o, T *lse, const T *q, const T *k, const T *v, int64_t n, int64_t d,
                                         T scale, int causal, const att_drop *z, T *kt, T *s, T *m, T *l, T *acc)
{
    T zs = z ? (T)(1.0 / (1.0 - z->p)) : 1;
    for (int64_t i0 = 0; i0 < n; i0 += ATT_BQ) {
        int64_t bq = n - i0 < ATT_BQ ? n - i0 : ATT_BQ, jend = causal ? i0 + bq : n;
        for (int64_t r = 0; r < bq; r++) m[r] = (T)-INFINITY, l[r] = 0;
        if (acc)
            for (int64_t x = 0; x < bq * d; x++) acc[x] = 0;
        for (int64_t j0 = 0; j0 < jend; j0 += ATT_BK) {
            int64_t bk = jend - j0 < ATT_BK ? jend - j0 : ATT_BK;
            F(att_transpose)(kt, k, d, j0, bk);
            for (int64_t r = 0; r < bq; r++) {
                int64_t row = i0 + r, cn = F(att_cols)(causal, row, j0, bk);
                if (!cn) continue;
                T *sr = s;
                F(att_scores)(sr, q + row * d, kt, d, cn, scale);
                T mx = F(att_fold)(sr, cn, 1);
                mx = mx > m[r] ? mx : m[r];
                T corr = m[r] == (T)-INFINITY ? 0 : EXP(m[r] - mx);
                for (int64_t c = 0; c < cn; c++) sr[c] = EXP(sr[c] - mx);
                l[r] = l[r] * corr + F(att_fold)(sr, cn, 0);
                m[r] = mx;
                if (!acc) continue;
                for (int64_t c = 0; z && c < cn; c++) sr[c] = ATT_KEEP(z, row, j0 + c) ? sr[c] * zs : 0;
                T *ar = acc + r * d;
                for (int64_t t = 0; t < d; t++) ar[t] *= corr;
                F(att_gemv)(ar, sr, v + j0 * d, d, cn, d);
            }
        }
        for (int64_t r = 0; r < bq; r++) {
            if (lse) lse[i0 + r] = m[r] + (T)log((double)l[r]);
            if (!acc) continue;
            T inv = 1 / l[r];
            for (int64_t t = 0; t < d; t++) o[(i0 + r) * d + t] = acc[r * d + t] * inv;
        }
    }
}

/* dq, dk, dv of one matrix from q, k, v, o and do (flash-attention's backward): the
 * probabilities p = exp(s - lse) recomputed tile by tile, dv += pᵀ do, dp = do vᵀ,
 * ds = p (dp - rowsum(do ∘ o)), dq += ds k · scale, dk += dsᵀ q · scale. Query rows go
 * ATT_RB at a time: their p and ds are kept transposed (pt, dst: [BK][RB], zero past
 * each row's keys) so each key's dv and dk rows take the block's ATT_RB terms in
 * registers, one load and store per block rather than per row. Under z's dropout dv
 * takes the kept weights, and ds the gradient through them. Scratch: kt[d·BK],
 * vt[d·BK], s[BK], dp[BK], lse[n], D[n], m[BQ], l[BQ], pt[BK·RB], dst[BK·RB], zr[BK]. */
PML_VECTOR_CLONES static void F(att_bwd)(T *dq, T *dk, T *dv, const T *q, const T *k, const T *v, const T *o,
                                         const T *dout, int64_t n, int64_t d, T scale, int causal, const att_drop *z,
                                         T *kt, T *vt, T *s, T *dp, T *lse, T *D, T *m, T *l, T *pt, T *dst, T *zr)
{
    T zs = z ? (T)(1.0 / (1.0 - z->p)) : 1;
    F(att_fwd)(NULL, lse, q, k, v, n, d, scale, causal, NULL, kt, s, m, l, NULL);
    for (int64_t r = 0; r < n; r++) D[r] = F(att_dot)(dout + r * d, o + r * d, d);
    for (int64_t x = 0; x < n * d; x++) dq[x] = 0, dk[x] = 0, dv[x] = 0;
    for (int64_t j0 = 0; j0 < n; j0 += ATT_BK) {
        int64_t bk = n - j0 < ATT_BK ? n - j0 : ATT_BK;
        F(att_transpose)(kt, k, d, j0, bk);
        F(att_transpose)(vt, v, d, j0, bk);
        for (int64_t r0 = causal ? j0 : 0; r0 < n; r0 += ATT_RB) {
            int64_t rb = n - r0 < ATT_RB ? n - r0 : ATT_RB, cmax = F(att_cols)(causal, r0 + rb - 1, j0, bk);
            for (int64_t r = 0; r < rb; r++) {
                int64_t row = r0 + r, cn = F(att_cols)(causal, row, j0, bk);
                const T *qr = q + row * d, *dor = dout + row * d;
                T *p = s;
                if (cn) {
                    F(att_scores)(p, qr, kt, d, cn, scale);
                    for (int64_t c = 0; c < cn; c++) p[c] = EXP(p[c] - lse[row]);
                    for (int64_t c = 0; z && c < cn; c++) zr[c] = ATT_KEEP(z, row, j0 + c) ? zs : 0;
                    int64_t w = F(att_width)(cn);
                    for (int64_t c = 0; c < w; c++) dp[c] = 0;
                    F(att_gemv)(dp, dor, vt, ATT_BK, d, w);
                    for (int64_t c = 0; c < cn; c++)
                        dp[c] = p[c] * ((z ? dp[c] * zr[c] : dp[c]) - D[row]) * scale; /* ds · scale */
                    F(att_gemv)(dq + row * d, dp, k + j0 * d, d, cn, d);
                }
                for (int64_t c = 0; c < cmax; c++) {
                    pt[c * ATT_RB + r] = c < cn ? (z ? p[c] * zr[c] : p[c]) : 0;
                    dst[c * ATT_RB + r] = c < cn ? dp[c] : 0;
                }
            }
            for (int64_t c = 0; c < cmax; c++) {
                F(att_gemv)(dv + (j0 + c) * d, pt + c * ATT_RB, dout + r0 * d, d, rb, d);
                F(att_gemv)(dk + (j0 + c) * d, dst + c * ATT_RB, q + r0 * d, d, rb, d);
            }
        }
    }
}
