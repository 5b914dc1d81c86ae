/* arena.h — bump allocation for everything a compile makes (AST, IR, plan), freed in
 * one call. Also the small containers built on it: growable arrays and a string map.
 * All memory is zeroed. Allocation failure aborts: the compiler cannot go on without
 * memory, and size limits elsewhere keep honest inputs far from that point. */
#ifndef PMLC_ARENA_H
#define PMLC_ARENA_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct pmlc_arena_block pmlc_arena_block;
typedef struct pmlc_arena {
    pmlc_arena_block *head;
    size_t used_total;
} pmlc_arena;

void *pmlc_arena_alloc(pmlc_arena *a, size_t size);
char *pmlc_arena_strdup(pmlc_arena *a, const char *s);
char *pmlc_arena_strndup(pmlc_arena *a, const char *s, size_t n);
char *pmlc_arena_printf(pmlc_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pmlc_arena_free(pmlc_arena *a);

/* A growable array of T in an arena: PMLC_VEC(int) v = {0}; PMLC_PUSH(arena, v, 3); */
#define PMLC_VEC(T) \
    struct {        \
        T *v;       \
        int n, cap; \
    }
#define PMLC_PUSH(arena, vec, x)                                                     \
    do {                                                                             \
        if ((vec).n == (vec).cap) {                                                  \
            int ncap_ = (vec).cap ? (vec).cap * 2 : 8;                               \
            void *nv_ = pmlc_arena_alloc((arena), (size_t)ncap_ * sizeof(*(vec).v)); \
            if ((vec).n) memcpy(nv_, (vec).v, (size_t)(vec).n * sizeof(*(vec).v));   \
            (vec).v = nv_;                                                           \
            (vec).cap = ncap_;                                                       \
        }                                                                            \
        (vec).v[(vec).n++] = (x);                                                    \
    } while (0)

/* String → pointer map with open addressing; keys are not copied. */
typedef struct pmlc_strmap {
    const char **keys;
    void **vals;
    int cap, n;
} pmlc_strmap;

void *pmlc_strmap_get(const pmlc_strmap *m, const char *key);
/* Sets key → val; returns the previous value or NULL. */
void *pmlc_strmap_put(pmlc_arena *a, pmlc_strmap *m, const char *key, void *val);

#endif
