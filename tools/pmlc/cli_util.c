/* cli_util.c — see cli_util.h. */
#include "cli_util.h"

#include <stdio.h>

int pmlc_cli_fail(const char *what, const char *why)
{
    fprintf(stderr, "pmlc: error: %s%s%s\n", what, why ? ": " : "", why ? why : "");
    return 1;
}

int pmlc_cli_backend(pml_context *ctx, pml_backend want, const pml_plan *plan, pml_backend *got)
{
    if (pml_backend_choose(ctx, plan, want, got)) return pmlc_cli_fail("the backend", pml_context_error(ctx));
    return 0;
}
