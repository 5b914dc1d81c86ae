/* source.c — see source.h. */
#include "front/source.h"

#include <string.h>

int pmlc_sources_add(pmlc_arena *a, pmlc_sources *s, const char *path, const char *text, size_t len)
{
    pmlc_source src = {0};
    src.path = pmlc_arena_strdup(a, path);
    const char *slash = strrchr(path, '/');
    src.dir = slash ? pmlc_arena_strndup(a, path, (size_t)(slash - path) + (slash == path)) : ".";
    src.text = pmlc_arena_strndup(a, text, len);
    src.len = (uint32_t)len;
    PMLC_PUSH(a, s->files, src);
    return s->files.n - 1;
}

static void index_lines(pmlc_arena *a, pmlc_source *src)
{
    if (src->lines) return;
    int n = 1;
    for (uint32_t i = 0; i < src->len; i++) n += src->text[i] == '\n';
    src->lines = pmlc_arena_alloc(a, (size_t)n * sizeof *src->lines);
    int k = 0;
    src->lines[k++] = 0;
    for (uint32_t i = 0; i < src->len; i++)
        if (src->text[i] == '\n') src->lines[k++] = i + 1;
    src->n_lines = n;
}

static int line_of(pmlc_arena *a, pmlc_source *src, uint32_t off)
{
    index_lines(a, src);
    int lo = 0, hi = src->n_lines - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (src->lines[mid] <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

void pmlc_source_linecol(pmlc_arena *a, pmlc_source *src, uint32_t off, int *line, int *col)
{
    if (off > src->len) off = src->len;
    int l = line_of(a, src, off);
    int c = 1;
    for (uint32_t i = src->lines[l]; i < off; i++) c += ((unsigned char)src->text[i] & 0xC0) != 0x80;
    *line = l + 1;
    *col = c;
}

void pmlc_source_line_range(pmlc_arena *a, pmlc_source *src, uint32_t off, uint32_t *b, uint32_t *e)
{
    if (off > src->len) off = src->len;
    int l = line_of(a, src, off);
    *b = src->lines[l];
    uint32_t end = *b;
    while (end < src->len && src->text[end] != '\n') end++;
    if (end > *b && src->text[end - 1] == '\r') end--;
    *e = end;
}

size_t pmlc_utf8_check(const char *str, size_t len, const char **why)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c == 0) {
            *why = "NUL byte in source";
            return i;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        int n;
        unsigned min;
        if ((c & 0xE0) == 0xC0)
            n = 1, min = 0x80, c &= 0x1F;
        else if ((c & 0xF0) == 0xE0)
            n = 2, min = 0x800, c &= 0x0F;
        else if ((c & 0xF8) == 0xF0)
            n = 3, min = 0x10000, c &= 0x07;
        else {
            *why = "invalid UTF-8 byte";
            return i;
        }
        for (int k = 1; k <= n; k++) {
            if (i + (size_t)k >= len || (s[i + k] & 0xC0) != 0x80) {
                *why = i + (size_t)k >= len ? "truncated UTF-8 sequence" : "invalid UTF-8 sequence";
                return i;
            }
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            *why = "invalid UTF-8 sequence (overlong or out of range)";
            return i;
        }
        i += (size_t)n + 1;
    }
    return len;
}
