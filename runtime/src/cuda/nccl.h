/* nccl.h — NCCL, reached through dlopen("libnccl.so.2") like the other CUDA libraries,
 * so that no binary links it: the calls the device-to-device links between GPU ranks
 * and the replicas' gradient sums need (cuda/peer.h). Declared by their documented C signatures (ncclResult_t and
 * ncclDataType_t are ints, a communicator a pointer, ncclUniqueId 128 bytes passed by
 * value), so the runtime builds without NCCL's headers. pml_nccl_get loads it once
 * (thread-safe); PML_NCCL=0 leaves it unloaded, and every link then goes through the
 * host. */
#ifndef PML_CUDA_NCCL_H
#define PML_CUDA_NCCL_H

#include <stddef.h>

#include "cuda/driver.h"

typedef struct pml_nccl_id {
    char internal[128];
} pml_nccl_id;

typedef struct pml_nccl_comm_s *pml_nccl_comm;

/* ncclResult_t values, the ncclDataType_t values used (bytes, f32) and ncclSum. */
enum { PML_NCCL_SUCCESS = 0, PML_NCCL_IN_PROGRESS = 7, PML_NCCL_UINT8 = 1, PML_NCCL_FLOAT32 = 7, PML_NCCL_SUM = 0 };

typedef struct pml_nccl {
    int (*GetUniqueId)(pml_nccl_id *id);
    int (*CommInitRank)(pml_nccl_comm *comm, int nranks, pml_nccl_id id, int rank);
    int (*CommDestroy)(pml_nccl_comm comm);
    int (*CommAbort)(pml_nccl_comm comm);
    int (*CommGetAsyncError)(pml_nccl_comm comm, int *async_error);
    int (*Send)(const void *buf, size_t count, int datatype, int peer, pml_nccl_comm comm, pml_cu_stream stream);
    int (*Recv)(void *buf, size_t count, int datatype, int peer, pml_nccl_comm comm, pml_cu_stream stream);
    int (*AllReduce)(const void *send, void *recv, size_t count, int datatype, int op, pml_nccl_comm comm,
                     pml_cu_stream stream);
    int (*GroupStart)(void);
    int (*GroupEnd)(void);
    const char *(*GetErrorString)(int result);
} pml_nccl;

/* The loaded library, or NULL with why (no library, a missing call, or PML_NCCL=0). */
const pml_nccl *pml_nccl_get(char *why, size_t cap);

#endif
