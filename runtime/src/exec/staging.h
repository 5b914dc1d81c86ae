/* staging.h — host copies of a backend's buffers, for the code that moves or adds their
 * bytes on the host: the MPI transport (boundary messages between ranks) and the
 * executor's sums over replicas and over a tied weight's copies across ranks. A host
 * buffer is its own copy and no byte moves; a device buffer's bytes go through the
 * backend's copy_buf (backend_ops.h) into memory the area owns and keeps for the next
 * use. This is how GPU ranks exchange tensors when no device-to-device path between
 * processes is used (ranks that share one GPU, where NCCL refuses to run): each byte is
 * copied to the host and back, and the stage thread waits for each copy. The
 * transports (MPI's, TCP's) also list a message's buffers here.
 *
 * An area is used by one thread at a time, and host pointers it gave stay valid until
 * its next pml_staging_in. */
#ifndef PML_EXEC_STAGING_H
#define PML_EXEC_STAGING_H

#include "backend_ops.h"

typedef struct pml_staging {
    char *mem;
    size_t cap;
} pml_staging;

/* host[i] for bufs[0..n): a host buffer's own data, else room in the area for its
 * bytes (the area grows to hold all n at once), filled from the device when `fill`.
 * `stage` is the calling stage thread's, which orders the copies (copy_buf); `why`
 * says what needs the bytes, for the error of a backend that cannot copy. */
pml_status pml_staging_in(pml_staging *a, pml_backend_inst *be, int stage, const pml_backend_buf *bufs, int n, int fill,
                          void **host, const char *why, pml_err *err);

/* Writes host[i] back to each device buffer among bufs[0..n) (host buffers were written
 * in place): complete before `stage`'s next pass. */
pml_status pml_staging_out(pml_backend_inst *be, int stage, const pml_backend_buf *bufs, int n, void *const *host,
                           const char *why, pml_err *err);

void pml_staging_free(pml_staging *a); /* NULL-safe; the area is empty again */

/* The boundary buffers of stage `from`'s message of `kind` for micro-batch `mb`
 * (pml_backend_boundary), for a transport that moves their bytes: *bufs is `stack`
 * (PML_STAGING_BUFS entries) when they fit, else *heap, which the caller frees. */
enum { PML_STAGING_BUFS = 32 };
pml_status pml_staging_message(pml_backend_inst *be, int from, int kind, int64_t mb, pml_backend_buf *stack,
                               pml_backend_buf **bufs, pml_backend_buf **heap, int *n, pml_err *err);

#endif
