/* source.h — the source files of one compile, and locations in them.
 *
 * A location is a file id plus a byte range; line and column are computed only when a
 * diagnostic is printed (jq's locfile idea). Files are loaded whole and validated as
 * UTF-8 without NUL bytes before any lexing. */
#ifndef PMLC_SOURCE_H
#define PMLC_SOURCE_H

#include "front/arena.h"

typedef struct pmlc_loc {
    int32_t file;   /* index into the source table; -1: no location */
    uint32_t begin; /* byte offsets, end exclusive */
    uint32_t end;
} pmlc_loc;

#define PMLC_NOLOC ((pmlc_loc){-1, 0, 0})

typedef struct pmlc_source {
    const char *path; /* as given or as resolved; printed in diagnostics */
    const char *dir;  /* folder of the file, for relative imports */
    const char *text; /* NUL-terminated copy */
    uint32_t len;
    uint32_t *lines; /* byte offset of each line start, computed on demand */
    int n_lines;
} pmlc_source;

typedef struct pmlc_sources {
    PMLC_VEC(pmlc_source) files;
} pmlc_sources;

/* Largest source file accepted. */
#define PMLC_MAX_SOURCE_BYTES (64u << 20)

/* Adds a file from memory; returns its id. */
int pmlc_sources_add(pmlc_arena *a, pmlc_sources *s, const char *path, const char *text, size_t len);

/* 1-based line and column (in code points) of a byte offset. */
void pmlc_source_linecol(pmlc_arena *a, pmlc_source *src, uint32_t off, int *line, int *col);

/* Byte range [*b, *e) of the line holding offset `off` (without the newline). */
void pmlc_source_line_range(pmlc_arena *a, pmlc_source *src, uint32_t off, uint32_t *b, uint32_t *e);

/* Offset of the first byte that is not valid UTF-8 or is NUL; `len` when all is valid. */
size_t pmlc_utf8_check(const char *s, size_t len, const char **why);

#endif
