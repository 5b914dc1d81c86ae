/* xent_tmpl.h — the fused cross-entropy rows for one element type; included by xent.c
 * once per type with T, F(name) and EXP(x) (an exp for T) defined. No include guard.
 *
 * Reduction order, the same on every call so results are deterministic: the max runs
 * over the row in order; exp(x - max) of element k is added to partial sum k % XENT_LANES
 * in T, and the partials are added in double in lane order. */

/* loss[r] = log Σ_k exp(x[r, k]) - x[r, label[r]], with the max subtracted first. */
PML_VECTOR_CLONES static void F(xent_fwd)(T *loss, const T *x, const int32_t *label, int64_t rows, int64_t V)
{
    for (int64_t r = 0; r < rows; r++) {
        const T *row = x + r * V;
        T m = (T)-INFINITY;
        for (int64_t k = 0; k < V; k++) m = row[k] > m || row[k] != row[k] ? row[k] : m;
        T part[XENT_LANES] = {0};
        int64_t k = 0;
        for (; k + XENT_LANES <= V; k += XENT_LANES)
            for (int j = 0; j < XENT_LANES; j++) part[j] += EXP(row[k + j] - m);
        for (int j = 0; k < V; k++, j++) part[j] += EXP(row[k] - m);
        double s = 0;
        for (int j = 0; j < XENT_LANES; j++) s += part[j];
        loss[r] = (T)((double)m + log(s) - (double)row[label[r]]);
    }
}

/* dx[r, k] = (exp(x[r, k] - lse) - [k == label]) * dloss[r], lse = loss[r] + x[r, label]:
 * the loss is the saved state, as lse - x[label] is, to one rounding, the lse itself.
 * The label's own entry is (exp(-loss) - 1) * dloss, taken as expm1(-loss): through
 * the rounded lse, a confident row (loss 6e-4, logits near 45) lost three digits to
 * the cancellation of a softmax value near 1 against 1. */
PML_VECTOR_CLONES static void F(xent_bwd)(T *dx, const T *x, const int32_t *label, const T *loss, const T *dloss,
                                          int64_t rows, int64_t V)
{
    for (int64_t r = 0; r < rows; r++) {
        const T *row = x + r * V;
        T *drow = dx + r * V;
        const T lse = loss[r] + row[label[r]], g = dloss[r];
        for (int64_t k = 0; k < V; k++) drow[k] = EXP(row[k] - lse) * g;
        drow[label[r]] = EXPM1(-loss[r]) * g;
    }
}
