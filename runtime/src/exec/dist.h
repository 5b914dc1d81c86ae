/* dist.h — what the pipeline executor needs from the other processes of a run: the
 * interface a multi-process runtime implements (the MPI one is exec/mpi/dist_mpi.h,
 * built only when MPI is found). libpml itself never links a communication library;
 * a program that wants ranks creates a pml_dist and passes it in pml_pipeline_opts.
 *
 * A rank runs the stage devices (timetable lists) [first, last) (ranks.h says which):
 * without chunks its stages, with chunks every chunk of those devices. Every call that waits
 * for another rank gives up after the implementation's deadline with a status and a
 * message naming the rank that did not answer: nothing here blocks forever.
 *
 * Threading: transport calls and sum_replicas come from the stage threads,
 * concurrently; sum and move from one thread at a time (sum from the stage thread that
 * closes a step's barrier, move from the thread driving the pipeline between steps). */
#ifndef PML_TRAIN_DIST_H
#define PML_TRAIN_DIST_H

#include <stddef.h>

#include "backend_ops.h"
#include "exec/ranks.h"
#include "exec/transport.h"

typedef struct pml_dist pml_dist;
struct pml_dist {
    int rank, world;
    int first, last;       /* this rank's stage devices (timetable lists): its stages without chunks */
    int devices, schedule; /* the plan's stage devices and conf.schedule: where each chunk runs */
    int replica, replicas; /* data parallelism: this rank's pipeline, of how many (ranks.h) */

    /* The transport for this rank's stages: a message between two of its own stages
     * stays in the process, one to another rank's stage carries the bytes of the
     * backend's boundary buffers (pml_backend_boundary) to the same buffers there. */
    pml_status (*transport_create)(pml_dist *d, pml_backend_inst *be, int stages, int64_t microbatches,
                                   pml_transport **out, pml_err *err);
    /* Sums x[0..n) over every rank, each rank receiving the sums. */
    pml_status (*sum)(pml_dist *d, double *x, int n, pml_err *err);
    /* Sums each of the n buffers x[i][0..len[i]) over the ranks running `stage` in
     * every replica (in replica order, so every replica gets the same bits), each
     * receiving the sums; all of a stage's buffers in one call, so their messages are
     * in flight together rather than one round trip each. Called from the stage's
     * thread, concurrently for different stages. */
    pml_status (*sum_replicas)(pml_dist *d, int stage, float *const *x, const size_t *len, int n, pml_err *err);
    /* Moves `bytes` from rank `from`'s `buf` into rank `to`'s `buf`; called by every
     * rank in the same order, a no-op on the others. */
    pml_status (*move)(pml_dist *d, int from, int to, void *buf, size_t bytes, pml_err *err);
    /* The run failed on this rank, for reason `why` (a message, or NULL): the other
     * ranks are told (liveness.h: they stop naming this rank and its reason instead of
     * waiting for it to answer), and destroy must not wait for them (they may be waiting
     * for this one, or gone). */
    void (*abandon)(pml_dist *d, const char *why);
    /* NULL-safe through pml_dist_destroy. Without abandon, this rank ended its run: the
     * others are told so before it leaves, and do not take its silence for death. */
    void (*destroy)(pml_dist *d);
};

/* The rank that runs model stage (chunk) `stage` in replica `replica`. */
static inline int pml_dist_owner(const pml_dist *d, int replica, int stage)
{
    int per = d->world / d->replicas;
    return replica * per + pml_ranks_chunk_owner(d->devices, d->schedule, per, stage);
}

/* pml_dist_destroy (d->destroy, NULL-safe) is public: pml.h. */

#endif
