/* kcache.h — the on-disk cache of compiled kernels, so a second build of the same
 * model skips NVRTC.
 *
 * An entry is found by a hash of its key, and the key is the whole text of
 * (cache version, NVRTC version, arch, options, source) — stored in the entry and
 * compared on load, so a hash collision is a miss, never a wrong kernel. Entries are
 * written atomically (a temporary file, fsync, rename); a damaged entry (wrong magic,
 * short, bad checksum, other key) is ignored, counted in `rejected`, and replaced by
 * the next store.
 *
 * Where: $PML_CACHE_DIR, else $XDG_CACHE_HOME/pml, else $HOME/.cache/pml, in a
 * "kernels" folder; PML_CACHE=0 disables it. The cache never fails a build: when a
 * folder cannot be made or written, stores are dropped and counted in `errors`.
 * Thread-safety: one pmlc_kcache per thread (the counters are plain ints). */
#ifndef PMLC_KCACHE_H
#define PMLC_KCACHE_H

#include <stddef.h>

#define PMLC_KCACHE_VERSION 1

typedef struct pmlc_kcache {
    int enabled;
    char dir[4096];                              /* .../kernels */
    int hits, misses, stores, rejected, errors; /* since init */
} pmlc_kcache;

/* Reads the environment; `kc->enabled` says whether there is a cache. */
void pmlc_kcache_init(pmlc_kcache *kc);

/* The key of a compile, malloc'ed: every input that decides the binary. */
char *pmlc_kcache_key(const char *nvrtc_version, const char *arch, const char *options, const char *source);

/* On a hit returns 1 with the stored bytes in *data (malloc'ed) and *size. */
int pmlc_kcache_get(pmlc_kcache *kc, const char *key, unsigned char **data, size_t *size);

/* Stores the bytes for `key`; returns 0, or -1 when it could not (counted). */
int pmlc_kcache_put(pmlc_kcache *kc, const char *key, const unsigned char *data, size_t size);

/* The file an entry lives in (for tests that damage one). */
void pmlc_kcache_path(const pmlc_kcache *kc, const char *key, char *buf, size_t cap);

#endif
