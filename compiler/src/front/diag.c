/* diag.c — printing diagnostics (see diag.h) and "did you mean" suggestions. */
#include "front/diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_RED "\033[1;31m"
#define C_MAGENTA "\033[1;35m"
#define C_CYAN "\033[1;36m"
#define C_GREEN "\033[1;32m"

/* Longest stretch of a source line shown; longer lines show a window around the range. */
enum { SHOW_BEFORE = 60, SHOW_AFTER = 100 };

/* Writes source bytes so the terminal gets valid UTF-8: control characters become
 * spaces and bytes that are not valid UTF-8 become '?'. */
static void put_clean(FILE *out, const char *s, uint32_t b, uint32_t e)
{
    for (uint32_t i = b; i < e;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            fputc(c < 0x20 && c != '\t' ? ' ' : c, out);
            i++;
            continue;
        }
        const char *why;
        uint32_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        if (i + n <= e && n > 1 && pmlc_utf8_check(s + i, n, &why) == n) {
            fwrite(s + i, 1, n, out);
            i += n;
        } else {
            fputc('?', out);
            i++;
        }
    }
}

static void print_snippet(pmlc_diag *d, pmlc_source *src, pmlc_loc loc)
{
    uint32_t lb, le;
    pmlc_source_line_range(d->arena, src, loc.begin, &lb, &le);
    uint32_t b = loc.begin < lb ? lb : loc.begin;
    uint32_t e = loc.end > le ? le : loc.end;
    if (e < b) e = b;
    /* Window a very long line; step to UTF-8 boundaries. */
    uint32_t wb = lb, we = le;
    int cut_left = 0, cut_right = 0;
    if (b - lb > SHOW_BEFORE + 20) {
        wb = b - SHOW_BEFORE;
        while (wb > lb && ((unsigned char)src->text[wb] & 0xC0) == 0x80) wb--;
        cut_left = 1;
    }
    if (le - b > SHOW_AFTER + 20) {
        we = b + SHOW_AFTER;
        while (we < le && ((unsigned char)src->text[we] & 0xC0) == 0x80) we++;
        cut_right = 1;
    }
    if (e > we) e = we;
    fputs("    ", d->out);
    if (cut_left) fputs("...", d->out);
    put_clean(d->out, src->text, wb, we);
    if (cut_right) fputs("...", d->out);
    fputs("\n    ", d->out);
    if (cut_left) fputs("   ", d->out);
    for (uint32_t i = wb; i < b; i++) {
        unsigned char c = (unsigned char)src->text[i];
        if ((c & 0xC0) == 0x80) continue;
        fputc(c == '\t' ? '\t' : ' ', d->out);
    }
    if (d->color) fputs(C_GREEN, d->out);
    fputc('^', d->out);
    int first = 1;
    for (uint32_t i = b; i < e; i++) {
        if (((unsigned char)src->text[i] & 0xC0) == 0x80) continue;
        if (first) {
            first = 0;
            continue;
        }
        fputc('~', d->out);
    }
    if (d->color) fputs(C_RESET, d->out);
    fputc('\n', d->out);
}

void pmlc_diag_report(pmlc_diag *d, pmlc_diag_kind kind, pmlc_loc loc, const char *fmt, ...)
{
    if (kind == PMLC_DIAG_ERROR) {
        d->errors++;
        d->last_shown = !d->stop;
        if (d->max_errors > 0 && d->errors >= d->max_errors && !d->stop) {
            d->stop = 1;
            d->last_shown = 1; /* the error reaching the limit is still shown */
        }
    } else if (kind == PMLC_DIAG_WARNING) {
        d->warnings++;
        d->last_shown = !d->stop;
    }
    if (!d->out || !d->last_shown) return;

    static const char *const names[] = {"error", "warning", "note"};
    static const char *const colors[] = {C_RED, C_MAGENTA, C_CYAN};
    pmlc_source *src = loc.file >= 0 && loc.file < d->sources->files.n ? &d->sources->files.v[loc.file] : NULL;
    if (d->color) fputs(C_BOLD, d->out);
    if (src) {
        int line, col;
        pmlc_source_linecol(d->arena, src, loc.begin, &line, &col);
        fprintf(d->out, "%s:%d:%d: ", src->path, line, col);
    } else {
        fputs("pmlc: ", d->out);
    }
    if (d->color)
        fprintf(d->out, "%s%s:" C_RESET C_BOLD " ", colors[kind], names[kind]);
    else
        fprintf(d->out, "%s: ", names[kind]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(d->out, fmt, ap);
    va_end(ap);
    if (d->color) fputs(C_RESET, d->out);
    fputc('\n', d->out);
    if (src) print_snippet(d, src, loc);
    if (kind == PMLC_DIAG_ERROR && d->after_error) d->after_error(d->after_error_ctx, loc);
}

/* Optimal string alignment distance (edits, with adjacent transpositions), capped. */
static int edit_distance(const char *a, const char *b, int cap)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (abs(la - lb) > cap || la > 64 || lb > 64) return cap + 1;
    int d[65][65];
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++) {
        for (int j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

const char *pmlc_suggest(const char *name, const char *const *cands, int n)
{
    int len = (int)strlen(name);
    int cap = len <= 1 ? 0 : len <= 3 ? 1 : len <= 6 ? 2 : 3; /* a one-letter name is rarely a typo of another */
    const char *best = NULL;
    int best_d = cap + 1;
    for (int i = 0; i < n; i++) {
        if (!cands[i] || !strcmp(cands[i], name)) continue;
        int dist = edit_distance(name, cands[i], cap);
        if (dist < best_d) {
            best_d = dist;
            best = cands[i];
        }
    }
    return best;
}

void pmlc_error_unknown(pmlc_diag *d, pmlc_loc loc, const char *name, const char *const *cands, int n,
                        const char *otherwise, const char *fmt, ...)
{
    char head[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    const char *s = pmlc_suggest(name, cands, n);
    if (s)
        pmlc_error(d, loc, "%s; did you mean '%s'?", head, s);
    else
        pmlc_error(d, loc, "%s%s", head, otherwise);
}
