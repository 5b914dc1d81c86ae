/* api_record.c — how every public call checks its arguments and records its outcome in
 * its context (api_impl.h: pml_api_check, pml_api_record). A file of its own because
 * the pml_mpi library carries a private copy of it (runtime/CMakeLists.txt): it needs
 * these two and nothing else of api.c. */
#include <stdarg.h>
#include <stdio.h>

#include "api_impl.h"

pml_status pml_api_record(pml_context *ctx, pml_status st, const pml_err *err)
{
    if (ctx) {
        if (st)
            ctx->last = *err;
        else
            ctx->last.msg[0] = 0, ctx->last.code = PML_OK;
    }
    return st;
}

pml_status pml_api_check(pml_err *err, int ok, const char *call, const char *fmt, ...)
{
    if (err->code || ok) return err->code;
    int n = snprintf(err->msg, sizeof err->msg, "%s: ", call);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof err->msg - (size_t)n, fmt, ap);
    va_end(ap);
    return err->code = PML_ERR_INVALID_ARG;
}
