/* ranks.c — the driver's collective steps over pml_dist (see ranks.h). */
#include "run/ranks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/dist_params.h"

pml_status pml_run_share(pml_dist *d, void *buf, size_t bytes, pml_err *err)
{
    pml_err why = {0};
    for (int to = 1; d && to < d->world; to++)
        if (d->move(d, 0, to, buf, bytes, &why))
            return pml_err_set(err, why.code, "cannot reach the other ranks: %s", why.msg);
    return PML_OK;
}

pml_status pml_run_agree(pml_dist *d, pml_status st, pml_err *err)
{
    if (!d) return st;
    int32_t failed = st != PML_OK;
    pml_status got = pml_run_share(d, &failed, sizeof failed, err);
    if (got) return got;
    if (!failed) return d->rank == 0 ? st : PML_OK;
    /* Every rank learns why, so that a program on any rank can say it. */
    char msg[sizeof err->msg];
    if (d->rank == 0) snprintf(msg, sizeof msg, "%s", err->msg);
    if ((got = pml_run_share(d, msg, sizeof msg, err))) return got;
    if (d->rank == 0) return st;
    return pml_err_set(err, PML_ERR_PEER, "rank 0: %s", msg);
}

pml_status pml_run_gather(pml_dist *d, const pml_plan *pl, pml_pipeline *pipe, pml_err *err)
{
    pml_err why = {0};
    if (d && pml_dist_params_gather(d, pl, pipe, 0, &why))
        return pml_err_set(err, why.code, "cannot gather the model on rank 0: %s", why.msg);
    return PML_OK;
}

pml_status pml_run_scatter(pml_dist *d, const pml_plan *pl, pml_pipeline *pipe, pml_err *err)
{
    pml_err why = {0};
    if (d && pml_dist_params_scatter(d, pl, pipe, 0, &why))
        return pml_err_set(err, why.code, "cannot send the model from rank 0 to the other ranks: %s", why.msg);
    return PML_OK;
}

int pml_run_default_threads(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN), local = 1;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0] && local == 1; i++) {
        const char *v = getenv(vars[i]);
        long n = v ? strtol(v, NULL, 10) : 0;
        if (n > 1) local = n;
    }
    long t = (cpus > 0 ? cpus : 1) / local;
    return t > 0 ? (int)t : 1;
}
