/* rng.c — see rng.h. */
#include "core/rng.h"

#include <math.h>

uint64_t pml_rng_below(uint64_t seed, uint64_t stream, uint64_t counter, uint64_t n)
{
    /* Multiply-shift maps 64 random bits to [0, n); retrying the rare values that would
     * make some results one more likely keeps it unbiased. Retries use fresh counters
     * far from the caller's (the top bit set), so results stay a pure function. */
    uint64_t threshold = (0 - n) % n;
    for (uint64_t attempt = 0;; attempt++) {
        uint64_t x = pml_rng_u64(seed, stream ^ (attempt << 56), counter);
        __uint128_t m = (__uint128_t)x * n;
        if ((uint64_t)m >= threshold) return (uint64_t)(m >> 64);
    }
}

double pml_rng_normal(uint64_t seed, uint64_t stream, uint64_t counter)
{
    double u1 = pml_rng_uniform(seed, stream, 2 * counter);
    double u2 = pml_rng_uniform(seed, stream, 2 * counter + 1);
    if (u1 < 0x1.0p-60) u1 = 0x1.0p-60; /* log(0) */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
