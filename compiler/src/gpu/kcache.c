/* kcache.c — see kcache.h. An entry file is
 *   "PMLKCACH" | u32 version | u32 0 | u64 key bytes | u64 data bytes | u64 FNV-1a of
 *   key and data | key | data
 * in host byte order (a cache is local to one machine). The atomic write is spelled out
 * here because the compiler library does not link the runtime (formats/atomic_file.c). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strtok_r, O_CLOEXEC, fsync */
#include "gpu/kcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pml/hash.h"

static const char magic[8] = {'P', 'M', 'L', 'K', 'C', 'A', 'C', 'H'};

typedef struct header {
    char magic[8];
    uint32_t version, zero;
    uint64_t key_len, data_len, sum;
} header;

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, 0777);
        *p = '/';
        if (r && errno != EEXIST) return -1;
    }
    return mkdir(path, 0777) && errno != EEXIST ? -1 : 0;
}

void pmlc_kcache_init(pmlc_kcache *kc)
{
    memset(kc, 0, sizeof *kc);
    const char *off = getenv("PML_CACHE");
    if (off && !strcmp(off, "0")) return;
    const char *dir = getenv("PML_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (dir && *dir)
        n = snprintf(kc->dir, sizeof kc->dir, "%s/kernels", dir);
    else if (xdg && *xdg)
        n = snprintf(kc->dir, sizeof kc->dir, "%s/pml/kernels", xdg);
    else if (home && *home)
        n = snprintf(kc->dir, sizeof kc->dir, "%s/.cache/pml/kernels", home);
    else
        return;
    kc->enabled = n > 0 && (size_t)n < sizeof kc->dir;
}

char *pmlc_kcache_key(const char *nvrtc_version, const char *arch, const char *options, const char *source)
{
    const char *fmt = "pml kernel cache %d\nnvrtc %s\narch %s\noptions\n%s\nsource\n%s";
    int n = snprintf(NULL, 0, fmt, PMLC_KCACHE_VERSION, nvrtc_version, arch, options, source);
    char *k = malloc((size_t)n + 1);
    if (k) snprintf(k, (size_t)n + 1, fmt, PMLC_KCACHE_VERSION, nvrtc_version, arch, options, source);
    return k;
}

void pmlc_kcache_path(const pmlc_kcache *kc, const char *key, char *buf, size_t cap)
{
    size_t n = strlen(key);
    /* 128 bits: two FNV-1a hashes from different starts. */
    uint64_t a = pml_fnv1a(PML_FNV1A_SEED, key, n), b = pml_fnv1a(0x84222325cbf29ce4ull, key, n);
    snprintf(buf, cap, "%s/%016llx%016llx.bin", kc->dir, (unsigned long long)a, (unsigned long long)b);
}

static int read_all(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n; }

int pmlc_kcache_get(pmlc_kcache *kc, const char *key, unsigned char **data, size_t *size)
{
    *data = NULL, *size = 0;
    if (!kc->enabled) return 0;
    char path[4200];
    pmlc_kcache_path(kc, key, path, sizeof path);
    /* Without blocking, and only a regular file: anything else planted in the cache
     * folder (a fifo) is a miss, never a wait. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    FILE *f = fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        kc->misses++;
        return 0;
    }
    size_t klen = strlen(key);
    header h;
    char *stored = NULL;
    unsigned char *d = NULL;
    int ok = read_all(f, &h, sizeof h) && !memcmp(h.magic, magic, 8) && h.version == PMLC_KCACHE_VERSION &&
             h.key_len == klen && h.data_len < ((uint64_t)1 << 34);
    ok = ok && (stored = malloc(klen + 1)) && (d = malloc(h.data_len ? h.data_len : 1));
    ok = ok && read_all(f, stored, klen) && read_all(f, d, h.data_len) && fgetc(f) == EOF;
    ok = ok && !memcmp(stored, key, klen) && pml_fnv1a(pml_fnv1a(PML_FNV1A_SEED, stored, klen), d, h.data_len) == h.sum;
    fclose(f);
    free(stored);
    if (!ok) {
        free(d);
        kc->rejected++;
        kc->misses++;
        return 0;
    }
    kc->hits++;
    *data = d, *size = h.data_len;
    return 1;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        s += w, n -= (size_t)w;
    }
    return 0;
}

int pmlc_kcache_put(pmlc_kcache *kc, const char *key, const unsigned char *data, size_t size)
{
    if (!kc->enabled) return 0;
    char path[4200], tmp[4300];
    if (mkdirs(kc->dir)) {
        kc->errors++;
        return -1;
    }
    pmlc_kcache_path(kc, key, path, sizeof path);
    static unsigned counter;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
    size_t klen = strlen(key);
    header h;
    memcpy(h.magic, magic, 8);
    h.version = PMLC_KCACHE_VERSION, h.zero = 0, h.key_len = klen, h.data_len = size;
    h.sum = pml_fnv1a(pml_fnv1a(PML_FNV1A_SEED, key, klen), data, size);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    int bad = fd < 0 || write_all(fd, &h, sizeof h) || write_all(fd, key, klen) || write_all(fd, data, size) ||
              fsync(fd);
    if (fd >= 0 && close(fd)) bad = 1;
    if (!bad && rename(tmp, path)) bad = 1;
    if (bad) {
        if (fd >= 0) unlink(tmp);
        kc->errors++;
        return -1;
    }
    kc->stores++;
    return 0;
}
