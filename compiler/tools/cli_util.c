/* cli_util.c — see cli_util.h. */
#include "cli_util.h"

#include <stdio.h>

#include "backend.h"

int pmlc_cli_fail(const char *what, const pml_err *err)
{
    fprintf(stderr, "pmlc: error: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    return 1;
}

int pmlc_cli_backend(pml_backend want, const pml_plan *plan, pml_backend *got, const pml_backend_ops **ops)
{
    pml_err err = {0};
    if (pml_backend_select(want, plan, got, &err)) return pmlc_cli_fail("--backend cuda", &err);
    *ops = pml_backend_ops_of(*got);
    return 0;
}
