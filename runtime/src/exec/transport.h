/* transport.h — how stages hand tensors to each other: the interface every transport
 * implements (in-process here; between processes over MPI in exec/mpi/, made through
 * dist.h; CUDA peer copies and NCCL later), and the in-process one.
 *
 * A message is named by (from stage, to stage, kind, micro-batch); kind is
 * PML_MSG_ACT (activations, forward) or PML_MSG_GRAD (gradients, backward). send never
 * blocks; recv blocks until the matching send. The in-process transport hands over
 * without copying: stages share one address space, so a send only publishes that the
 * sender's buffers for that micro-batch are complete, with the memory ordering a
 * mutex gives. Between steps, reset clears every mailbox. */
#ifndef PML_TRAIN_TRANSPORT_H
#define PML_TRAIN_TRANSPORT_H

#include <stdint.h>

#include "backend_ops.h" /* PML_MSG_ACT, PML_MSG_GRAD */
#include "core/error.h"

typedef struct pml_transport pml_transport;
struct pml_transport {
    pml_status (*send)(pml_transport *t, int from, int to, int kind, int64_t mb, pml_err *err);
    pml_status (*recv)(pml_transport *t, int from, int to, int kind, int64_t mb, pml_err *err);
    /* Optional (NULL: none): adds stage's gradient sums over the data-parallel replicas
     * device to device and waits until they are in (exec/links.h's groups), *done 1;
     * *done 0, nothing done, where the stage has no such group: the executor then sums
     * through the host (dist.h's sum_replicas). From the stage's thread. */
    pml_status (*sum_grads)(pml_transport *t, int stage, int *done, pml_err *err);
    void (*reset)(pml_transport *t);
    /* Wakes every waiting recv with an error (a stage failed): no stage hangs. */
    void (*abort)(pml_transport *t);
    void (*destroy)(pml_transport *t);
};

/* The in-process transport for `stages` stages and `microbatches` micro-batches. */
pml_status pml_transport_local_create(int stages, int64_t microbatches, pml_transport **out, pml_err *err);

#endif
