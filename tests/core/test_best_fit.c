/* test_best_fit.c — the one best-fit placement (include/pml/best_fit.h) that the compiler's
 * memory estimate and the runtime's planner both use: the smallest gap that holds the
 * value wins over the first, alignment moves a start up and can make a gap too small,
 * nothing fits means the first aligned byte above everything, `base` is a floor, equal
 * gaps go to the lowest, and the order the ranges are listed in changes nothing. */
#include "check.h"
#include "pml/best_fit.h"

/* pml_best_fit over a copy of `r` (it sorts what it is given). */
static int64_t fit(const pml_fit_range *r, int n, int64_t base, int64_t size, int64_t align)
{
    pml_fit_range t[8];
    for (int k = 0; k < n; k++) t[k] = r[k];
    return pml_best_fit(t, n, base, size, align);
}

int main(void)
{
    /* Gaps: [0,100) 100 bytes, [110,140) 30 bytes, above 200 everything. */
    const pml_fit_range r[] = {{100, 110}, {140, 200}};
    const pml_fit_range back[] = {{140, 200}, {100, 110}};
    CHECK(fit(r, 2, 0, 30, 1) == 110);    /* the 30-byte gap, not the first one that fits */
    CHECK(fit(back, 2, 0, 30, 1) == 110); /* whatever the order of the list */
    CHECK(fit(r, 2, 0, 31, 1) == 0);      /* too big for it: the 100-byte gap */
    CHECK(fit(r, 2, 0, 101, 1) == 200);   /* too big for both: above them all */
    CHECK(fit(r, 2, 0, 30, 16) == 0);     /* aligned to 16 the second gap starts at 112: 28 bytes */
    CHECK(fit(r, 2, 0, 101, 64) == 256);  /* above them all, aligned */
    CHECK(fit(r, 2, 120, 10, 1) == 120);  /* the floor cuts the first gap away, [120,140) is left */
    CHECK(fit(r, 2, 150, 10, 1) == 200);  /* above the floor only the space above 200 is free */
    CHECK(fit(r, 0, 8, 10, 16) == 16);    /* nothing taken: the floor, aligned */
    /* Two equal gaps: the lower one. */
    const pml_fit_range eq[] = {{50, 60}, {10, 20}, {30, 40}};
    CHECK(fit(eq, 3, 0, 10, 1) == 0);
    CHECK(fit(eq, 3, 0, 11, 1) == 60);
    /* Ranges that overlap (values alive at different times share bytes): a gap is what no
     * range covers. */
    const pml_fit_range ov[] = {{0, 100}, {20, 40}, {120, 130}};
    CHECK(fit(ov, 3, 0, 20, 1) == 100);
    CHECK(fit(ov, 3, 0, 21, 1) == 130);
    return check_summary("best_fit");
}
