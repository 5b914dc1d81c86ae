/* harness.h — the formats tests' harness: each test program holds a table of named
 * behaviours; `prog NAME` runs one (ctest registers each as formats.NAME), `prog --list`
 * lists them. CHECK records a failure with its line and goes on; a test passes when no
 * check failed. `prog NAME DIR` first empties DIR (creating it if needed) and runs the
 * test inside it, so every run starts from nothing. Needs _DEFAULT_SOURCE and
 * _XOPEN_SOURCE=700 (for nftw; CMake sets both). */
#ifndef PML_FORMATS_HARNESS_H
#define PML_FORMATS_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/check.h"
#include "core/error.h"

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

/* The call failed with `code` and a message that contains `part` (the path, say). */
#define CHECK_ERR(call, err, code, part)                                                                  \
    do {                                                                                                  \
        pml_status st_ = (call);                                                                          \
        CHECK(st_ == (code));                                                                             \
        CHECK(strstr((err).msg, (part)) != NULL);                                                         \
        if (st_ != (code) || !strstr((err).msg, (part)))                                                  \
            fprintf(stderr, "  got status %d (%s), message: %s\n", st_, pml_status_name(st_), (err).msg); \
    } while (0)

static inline int write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* The whole file in a malloc'd buffer (NUL-terminated), or NULL. */
static inline unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, r;
    do {
        if (cap - len < 4096) {
            cap = cap * 2 + 4096;
            unsigned char *nb = realloc(buf, cap + 1);
            if (!nb) break;
            buf = nb;
        }
        r = fread(buf + len, 1, cap - len, f);
        len += r;
    } while (r);
    fclose(f);
    if (buf) buf[len] = 0;
    *n = len;
    return buf;
}

static inline int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static inline int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag;
    return ftw->level == 0 ? 0 : remove(path); /* the folder itself stays */
}

/* Empties `dir` (without following links), creates it if absent, and enters it. */
static inline int enter_empty_folder(const char *dir)
{
    mkdir(dir, 0777);
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 || chdir(dir) != 0) {
        fprintf(stderr, "cannot empty and enter the work folder %s\n", dir);
        return -1;
    }
    return 0;
}

static inline int test_main(int argc, char **argv, const test_case *cases, size_t n)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++) printf("%s\n", cases[i].name);
        return 0;
    }
    for (size_t i = 0; (argc == 2 || argc == 3) && i < n; i++) {
        if (strcmp(argv[1], cases[i].name) == 0) {
            if (argc == 3 && enter_empty_folder(argv[2]) != 0) return 2;
            cases[i].fn();
            printf("%s: %d checks, %d failed\n", cases[i].name, check_count, check_failures);
            return check_failures != 0;
        }
    }
    fprintf(stderr, "usage: %s --list | NAME [WORK_FOLDER] (NAME from --list)\n", argv[0]);
    return 2;
}

#endif
