/* pml_mpi.h — ranks over MPI: the pml_dist handle (pml.h, "ranks") of the pml_mpi
 * library, built only where CMake finds MPI (PML_MPI), so that libpml itself never
 * needs an MPI installation; a program that runs ranks links pml_mpi and, with it,
 * libmpi (`mpirun -np N pmlc train ...` is such a program, and examples/embed_ranks).
 *
 * Start-up: MPI is initialised with MPI_THREAD_MULTIPLE (the stage threads send and
 * receive concurrently) unless the program did so already; MPI's rank and world must be
 * the layout's. Boundary messages are point-to-point transfers of the backend's
 * boundary buffers. A heartbeat tells a silent rank from a busy one: any wait on
 * another rank fails, naming it, once it has been silent for the timeout, while a peer
 * that is merely busy (a long stage, a checkpoint being written) is waited for. A rank
 * that leaves says goodbye first (pml_dist_destroy), so the others name its reason
 * instead of waiting for it. After a failure pml_dist_destroy does not call
 * MPI_Finalize, which would wait for the missing rank: the program exits, and mpirun
 * ends the rest of the job.
 *
 * Linking: pkg-config pml_mpi, or find_package(pml COMPONENTS mpi) and pml::pml_mpi
 * (README, "Embedding"); both exist only in a PML built with MPI. libpml_mpi shares
 * libpml's private structures, so it runs with the libpml of its own version only:
 * with another, pml_mpi_create returns PML_ERR_UNSUPPORTED and leaves ctx untouched.
 *
 * Errors and thread safety: as pml.h's; the handle is the caller's, destroyed with
 * pml_dist_destroy. */
#ifndef PML_MPI_H
#define PML_MPI_H

#include "pml.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Joins the other ranks of a run of `plan` laid out as `layout` (pml_ranks_resolve),
 * with `timeout_s` seconds of silence after which a rank counts as gone (<= 0: 60).
 * Refused before MPI starts (PML_ERR_INVALID_ARG, the message naming the argument): a
 * NULL argument, a timeout that is not a finite number, and a layout pml_ranks_resolve
 * would not make (a rank outside the world, replicas below 0 or not dividing it, more
 * ranks in a pipeline than the plan has stages). */
PML_API pml_status pml_mpi_create(pml_context *ctx, const pml_plan *plan, const pml_ranks_layout *layout,
                                  double timeout_s, pml_dist **out);

#ifdef __cplusplus
}
#endif
#endif
