/* driver.h — the CUDA driver API, reached through dlopen("libcuda.so.1") and never
 * linked: every PML binary starts on a machine without a GPU driver, and "no driver"
 * or "no device" is a message, not a loader failure.
 *
 * Only the entry points the backend uses are declared, by their documented C
 * signatures (CUresult is an int, handles are pointers, CUdeviceptr is 64 bits), so the
 * runtime builds without the CUDA headers. pml_cuda_driver() loads the library and
 * runs cuInit once (thread-safe, through pthread_once); the table it returns lives for
 * the process. PML_CHECK_CU records the failing call, file and line in a pml_err. */
#ifndef PML_CUDA_DRIVER_H
#define PML_CUDA_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef int pml_cu_result; /* CUDA_SUCCESS = 0 */
typedef int pml_cu_device;
typedef struct pml_cu_ctx_s *pml_cu_context;
typedef struct pml_cu_mod_s *pml_cu_module;
typedef struct pml_cu_func_s *pml_cu_function;
typedef struct pml_cu_stream_s *pml_cu_stream;
typedef struct pml_cu_event_s *pml_cu_event;
typedef struct pml_cu_graph_s *pml_cu_graph;
typedef struct pml_cu_graph_exec_s *pml_cu_graph_exec;
typedef uint64_t pml_cu_ptr;

/* CUdevice_attribute values used here. */
enum { PML_CU_ATTR_SM_COUNT = 16, PML_CU_ATTR_CC_MAJOR = 75, PML_CU_ATTR_CC_MINOR = 76 };

/* cuStreamCreate flags: a stream that does not wait for (or block) the legacy default stream. */
enum { PML_CU_STREAM_NON_BLOCKING = 1 };

/* CUstreamCaptureMode: only the capturing thread is kept from unsafe calls. */
enum { PML_CU_CAPTURE_THREAD_LOCAL = 1 };

/* cuEventCreate flags: an event only for ordering, cheaper to record. */
enum { PML_CU_EVENT_DISABLE_TIMING = 2 };

/* cuEventQuery's answer for work not done yet. */
enum { PML_CU_NOT_READY = 600 };

/* cuCtxEnablePeerAccess's answer when another user of the primary context enabled it. */
enum { PML_CU_PEER_ACCESS_ALREADY_ENABLED = 704 };

typedef struct pml_cuda_driver {
    pml_cu_result (*Init)(unsigned);
    pml_cu_result (*DriverGetVersion)(int *);
    pml_cu_result (*DeviceGetCount)(int *);
    pml_cu_result (*DeviceGet)(pml_cu_device *, int);
    pml_cu_result (*DeviceGetName)(char *, int, pml_cu_device);
    pml_cu_result (*DeviceGetAttribute)(int *, int, pml_cu_device);
    pml_cu_result (*DevicePrimaryCtxRetain)(pml_cu_context *, pml_cu_device);
    pml_cu_result (*DevicePrimaryCtxRelease)(pml_cu_device);
    pml_cu_result (*CtxSetCurrent)(pml_cu_context);
    pml_cu_result (*ModuleLoadData)(pml_cu_module *, const void *);
    pml_cu_result (*ModuleUnload)(pml_cu_module);
    pml_cu_result (*ModuleGetFunction)(pml_cu_function *, pml_cu_module, const char *);
    pml_cu_result (*ModuleGetGlobal)(pml_cu_ptr *, size_t *, pml_cu_module, const char *);
    pml_cu_result (*LaunchKernel)(pml_cu_function, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                  pml_cu_stream, void **, void **);
    pml_cu_result (*MemAlloc)(pml_cu_ptr *, size_t);
    pml_cu_result (*MemFree)(pml_cu_ptr);
    pml_cu_result (*MemcpyHtoD)(pml_cu_ptr, const void *, size_t);
    pml_cu_result (*MemcpyDtoH)(void *, pml_cu_ptr, size_t);
    pml_cu_result (*MemcpyHtoDAsync)(pml_cu_ptr, const void *, size_t, pml_cu_stream);
    pml_cu_result (*MemcpyDtoHAsync)(void *, pml_cu_ptr, size_t, pml_cu_stream);
    pml_cu_result (*MemAllocHost)(void **, size_t);
    pml_cu_result (*MemFreeHost)(void *);
    pml_cu_result (*MemsetD8Async)(pml_cu_ptr, unsigned char, size_t, pml_cu_stream);
    pml_cu_result (*StreamCreate)(pml_cu_stream *, unsigned);
    pml_cu_result (*StreamDestroy)(pml_cu_stream);
    pml_cu_result (*StreamSynchronize)(pml_cu_stream);
    pml_cu_result (*EventCreate)(pml_cu_event *, unsigned);
    pml_cu_result (*EventDestroy)(pml_cu_event);
    pml_cu_result (*EventRecord)(pml_cu_event, pml_cu_stream);
    pml_cu_result (*EventSynchronize)(pml_cu_event);
    pml_cu_result (*EventQuery)(pml_cu_event); /* 0: done; PML_CU_NOT_READY: not yet */
    pml_cu_result (*DeviceGetUuid)(unsigned char *uuid16, pml_cu_device);
    pml_cu_result (*EventElapsedTime)(float *, pml_cu_event, pml_cu_event);
    pml_cu_result (*StreamWaitEvent)(pml_cu_stream, pml_cu_event, unsigned);
    pml_cu_result (*MemcpyDtoD)(pml_cu_ptr, pml_cu_ptr, size_t);
    pml_cu_result (*StreamBeginCapture)(pml_cu_stream, int);
    pml_cu_result (*StreamEndCapture)(pml_cu_stream, pml_cu_graph *);
    pml_cu_result (*GraphInstantiate)(pml_cu_graph_exec *, pml_cu_graph, unsigned long long);
    pml_cu_result (*GraphLaunch)(pml_cu_graph_exec, pml_cu_stream);
    pml_cu_result (*GraphExecDestroy)(pml_cu_graph_exec);
    pml_cu_result (*GraphDestroy)(pml_cu_graph);
    pml_cu_result (*DeviceCanAccessPeer)(int *, pml_cu_device, pml_cu_device);
    pml_cu_result (*CtxEnablePeerAccess)(pml_cu_context, unsigned);
    pml_cu_result (*MemcpyPeerAsync)(pml_cu_ptr, pml_cu_context, pml_cu_ptr, pml_cu_context, size_t, pml_cu_stream);
    pml_cu_result (*GetErrorName)(pml_cu_result, const char **);
    pml_cu_result (*GetErrorString)(pml_cu_result, const char **);
} pml_cuda_driver;

/* The loaded driver after cuInit, or NULL with why in `err` (PML_ERR_DEVICE):
 * libcuda.so.1 missing, a function missing, or cuInit failing (no device). */
const pml_cuda_driver *pml_cuda_driver_get(pml_err *err);

/* Records a failed driver call: "file:line: expr: CUDA_ERROR_X (text)". */
pml_status pml_cuda_fail(const pml_cuda_driver *d, pml_cu_result r, const char *expr, const char *file, int line,
                         pml_err *err);

/* Evaluates a driver call; on failure records it and returns PML_ERR_DEVICE. */
#define PML_CHECK_CU(d, call, err)                                               \
    do {                                                                         \
        pml_cu_result r_ = (d)->call;                                            \
        if (r_) return pml_cuda_fail((d), r_, #call, __FILE__, __LINE__, (err)); \
    } while (0)

#endif
