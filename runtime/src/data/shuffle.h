/* shuffle.h — a random order over a dataset of any size in O(1) memory: the i-th index
 * of a pseudo-random permutation of [0, n), different for every (seed, epoch), with
 * no permutation stored. Any position is random access, so a stage or a thread can
 * compute just the indices of its own batch.
 *
 * It is a keyed Feistel network over the next power of two >= n, with cycle walking
 * (re-encrypting until the value lands below n): a bijection on [0, 2^b) restricted by
 * cycle walking is a bijection on [0, n). The round keys come from rng.h keyed by
 * (seed, epoch). Expected cost: under 2 network passes of 8 half-rounds. A pure function;
 * safe from any thread. */
#ifndef PML_DATA_SHUFFLE_H
#define PML_DATA_SHUFFLE_H

#include <stdint.h>

/* The i-th index (0 <= i < n) of epoch `epoch`'s permutation of [0, n). Returns i
 * itself when i >= n (no permutation covers it). */
uint64_t pml_shuffle_index(uint64_t seed, uint64_t epoch, uint64_t n, uint64_t i);

#endif
