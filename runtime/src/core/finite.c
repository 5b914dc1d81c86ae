/* finite.c — see finite.h. */
#include "core/vectorize.h" /* first: the scans must vectorise at -O2 (2.6x at 188 MB: docs/reliability.md) */

#include "core/finite.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define CHUNK 4096 /* elements per vectorised pass before the loop looks at its flag */

/* The scan for element type T whose bits, as the unsigned U, are non-finite when every
 * bit of EXP (the exponent) is set: an OR over a chunk, then a search of a flagged one.
 * (A macro so an f64 scan is one line when a reader needs one.) */
#define SCAN(T, U, EXP)                                                                                               \
    for (size_t at = 0; at < n; at += CHUNK) {                                                                        \
        size_t len = n - at < CHUNK ? n - at : CHUNK;                                                                 \
        U bad = 0;                                                                                                    \
        for (size_t i = 0; i < len; i++) {                                                                            \
            U u;                                                                                                      \
            memcpy(&u, x + at + i, sizeof u);                                                                         \
            bad |= (u & (EXP)) == (EXP);                                                                              \
        }                                                                                                             \
        for (size_t i = 0; bad && i < len; i++) {                                                                     \
            T v;                                                                                                      \
            memcpy(&v, x + at + i, sizeof v);                                                                         \
            if (!isfinite(v)) return at + i;                                                                          \
        }                                                                                                             \
    }                                                                                                                 \
    return n

/* Static behind a plain function, as vector clones must be (cpu/vectorize.h). */
PML_VECTOR_CLONES static size_t scan_f32(const float *x, size_t n) { SCAN(float, uint32_t, 0x7f800000u); }
size_t pml_finite_scan_f32(const float *x, size_t n) { return scan_f32(x, n); }

const char *pml_finite_name(double v)
{
    return isnan(v) ? "NaN" : isinf(v) ? (v > 0 ? "inf" : "-inf") : "finite";
}

const char *pml_finite_name_f32(const float *x, size_t i)
{
    float v;
    memcpy(&v, x + i, sizeof v);
    return pml_finite_name(v);
}
