/* arena.c — see arena.h. Blocks of 64 KiB; larger requests get a block of their own. */
#include "front/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pml/hash.h"

struct pmlc_arena_block {
    pmlc_arena_block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

enum { ARENA_BLOCK = 64 * 1024 };

void *pmlc_arena_alloc(pmlc_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    pmlc_arena_block *b = a->head;
    if (!b || b->size - b->used < size) {
        size_t cap = size > ARENA_BLOCK / 4 ? size : ARENA_BLOCK;
        b = calloc(1, sizeof *b + cap);
        if (!b) {
            fputs("pmlc: out of memory\n", stderr);
            abort();
        }
        b->size = cap;
        if (size > ARENA_BLOCK / 4 && a->head) {
            /* Keep the current block in front so its free space is still used. */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += size;
    a->used_total += size;
    return p;
}

char *pmlc_arena_strndup(pmlc_arena *a, const char *s, size_t n)
{
    char *d = pmlc_arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *pmlc_arena_strdup(pmlc_arena *a, const char *s) { return pmlc_arena_strndup(a, s, strlen(s)); }

char *pmlc_arena_printf(pmlc_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = pmlc_arena_alloc(a, (size_t)n + 1);
    vsnprintf(d, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return d;
}

void pmlc_arena_free(pmlc_arena *a)
{
    pmlc_arena_block *b = a->head;
    while (b) {
        pmlc_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used_total = 0;
}

void *pmlc_strmap_get(const pmlc_strmap *m, const char *key)
{
    if (!m->cap) return NULL;
    for (uint64_t i = pml_fnv1a_str(PML_FNV1A_SEED, key) & (uint64_t)(m->cap - 1);; i = (i + 1) & (uint64_t)(m->cap - 1)) {
        if (!m->keys[i]) return NULL;
        if (!strcmp(m->keys[i], key)) return m->vals[i];
    }
}

void *pmlc_strmap_put(pmlc_arena *a, pmlc_strmap *m, const char *key, void *val)
{
    if ((m->n + 1) * 2 > m->cap) {
        pmlc_strmap old = *m;
        m->cap = old.cap ? old.cap * 2 : 16;
        m->keys = pmlc_arena_alloc(a, (size_t)m->cap * sizeof *m->keys);
        m->vals = pmlc_arena_alloc(a, (size_t)m->cap * sizeof *m->vals);
        m->n = 0;
        for (int i = 0; i < old.cap; i++)
            if (old.keys[i]) pmlc_strmap_put(a, m, old.keys[i], old.vals[i]);
    }
    for (uint64_t i = pml_fnv1a_str(PML_FNV1A_SEED, key) & (uint64_t)(m->cap - 1);; i = (i + 1) & (uint64_t)(m->cap - 1)) {
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return NULL;
        }
        if (!strcmp(m->keys[i], key)) {
            void *prev = m->vals[i];
            m->vals[i] = val;
            return prev;
        }
    }
}
