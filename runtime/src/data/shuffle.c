/* shuffle.c — see shuffle.h: an unbalanced Feistel network with cycle walking.
 *
 * A value of b bits is split into a high part of b/2 bits and a low part of the rest.
 * A half-round replaces one part by itself XOR a keyed hash of the other part: it is
 * its own inverse, so any sequence of half-rounds is a bijection on [0, 2^b), whether
 * or not b is even. Eight half-rounds (four full Feistel rounds) with a SplitMix64
 * round function mix well enough for a data order. */
#include "data/shuffle.h"

#include "core/rng.h"

#define HALF_ROUNDS 8
#define STREAM_SHUFFLE 0x73687566666c6521ull /* "shuffle!" */

static uint64_t low_bits(unsigned bits) { return bits >= 64 ? ~0ull : ((uint64_t)1 << bits) - 1; }

static uint64_t encrypt(uint64_t key, unsigned bits, uint64_t x)
{
    unsigned lo_bits = bits - bits / 2;
    uint64_t lo_mask = low_bits(lo_bits), hi_mask = low_bits(bits / 2);
    uint64_t hi = lo_bits >= 64 ? 0 : x >> lo_bits, lo = x & lo_mask;
    for (uint64_t r = 0; r < HALF_ROUNDS; r++) {
        if (r % 2 == 0)
            lo ^= pml_rng_u64(key, r, hi) & lo_mask;
        else
            hi ^= pml_rng_u64(key, r, lo) & hi_mask;
    }
    return lo_bits >= 64 ? lo : hi << lo_bits | lo;
}

uint64_t pml_shuffle_index(uint64_t seed, uint64_t epoch, uint64_t n, uint64_t i)
{
    if (i >= n || n == 1) return i;
    unsigned bits = 1;
    while (bits < 64 && ((uint64_t)1 << bits) < n) bits++;
    uint64_t key = pml_rng_u64(seed, STREAM_SHUFFLE, epoch), x = i;
    do x = encrypt(key, bits, x);
    while (x >= n);
    return x;
}
