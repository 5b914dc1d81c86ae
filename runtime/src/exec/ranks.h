/* ranks.h — who this process is in a multi-process run, and which pipeline stages it
 * runs. No MPI here: the rank and world size come from the launcher's environment or
 * from the caller, so the layout is decided the same way whatever moves the bytes.
 *
 * Where rank and world come from, first match wins:
 *   Open MPI's mpirun   OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE
 *   Slurm's srun        SLURM_PROCID, SLURM_NTASKS
 *   torchrun style      RANK, WORLD_SIZE
 * and otherwise one process (rank 0 of 1); with MASTER_ADDR set (a torchrun-style
 * launch, exec/tcp/dist_tcp.h) RANK and WORLD_SIZE come before Slurm's, which a
 * torchrun inside a batch job inherits from the job. A caller's flags override all.
 *
 * Which stages a rank owns: the S stages are cut into `world` contiguous runs, rank r
 * owning stages [floor(r·S/W), floor((r+1)·S/W)). The planner already balanced the
 * stages by cost, so equal counts are balanced work; contiguity keeps every boundary
 * between two ranks a single pair of neighbours. A world larger than the number of
 * stages is an error (a rank with no stage would have nothing to do).
 *
 * Chunks (interleaved 1F1B, ZB-V, DualPipeV: conf.chunks > 1): what is split over the
 * ranks is the stage devices (the timetable's lists), not the model stages (chunks);
 * a rank runs its devices whole, every chunk of each (pml_plan_chunk_device), so the
 * "stages" of the split below are then devices. Without chunks the two are the same.
 *
 * Data-parallel replicas: with R replicas the world is R pipelines of P = world / R
 * ranks, replica-major: rank r is position r mod P of replica r / P, and runs that
 * position's stages. Neighbouring ranks are then in one pipeline, so a launcher that
 * fills nodes in rank order keeps the per-micro-batch traffic inside a node and only
 * the once-per-step gradient sums between nodes. */
#ifndef PML_TRAIN_RANKS_H
#define PML_TRAIN_RANKS_H

#include <stdint.h>

#include "core/error.h"

typedef struct pml_ranks {
    int rank, world;
    const char *source; /* which variables said so ("OMPI_COMM_WORLD_*", ...), or "default" */
} pml_ranks;

/* Reads the environment (see above). A variable that is set but is not a number in
 * range (rank < world, 1 <= world <= 1 << 20) is PML_ERR_INVALID_ARG naming it. */
pml_status pml_ranks_from_env(pml_ranks *out, pml_err *err);

/* The launcher's rank of this process among those on its host, for one GPU per
 * process (pmlc --devices local): OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, then
 * LOCAL_RANK (torchrun), the first that is set, in the order and with the MASTER_ADDR
 * rule of pml_ranks_from_env; *from names it. None set, or one that is not a number from
 * 0, is PML_ERR_INVALID_ARG saying so. */
pml_status pml_ranks_local_from_env(int *local, const char **from, pml_err *err);

/* The stages [*first, *last) rank `rank` of `world` owns out of `stages`. */
pml_status pml_ranks_stages(int stages, int world, int rank, int *first, int *last, pml_err *err);

/* The rank that owns `stage` (the inverse of pml_ranks_stages). */
int pml_ranks_owner(int stages, int world, int stage);

/* The rank of `world` that runs model stage (chunk) `stage` of a plan whose timetable
 * has `devices` lists under `schedule` (the plan's conf.schedule): its device's owner. */
int pml_ranks_chunk_owner(int devices, int schedule, int world, int stage);

/* Where rank `rank` of `world` stands with `replicas` pipelines (see above). */
typedef struct pml_rank_place {
    int replica, replicas; /* which pipeline, of how many */
    int per_replica;       /* ranks in each pipeline */
    int first, last;       /* the stages (with chunks: stage devices) it runs */
} pml_rank_place;

pml_status pml_ranks_place(int stages, int world, int replicas, int rank, pml_rank_place *out, pml_err *err);

#endif
