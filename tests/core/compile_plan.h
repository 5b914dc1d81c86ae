/* compile_plan.h — for C tests: a PML program (a file, or text held in memory) compiled
 * through the compiler library into a loaded pml_plan, from the same bytes `pmlc build`
 * would write. Header-only, so a test links only what it already links (pmlc_core
 * and pml). */
#ifndef PML_TEST_COMPILE_PLAN_H
#define PML_TEST_COMPILE_PLAN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "plan/plan.h"
#include "pmlc.h"

/* The plan of `path` (read from disk when `text` is NULL, else `text` named `path`),
 * compiled with `options` (NULL: the defaults; diagnostics go to stderr). Returns NULL
 * when it does not compile (the diagnostics say why) or does not load (err says why). */
static inline pml_plan *test_compile_plan(const char *path, const char *text, const pmlc_options *options,
                                          pml_err *err)
{
    pmlc_options opt = {0};
    if (options) opt = *options;
    if (!opt.diag_out) opt.diag_out = stderr;
    pmlc_session *s = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    size_t len = 0;
    pml_plan *pl = NULL;
    if (!s)
        pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    else if ((text ? pmlc_session_check_text(s, path, text, strlen(text)) : pmlc_session_check_file(s, path)) ||
             pmlc_session_plan_bytes(s, &bytes, &len))
        pml_err_set(err, PML_ERR_INVALID_ARG, "%s: does not compile", path);
    else
        pml_plan_read(bytes, len, path, &pl, err);
    free(bytes);
    if (s) pmlc_session_destroy(s);
    return pl;
}

#endif
