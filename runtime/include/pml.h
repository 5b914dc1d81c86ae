/* pml.h — the one public header of libpml, the PML runtime.
 *
 * The runtime loads a plan made by pmlc and trains or serves it as a micro-batch
 * pipeline. This header grows with it; everything here is C99, sized integers and
 * opaque handles, with no CUDA types.
 *
 * Errors: every function that can fail returns a pml_status; PML_OK is 0. The library
 * never prints and never exits; a failing call also leaves a message for the caller
 * (see each function). Thread safety: pml_version and pml_status_name may be called
 * from any thread. */
#ifndef PML_H
#define PML_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PML_VERSION_MAJOR 0
#define PML_VERSION_MINOR 1
#define PML_VERSION_PATCH 0

/* The version of the library linked, as "MAJOR.MINOR.PATCH". */
const char *pml_version(void);

typedef enum pml_status {
    PML_OK = 0,
    PML_ERR_INVALID_ARG, /* a caller's mistake: a bad argument or call order */
    PML_ERR_IO,          /* a file could not be read or written */
    PML_ERR_FORMAT,      /* a file's contents are malformed or hostile */
    PML_ERR_NOMEM,       /* an allocation failed */
    PML_ERR_UNSUPPORTED, /* valid, but not supported by this build or backend */
    PML_ERR_DEVICE,      /* a device failed or is missing */
    PML_ERR_INTERNAL     /* a bug in PML */
} pml_status;

/* A short constant name for a status: "ok", "invalid argument", ... */
const char *pml_status_name(pml_status s);

/* Element types. The first four are the ones PML computes in; the others appear in
 * data files (.npy) and are converted on load. */
typedef enum pml_dtype {
    PML_F32, PML_BF16, PML_F16, PML_I32, PML_F64, PML_I64, PML_U8, PML_DTYPE_COUNT
} pml_dtype;

/* Bytes per element, 0 for an unknown dtype. */
size_t pml_dtype_size(pml_dtype t);
/* "f32", "bf16", ...; "?" for an unknown dtype. */
const char *pml_dtype_name(pml_dtype t);

#ifdef __cplusplus
}
#endif
#endif
