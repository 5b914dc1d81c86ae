/* finite.h — finding non-finite values (NaN, +inf, -inf) in float buffers, for the
 * checks that keep them out of checkpoints, training steps and loaded files.
 *
 * The scans test exponent bits with integer operations, so they vectorise (a float
 * comparison reduction would not, without -ffast-math) and have no undefined
 * behaviour on any bit pattern or alignment (a mapped file's tensor may be unaligned). The common answer, "all finite", costs one pass at
 * memory speed; the index is searched for only when the pass finds something. */
#ifndef PML_FINITE_H
#define PML_FINITE_H

#include <stddef.h>

/* The index of the first non-finite element of x[0..n), or n when all are finite. */
size_t pml_finite_scan_f32(const float *x, size_t n);

/* "NaN", "inf" or "-inf" for a non-finite value ("finite" otherwise): for messages. */
const char *pml_finite_name(double v);
/* The same for element i of x (which may be unaligned). */
const char *pml_finite_name_f32(const float *x, size_t i);

#endif
