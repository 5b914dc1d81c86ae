/* driver.c — see driver.h. */
#include "cuda/driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static pml_cuda_driver drv;
static pml_err load_err;
static int loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        pml_err_set(&load_err, PML_ERR_DEVICE, "no CUDA driver: libcuda.so.1 could not be loaded (%s)", dlerror());
        return;
    }
    /* The _v2 names are the 64-bit-pointer versions the headers map the plain names to. */
    struct {
        void **slot;
        const char *name;
    } fns[] = {
        {(void **)&drv.Init, "cuInit"},
        {(void **)&drv.DriverGetVersion, "cuDriverGetVersion"},
        {(void **)&drv.DeviceGetCount, "cuDeviceGetCount"},
        {(void **)&drv.DeviceGet, "cuDeviceGet"},
        {(void **)&drv.DeviceGetName, "cuDeviceGetName"},
        {(void **)&drv.DeviceGetAttribute, "cuDeviceGetAttribute"},
        {(void **)&drv.DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
        {(void **)&drv.DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
        {(void **)&drv.CtxSetCurrent, "cuCtxSetCurrent"},
        {(void **)&drv.ModuleLoadData, "cuModuleLoadData"},
        {(void **)&drv.ModuleUnload, "cuModuleUnload"},
        {(void **)&drv.ModuleGetFunction, "cuModuleGetFunction"},
        {(void **)&drv.ModuleGetGlobal, "cuModuleGetGlobal_v2"},
        {(void **)&drv.LaunchKernel, "cuLaunchKernel"},
        {(void **)&drv.MemAlloc, "cuMemAlloc_v2"},
        {(void **)&drv.MemFree, "cuMemFree_v2"},
        {(void **)&drv.MemcpyHtoD, "cuMemcpyHtoD_v2"},
        {(void **)&drv.MemcpyDtoH, "cuMemcpyDtoH_v2"},
        {(void **)&drv.MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
        {(void **)&drv.MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"},
        {(void **)&drv.MemAllocHost, "cuMemAllocHost_v2"},
        {(void **)&drv.MemFreeHost, "cuMemFreeHost"},
        {(void **)&drv.MemsetD8Async, "cuMemsetD8Async"},
        {(void **)&drv.StreamCreate, "cuStreamCreate"},
        {(void **)&drv.StreamDestroy, "cuStreamDestroy_v2"},
        {(void **)&drv.StreamSynchronize, "cuStreamSynchronize"},
        {(void **)&drv.EventCreate, "cuEventCreate"},
        {(void **)&drv.EventDestroy, "cuEventDestroy_v2"},
        {(void **)&drv.EventRecord, "cuEventRecord"},
        {(void **)&drv.EventSynchronize, "cuEventSynchronize"},
        {(void **)&drv.EventQuery, "cuEventQuery"},
        {(void **)&drv.DeviceGetUuid, "cuDeviceGetUuid"},
        {(void **)&drv.EventElapsedTime, "cuEventElapsedTime_v2"},
        {(void **)&drv.StreamWaitEvent, "cuStreamWaitEvent"},
        {(void **)&drv.MemcpyDtoD, "cuMemcpyDtoD_v2"},
        {(void **)&drv.StreamBeginCapture, "cuStreamBeginCapture_v2"},
        {(void **)&drv.StreamEndCapture, "cuStreamEndCapture"},
        {(void **)&drv.GraphInstantiate, "cuGraphInstantiateWithFlags"},
        {(void **)&drv.GraphLaunch, "cuGraphLaunch"},
        {(void **)&drv.GraphExecDestroy, "cuGraphExecDestroy"},
        {(void **)&drv.GraphDestroy, "cuGraphDestroy"},
        {(void **)&drv.DeviceCanAccessPeer, "cuDeviceCanAccessPeer"},
        {(void **)&drv.CtxEnablePeerAccess, "cuCtxEnablePeerAccess"},
        {(void **)&drv.MemcpyPeerAsync, "cuMemcpyPeerAsync"},
        {(void **)&drv.GetErrorName, "cuGetErrorName"},
        {(void **)&drv.GetErrorString, "cuGetErrorString"},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (!(*fns[i].slot = dlsym(lib, fns[i].name))) {
            pml_err_set(&load_err, PML_ERR_DEVICE, "the CUDA driver lacks %s (too old?)", fns[i].name);
            return;
        }
    pml_cu_result r = drv.Init(0);
    if (r) {
        const char *name = "?";
        drv.GetErrorName(r, &name);
        pml_err_set(&load_err, PML_ERR_DEVICE, "the CUDA driver found no usable device: cuInit failed with %s", name);
        return;
    }
    loaded = 1;
}

const pml_cuda_driver *pml_cuda_driver_get(pml_err *err)
{
    pthread_once(&once, load);
    if (loaded) return &drv;
    pml_err_set(err, load_err.code, "%s", load_err.msg);
    return NULL;
}

pml_status pml_cuda_fail(const pml_cuda_driver *d, pml_cu_result r, const char *expr, const char *file, int line,
                         pml_err *err)
{
    const char *name = "?", *text = "";
    if (d && d->GetErrorName) d->GetErrorName(r, &name);
    if (d && d->GetErrorString) d->GetErrorString(r, &text);
    return pml_err_set(err, PML_ERR_DEVICE, "%s:%d: %s: %s (%s)", file, line, expr, name, text);
}
