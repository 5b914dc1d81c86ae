/* bounds.c — see bounds.h. One body, instantiated per element type. */
#include "data/bounds.h"

#define FIRST_OUTSIDE(name, T)                                  \
    size_t name(const T *v, size_t n, uint64_t limit)           \
    {                                                           \
        enum { BLOCK = 4096 };                                  \
        for (size_t at = 0; at < n; at += BLOCK) {              \
            size_t end = n - at < BLOCK ? n : at + BLOCK;       \
            uint64_t hi = 0;                                    \
            for (size_t i = at; i < end; i++) {                 \
                uint64_t u = (uint64_t)(int64_t)v[i];           \
                hi = u > hi ? u : hi;                           \
            }                                                   \
            if (hi < limit) continue;                           \
            for (size_t i = at; i < end; i++)                   \
                if ((uint64_t)(int64_t)v[i] >= limit) return i; \
        }                                                       \
        return n;                                               \
    }

FIRST_OUTSIDE(pml_first_outside_u8, uint8_t)
FIRST_OUTSIDE(pml_first_outside_u16, uint16_t)
FIRST_OUTSIDE(pml_first_outside_u32, uint32_t)
FIRST_OUTSIDE(pml_first_outside_i32, int32_t)
FIRST_OUTSIDE(pml_first_outside_i64, int64_t)
