/* nvrtc.h — NVRTC, the CUDA C compiler library, loaded with dlopen when first needed:
 * pmlc starts and works where NVRTC is missing, and only asking for CUDA output
 * fails, with a message saying what was looked for.
 *
 * Targets are spelled as NVRTC's --gpu-architecture: "sm_80" compiles to a CUBIN for
 * that architecture, "compute_90" to PTX that the driver compiles for any newer
 * device. The options are fixed (pmlc_nvrtc_options) and part of every cache key.
 * Thread-safety: NVRTC programs are independent, so compiles may run on several
 * threads with one handle. */
#ifndef PMLC_NVRTC_H
#define PMLC_NVRTC_H

#include <stddef.h>

typedef struct pmlc_nvrtc pmlc_nvrtc;

/* Loads NVRTC: $PML_NVRTC when set (a path; only it), else libnvrtc.so.13, .12, .so.
 * Returns NULL and a message in msg[cap] when it cannot be found or lacks a function. */
pmlc_nvrtc *pmlc_nvrtc_open(char *msg, size_t cap);
/* Frees the handle (the library itself stays loaded for the process). */
void pmlc_nvrtc_close(pmlc_nvrtc *nv);

/* "13.0": NVRTC's version (part of every cache key). */
const char *pmlc_nvrtc_version(const pmlc_nvrtc *nv);

/* The options every compile uses for `arch`, one per line: the cache key's part. */
const char *pmlc_nvrtc_options(const char *arch, char *buf, size_t cap);

/* Compiles `src` (named `name` in the log) for `arch`. On success returns 0 and the
 * CUBIN or PTX in *bin (malloc'ed, *size bytes). On failure returns nonzero and, in
 * *log (malloc'ed, NUL-terminated), NVRTC's log or why NVRTC could not run. */
int pmlc_nvrtc_compile(pmlc_nvrtc *nv, const char *src, const char *name, const char *arch, unsigned char **bin,
                       size_t *size, char **log);

#endif
