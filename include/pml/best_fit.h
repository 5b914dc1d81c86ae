/* pml/best_fit.h — where one more value goes in an arena of values that come and go:
 * the best-fit placement the compiler's memory estimate (compiler/src/plan/memplan.c,
 * what `pmlc plan` and the plan file's MEMO section show) and the runtime's planner
 * (runtime/src/plan/memplan.c, the offsets the backends use) both make, so that the two
 * place alike. Header-only, as hash.h.
 *
 * The caller lists the ranges of the values already placed that are live at the same
 * time as the new one; the new one goes at the start of the smallest gap between them,
 * at or above `base`, that holds `size` bytes from an offset aligned to `align`, else at
 * the first aligned offset above them all. Ties go to the lowest gap, so the placement
 * depends only on the ranges (it sorts them), never on the order they are listed in. */
#ifndef PML_BEST_FIT_H
#define PML_BEST_FIT_H

#include <stdint.h>
#include <stdlib.h>

/* Bytes [lo, hi) of the arena. */
typedef struct pml_fit_range {
    int64_t lo, hi;
} pml_fit_range;

static inline int pml_fit_by_lo(const void *a, const void *b)
{
    const pml_fit_range *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

static inline int64_t pml_fit_align_up(int64_t x, int64_t align) { return (x + align - 1) / align * align; }

/* The offset for `size` bytes (size >= 0, align >= 1; base >= 0), among the n ranges of
 * `taken`, which it sorts by their start. */
static inline int64_t pml_best_fit(pml_fit_range *taken, int n, int64_t base, int64_t size, int64_t align)
{
    qsort(taken, (size_t)n, sizeof *taken, pml_fit_by_lo);
    int64_t at = base, best = -1, best_gap = 0;
    for (int k = 0; k < n; k++) {
        int64_t start = pml_fit_align_up(at, align), gap = taken[k].lo - start;
        if (gap >= size && gap >= 0 && (best < 0 || gap < best_gap)) best = start, best_gap = gap;
        if (taken[k].hi > at) at = taken[k].hi;
    }
    return best >= 0 ? best : pml_fit_align_up(at, align);
}

#endif
