/* ranks.c — rank and world from the launcher's environment, and the contiguous split
 * of stages over ranks (see ranks.h). */
#include "exec/ranks.h"

#include <errno.h>
#include <stdlib.h>

#include "pml/plan_format.h"

enum { RANKS_MAX_WORLD = 1 << 20 };

/* One of the environment variables as an integer in [lo, hi]; *set says whether it is
 * there at all. */
static pml_status env_int(const char *name, long lo, long hi, long *v, int *set, pml_err *err)
{
    const char *s = getenv(name);
    *set = s != NULL;
    if (!s) return PML_OK;
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    if (errno || end == s || *end || *v < lo || *v > hi)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s is '%s', not a number from %ld to %ld", name, s, lo, hi);
    return PML_OK;
}

pml_status pml_ranks_from_env(pml_ranks *out, pml_err *err)
{
    static const char *const vars[][3] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_*"},
                                          {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_PROCID/SLURM_NTASKS"},
                                          {"RANK", "WORLD_SIZE", "RANK/WORLD_SIZE"}};
    /* torchrun's variables come before Slurm's when MASTER_ADDR says a torchrun-style
     * launch: torchrun inside a batch job inherits the job's SLURM_* (ranks.h). */
    const char *master = getenv("MASTER_ADDR");
    const int order[2][3] = {{0, 1, 2}, {0, 2, 1}}, *pick = order[master && *master];
    *out = (pml_ranks){0, 1, "default"};
    for (int k = 0; k < 3; k++) {
        const char *const *v = vars[pick[k]];
        long rank = 0, world = 1;
        int has_rank, has_world;
        pml_status st = env_int(v[1], 1, RANKS_MAX_WORLD, &world, &has_world, err);
        if (!st) st = env_int(v[0], 0, RANKS_MAX_WORLD - 1, &rank, &has_rank, err);
        if (st) return st;
        if (!has_rank && !has_world) continue;
        if (has_rank != has_world)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s is set but %s is not", has_rank ? v[0] : v[1],
                               has_rank ? v[1] : v[0]);
        if (rank >= world)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s is %ld, not below %s (%ld)", v[0], rank, v[1], world);
        *out = (pml_ranks){(int)rank, (int)world, v[2]};
        return PML_OK;
    }
    return PML_OK;
}

pml_status pml_ranks_local_from_env(int *local, const char **from, pml_err *err)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"};
    const char *master = getenv("MASTER_ADDR"); /* torchrun's before Slurm's, as for the rank */
    const int order[2][3] = {{0, 1, 2}, {0, 2, 1}}, *pick = order[master && *master];
    for (int k = 0; k < 3; k++) {
        long v = 0;
        int set;
        pml_status st = env_int(vars[pick[k]], 0, RANKS_MAX_WORLD - 1, &v, &set, err);
        if (st) return st;
        if (set) return *local = (int)v, *from = vars[pick[k]], PML_OK;
    }
    return pml_err_set(err, PML_ERR_INVALID_ARG,
                       "no launcher said this process's local rank (LOCAL_RANK from torchrun, "
                       "OMPI_COMM_WORLD_LOCAL_RANK from mpirun, SLURM_LOCALID from srun): give the GPUs with "
                       "--devices N,... instead");
}

pml_status pml_ranks_stages(int stages, int world, int rank, int *first, int *last, pml_err *err)
{
    if (world < 1 || rank < 0 || rank >= world)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "rank %d of %d does not exist", rank, world);
    if (world > stages)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "%d ranks but the plan has %d stage%s: every rank needs at least one stage "
                           "(plan more stages, or run fewer ranks)",
                           world, stages, stages == 1 ? "" : "s");
    *first = (int)((int64_t)rank * stages / world);
    *last = (int)((int64_t)(rank + 1) * stages / world);
    return PML_OK;
}

int pml_ranks_owner(int stages, int world, int stage)
{
    /* The largest r with floor(r·S/W) <= stage. */
    int r = (int)(((int64_t)stage * world + world - 1) / stages);
    while (r > 0 && (int64_t)r * stages / world > stage) r--;
    while (r + 1 < world && (int64_t)(r + 1) * stages / world <= stage) r++;
    return r;
}

int pml_ranks_chunk_owner(int devices, int schedule, int world, int stage)
{
    return pml_ranks_owner(devices, world, pml_plan_chunk_device(stage, devices, schedule));
}

pml_status pml_ranks_place(int stages, int world, int replicas, int rank, pml_rank_place *out, pml_err *err)
{
    if (replicas < 1 || world % replicas)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%d ranks cannot form %d equal pipeline replicas", world,
                           replicas);
    int per = world / replicas;
    if (rank < 0 || rank >= world)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "rank %d of %d does not exist", rank, world);
    *out = (pml_rank_place){rank / per, replicas, per, 0, 0};
    return pml_ranks_stages(stages, per, rank % per, &out->first, &out->last, err);
}
