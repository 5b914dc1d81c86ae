/* diag.h — diagnostics: `file:line:col: error: message`, the source line, a caret
 * and tildes under the range, then notes. The text is stable so golden tests can pin
 * it. Errors past the limit are counted but not printed, and `stop` tells the
 * passes to give up early. */
#ifndef PMLC_DIAG_H
#define PMLC_DIAG_H

#include <stdio.h>

#include "front/source.h"

typedef enum pmlc_diag_kind { PMLC_DIAG_ERROR, PMLC_DIAG_WARNING, PMLC_DIAG_NOTE } pmlc_diag_kind;

typedef struct pmlc_diag {
    pmlc_arena *arena;
    pmlc_sources *sources;
    FILE *out; /* NULL: discard */
    int color;
    int max_errors;
    int errors;
    int warnings;
    int stop;       /* set once the error limit is reached */
    int last_shown; /* whether the last error/warning was printed (its notes follow it) */
    /* Called after each printed error, to add context notes (the elaborator points
     * from inside a library function back to the user's call). */
    void (*after_error)(void *ctx, pmlc_loc loc);
    void *after_error_ctx;
} pmlc_diag;

void pmlc_diag_report(pmlc_diag *d, pmlc_diag_kind kind, pmlc_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define pmlc_error(d, loc, ...) pmlc_diag_report((d), PMLC_DIAG_ERROR, (loc), __VA_ARGS__)
#define pmlc_warning(d, loc, ...) pmlc_diag_report((d), PMLC_DIAG_WARNING, (loc), __VA_ARGS__)
#define pmlc_note(d, loc, ...) pmlc_diag_report((d), PMLC_DIAG_NOTE, (loc), __VA_ARGS__)

/* The closest of `cands` to `name` by edit distance, or NULL when none is close
 * enough to be a plausible typo. */
const char *pmlc_suggest(const char *name, const char *const *cands, int n);

/* Reports the error `fmt` about `name`, followed by "; did you mean 'X'?" with the
 * closest of `cands`, or by `otherwise` (may be "") when none is close. */
void pmlc_error_unknown(pmlc_diag *d, pmlc_loc loc, const char *name, const char *const *cands, int n,
                        const char *otherwise, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

#endif
