/* pml/hash.h — FNV-1a, 64 bits: the one hash the compiler and the runtime share.
 *
 * Its values are part of files and results, so they never change: a parameter's random
 * stream is the hash of its name (runtime/src/plan/optim.c), a checkpoint's fingerprint
 * the hash of the parameter names and shapes (runtime/src/ckpt/checkpoint.c), generated
 * CUDA functions are named by the hash of their code, kernel-cache entries are keyed and
 * checked by it (compiler/src/gpu/), and ranks agree on a plan by the hash of its bytes.
 * Not for anything an adversary chooses.
 *
 * Each function continues a hash `h`: start from a seed and feed the pieces in order, so
 * a hash over several pieces is the hash of their concatenation.
 *
 * Two seeds, because values made with each are kept. PML_FNV1A_SEED is not FNV's offset
 * basis but that number with its last digit lost, as PML's first files wrote it; every
 * parameter's initial values, every checkpoint fingerprint, CUDA function name and
 * kernel-cache entry derive from it, so it stays (the hash is as good; only its values
 * differ from published FNV-1a vectors). PML_FNV1A_OFFSET_BASIS is FNV's own, which the
 * ranks' plan hash was made with. */
#ifndef PML_HASH_H
#define PML_HASH_H

#include <stddef.h>
#include <stdint.h>

#define PML_FNV1A_SEED UINT64_C(1469598103934665603)
#define PML_FNV1A_OFFSET_BASIS UINT64_C(14695981039346656037)
#define PML_FNV1A_PRIME UINT64_C(1099511628211)

static inline uint64_t pml_fnv1a_byte(uint64_t h, uint8_t byte) { return (h ^ byte) * PML_FNV1A_PRIME; }

/* `n` bytes at `p`. */
static inline uint64_t pml_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = pml_fnv1a_byte(h, s[i]);
    return h;
}

/* The bytes of the string `s`, without its NUL. */
static inline uint64_t pml_fnv1a_str(uint64_t h, const char *s)
{
    for (; *s; s++) h = pml_fnv1a_byte(h, (unsigned char)*s);
    return h;
}

#endif
