/* bounds.h — the first element of an integer array outside [0, limit): how class labels
 * (exec/feed.c) and token files (data/tokens.c) are checked once, whole, at load.
 *
 * Each value is read as unsigned 64 bits, so a negative one wraps high and one compare
 * says "outside". The array is screened in blocks by their maximum (a loop compilers
 * vectorise), and only a block holding a bad value is searched again, so a good file
 * costs one pass. Pure functions; any thread. */
#ifndef PML_DATA_BOUNDS_H
#define PML_DATA_BOUNDS_H

#include <stddef.h>
#include <stdint.h>

/* The index of the first v[i] outside [0, limit), or n when every one is inside. */
size_t pml_first_outside_u8(const uint8_t *v, size_t n, uint64_t limit);
size_t pml_first_outside_u16(const uint16_t *v, size_t n, uint64_t limit);
size_t pml_first_outside_u32(const uint32_t *v, size_t n, uint64_t limit);
size_t pml_first_outside_i32(const int32_t *v, size_t n, uint64_t limit);
size_t pml_first_outside_i64(const int64_t *v, size_t n, uint64_t limit);

#endif
