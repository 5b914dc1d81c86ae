/* error.h — how runtime modules report failures: a status plus a message, never a
 * print. A function that can fail takes a `pml_err *` (NULL allowed) and returns
 * pml_err_set(err, code, "path: what is wrong", ...) on failure. Messages name the
 * file (or object) and what is wrong with it, as a user would want to read them. */
#ifndef PML_ERROR_H
#define PML_ERROR_H

#include "pml.h"

typedef struct pml_err {
    pml_status code;
    char msg[1024];
} pml_err;

/* Records `code` and the formatted message in `e` (when not NULL); returns `code`. */
pml_status pml_err_set(pml_err *e, pml_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
