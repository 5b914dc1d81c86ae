/* api_record.c — how every public call checks its arguments and records its outcome in
 * its context (api_impl.h: pml_api_check, pml_api_record, pml_api_check_join). A file
 * of its own because the pml_mpi library carries a private copy of it
 * (runtime/CMakeLists.txt): it needs these and nothing else of api.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "api_impl.h"
#include "exec/ranks.h"
#include "plan/plan.h"

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

pml_status pml_api_check_join(pml_err *err, const char *call, const pml_plan *plan, const pml_ranks_layout *layout,
                              double timeout_s, pml_dist **out)
{
    pml_api_check(err, plan != NULL, call, "plan is NULL");
    pml_api_check(err, layout != NULL, call, "layout is NULL");
    pml_api_check(err, out != NULL, call, "out is NULL");
    pml_api_check(err, isfinite(timeout_s), call, "timeout_s is %g, not a number of seconds", timeout_s);
    if (!err->code)
        pml_api_check(err, layout->replicas >= 0, call, "layout->replicas is %d, below 0", layout->replicas);
    /* A layout pml_ranks_resolve would not have made is refused here, before any other
     * process is reached, rather than by what the others say. */
    pml_rank_place place;
    pml_err why = {0};
    if (!err->code && pml_ranks_place(pml_plan_devices(plan), layout->world,
                                      layout->replicas > 1 ? layout->replicas : 1, layout->rank, &place, &why))
        pml_api_check(err, 0, call, "layout: %s", why.msg);
    return err->code;
}
