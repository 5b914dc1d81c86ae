/* cli_util.c — see cli_util.h. */
#include "cli_util.h"

#include <stdio.h>

#include "exec/backend.h"

static char last_error[1200];

int pmlc_cli_fail(const char *what, const pml_err *err)
{
    snprintf(last_error, sizeof last_error, "%s%s%s", what, err ? ": " : "", err ? err->msg : "");
    fprintf(stderr, "pmlc: error: %s\n", last_error);
    return 1;
}

const char *pmlc_cli_last_error(void) { return last_error; }

int pmlc_cli_backend(pml_backend want, const pml_plan *plan, pml_backend *got, const pml_backend_ops **ops)
{
    pml_err err = {0};
    if (pml_backend_select(want, plan, got, &err)) return pmlc_cli_fail("--backend cuda", &err);
    *ops = pml_backend_ops_of(*got);
    return 0;
}
