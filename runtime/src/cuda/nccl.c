/* nccl.c — see nccl.h. */
#include "cuda/nccl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pml_nccl lib;
static int loaded;
static char load_why[256];

static void load(void)
{
    const char *off = getenv("PML_NCCL");
    if (off && !strcmp(off, "0")) {
        snprintf(load_why, sizeof load_why, "PML_NCCL=0");
        return;
    }
    void *h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_why, sizeof load_why, "NCCL was not found (libnccl.so.2: %s)", dlerror());
        return;
    }
    struct {
        void **slot;
        const char *name;
    } fns[] = {
        {(void **)&lib.GetUniqueId, "ncclGetUniqueId"},
        {(void **)&lib.CommInitRank, "ncclCommInitRank"},
        {(void **)&lib.CommDestroy, "ncclCommDestroy"},
        {(void **)&lib.CommAbort, "ncclCommAbort"},
        {(void **)&lib.CommGetAsyncError, "ncclCommGetAsyncError"},
        {(void **)&lib.Send, "ncclSend"},
        {(void **)&lib.Recv, "ncclRecv"},
        {(void **)&lib.AllReduce, "ncclAllReduce"},
        {(void **)&lib.GroupStart, "ncclGroupStart"},
        {(void **)&lib.GroupEnd, "ncclGroupEnd"},
        {(void **)&lib.GetErrorString, "ncclGetErrorString"},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (!(*fns[i].slot = dlsym(h, fns[i].name))) {
            snprintf(load_why, sizeof load_why, "NCCL lacks %s (older than 2.7?)", fns[i].name);
            return; /* the library stays loaded, as cuBLAS */
        }
    loaded = 1;
}

const pml_nccl *pml_nccl_get(char *why, size_t cap)
{
    pthread_once(&once, load);
    if (loaded) return &lib;
    if (why && cap) snprintf(why, cap, "%s", load_why);
    return NULL;
}
