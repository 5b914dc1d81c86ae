/* fuzz_files.h — for libFuzzer targets whose reader takes a folder of files (a shard set,
 * a checkpoint): one fuzz input unpacked into files of a scratch folder.
 *
 * The input is a run of parts, each
 *     u8 name length, the name, u32 little-endian size, that many bytes
 * (a size past the input's end takes what is left; a truncated header ends the run). A
 * name may hold one '/' (a file inside a subfolder, created as needed); each of its
 * parts keeps only [A-Za-z0-9._-] (others become '_'), and a part that is empty, "." or
 * ".." drops the file, so nothing is written outside the folder. A later part of the
 * same name replaces the earlier. At most FUZZ_FILES_MAX files are written.
 *
 * tests/fuzz/make_seeds.py writes seeds in this format (pack()), from real folders.
 *
 * Header-only: each target includes it once. The folder is made once per process under
 * $TMPDIR (or /tmp), emptied before each input and removed at exit. Needs
 * _XOPEN_SOURCE=700 (nftw, mkdtemp). */
#ifndef PML_FUZZ_FILES_H
#define PML_FUZZ_FILES_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_FILES_MAX 8

static char fuzz_files_dir[256];

static int fuzz_files_remove(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag;
    return ftw->level == 0 ? 0 : remove(path);
}

static void fuzz_files_empty(void) { nftw(fuzz_files_dir, fuzz_files_remove, 16, FTW_DEPTH | FTW_PHYS); }

static void fuzz_files_cleanup(void)
{
    fuzz_files_empty();
    rmdir(fuzz_files_dir);
}

/* The scratch folder (made on first use); aborts when it cannot be made. */
static const char *fuzz_files_folder(void)
{
    if (!fuzz_files_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_files_dir, sizeof fuzz_files_dir, "%s/pml_fuzz_XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fuzz_files_dir)) {
            perror("fuzz_files: mkdtemp");
            abort();
        }
        atexit(fuzz_files_cleanup);
    }
    return fuzz_files_dir;
}

/* Keeps [A-Za-z0-9._-] of one name part (others become '_'); 0 when the part must be
 * dropped (empty, "." or ".."). */
static int fuzz_files_clean_part(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '_' || c == '-';
        if (!ok) s[i] = '_';
    }
    return n > 0 && strcmp(s, ".") && strcmp(s, "..");
}

/* Empties the folder and writes the input's files into it; returns the folder. */
static const char *fuzz_files_unpack(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_files_folder();
    fuzz_files_empty();
    size_t at = 0;
    for (int files = 0; files < FUZZ_FILES_MAX && at < size; files++) {
        size_t n = data[at++];
        if (n > size - at || size - at - n < 4) break;
        char name[256];
        memcpy(name, data + at, n);
        name[n] = 0;
        at += n;
        size_t len = (size_t)data[at] | (size_t)data[at + 1] << 8 | (size_t)data[at + 2] << 16 |
                     (size_t)data[at + 3] << 24;
        at += 4;
        if (len > size - at) len = size - at;
        const uint8_t *bytes = data + at;
        at += len;

        if (memchr(name, 0, n)) continue; /* a NUL inside */
        char *slash = strchr(name, '/');
        if (slash) *slash = 0;
        if (!fuzz_files_clean_part(name, strlen(name))) continue;
        if (slash && (strchr(slash + 1, '/') || !fuzz_files_clean_part(slash + 1, strlen(slash + 1)))) continue;
        char path[600];
        if (slash) {
            snprintf(path, sizeof path, "%s/%s", dir, name);
            mkdir(path, 0777); /* fails harmlessly when a file of that name is there: the write then fails */
            snprintf(path, sizeof path, "%s/%s/%s", dir, name, slash + 1);
        } else {
            snprintf(path, sizeof path, "%s/%s", dir, name);
        }
        FILE *f = fopen(path, "wb");
        if (!f) continue; /* e.g. the name of a folder made above */
        if (len) fwrite(bytes, 1, len, f);
        fclose(f);
    }
    return dir;
}

#endif
