/* rng.h — the runtime's one source of randomness: a counter-based generator.
 *
 * Every random number is a pure function of (seed, stream, counter): no state, so a
 * value can be computed in any order, by any thread, on any backend, and a run is
 * reproducible whatever the launch shape or the number of stages. Streams separate
 * uses (a dropout node's key, a data generator's role); counters index elements or
 * samples. The mixing is SplitMix64's finaliser applied to the three words in turn,
 * which passes BigCrush as a counter-based generator and is cheap enough for kernels. */
#ifndef PML_RNG_H
#define PML_RNG_H

#include <stdint.h>

static inline uint64_t pml_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 64 random bits for (seed, stream, counter). */
static inline uint64_t pml_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter)
{
    return pml_mix64(pml_mix64(pml_mix64(seed) ^ stream) ^ counter);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double pml_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter)
{
    return (double)(pml_rng_u64(seed, stream, counter) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, 1) as a float with 24 random bits (what a float kernel needs). */
static inline float pml_rng_uniform_f32(uint64_t seed, uint64_t stream, uint64_t counter)
{
    return (float)(pml_rng_u64(seed, stream, counter) >> 40) * 0x1.0p-24f;
}

/* An integer uniform in [0, n) for n >= 1, without modulo bias (Lemire's method). */
uint64_t pml_rng_below(uint64_t seed, uint64_t stream, uint64_t counter, uint64_t n);

/* A standard normal sample (Box-Muller on counters 2c and 2c+1 of the stream). */
double pml_rng_normal(uint64_t seed, uint64_t stream, uint64_t counter);

#endif
