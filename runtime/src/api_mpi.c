/* api_mpi.c — pml_mpi.h over exec/mpi/dist_mpi.h: the public way to a pml_dist over MPI.
 * Part of the pml_mpi library, not of libpml (runtime/CMakeLists.txt). */
#include <string.h>

#include "api_impl.h"
#include "exec/mpi/dist_mpi.h"
#include "exec/ranks.h"
#include "plan/plan.h"
#include "pml_mpi.h"

pml_status pml_mpi_create(pml_context *ctx, const pml_plan *plan, const pml_ranks_layout *layout, double timeout_s,
                          pml_dist **out)
{
    if (out) *out = NULL;
    if (!ctx) return PML_ERR_INVALID_ARG;
    /* This library reads libpml's objects from the inside (api_impl.h): with a libpml of
     * another version even writing ctx's message could corrupt it, so nothing is touched. */
    if (strcmp(pml_version(), PML_VERSION_STRING) != 0) return PML_ERR_UNSUPPORTED;
    pml_err err = {0};
    pml_status st = pml_api_check_join(&err, __func__, plan, layout, timeout_s, out);
    if (!st) {
        pml_dist_mpi_conf conf = {.devices = pml_plan_devices(plan),
                                  .schedule = (int)plan->conf.schedule,
                                  .rank = layout->rank,
                                  .world = layout->world,
                                  .replicas = layout->replicas,
                                  .timeout_s = timeout_s};
        st = pml_dist_mpi_create(&conf, out, &err);
    }
    return pml_api_record(ctx, st, &err);
}
