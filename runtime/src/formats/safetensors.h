/* safetensors.h — read and write the safetensors format (Hugging Face), the format of
 * PML checkpoints and of weights imported from other frameworks.
 *
 * The format: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON header, then the
 * data section. The header maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the data section) and may hold "__metadata__", a
 * map of string to string.
 *
 * Reading: pml_st_open memory-maps the file read-only and validates everything before
 * returning: N fits the file and is <= 100 MB, the header is strict JSON, each entry has
 * exactly those three keys with the right types, dtype is one PML reads (F32 BF16 F16 I8
 * I32 F64 I64 U8), dims are >= 0, product(shape) * dtype size == end - begin (with
 * overflow checks), and the ranges sorted by begin tile the data section exactly (no
 * overlap, no gap, nothing past the end). Names are unique, non-empty and NUL-free;
 * metadata values are strings. A malformed file is PML_ERR_FORMAT with "PATH: what is
 * wrong (tensor 'x')"; a well-formed one PML cannot hold (rank > 8) is
 * PML_ERR_UNSUPPORTED. Tensor data is not copied: pointers point into the mapping and
 * are aligned only as the file aligns them (the data section starts at 8 + N).
 *
 * Writing: pml_st_write writes the header with tensors sorted by name (byte order),
 * keys in the order dtype, shape, data_offsets, metadata keys sorted, header padded
 * with spaces to a multiple of 8; data in the same order, so the file is the same
 * whatever the order of the input. The write is atomic (atomic_file.h).
 *
 * Ownership: the pml_st_file owns the mapping and every name, shape and data pointer it
 * returns, until pml_st_close. Thread safety: an open file is read-only and may be read
 * from any number of threads; open, write and close have no shared state. */
#ifndef PML_FORMATS_SAFETENSORS_H
#define PML_FORMATS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define PML_ST_MAX_RANK 8
#define PML_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct pml_st_tensor {
    const char *name; /* NUL-terminated UTF-8 */
    pml_dtype dtype;
    int rank;                       /* 0 for a scalar */
    int64_t shape[PML_ST_MAX_RANK]; /* shape[0..rank) */
    const void *data;               /* nbytes bytes (not NULL, even when nbytes is 0) */
    size_t nbytes;                  /* product(shape) * pml_dtype_size(dtype) */
} pml_st_tensor;

typedef struct pml_st_meta {
    const char *key, *value; /* NUL-terminated UTF-8 */
} pml_st_meta;

typedef struct pml_st_file pml_st_file;

/* Opens and validates `path`. On success *out must be closed with pml_st_close. */
pml_status pml_st_open(const char *path, pml_st_file **out, pml_err *err);
/* The same over bytes in memory, which must outlive the file; `name` is used in
 * messages. pml_st_open calls this after mapping the file (and fuzzers call it). */
pml_status pml_st_open_memory(const void *bytes, size_t len, const char *name, pml_st_file **out, pml_err *err);
/* Unmaps and frees; NULL is allowed. */
void pml_st_close(pml_st_file *f);

/* Tensors in data order (by data_offsets begin); i < pml_st_count(f). */
size_t pml_st_count(const pml_st_file *f);
const pml_st_tensor *pml_st_tensor_at(const pml_st_file *f, size_t i);
/* The tensor called `name`, or NULL (O(log n)). */
const pml_st_tensor *pml_st_find(const pml_st_file *f, const char *name);

/* Metadata: the value for `key` or NULL; and all pairs, sorted by key. */
const char *pml_st_metadata(const pml_st_file *f, const char *key);
size_t pml_st_metadata_count(const pml_st_file *f);
const pml_st_meta *pml_st_metadata_at(const pml_st_file *f, size_t i);

/* Writes n tensors and n_meta metadata pairs to `path`, atomically. Each tensor needs
 * name, dtype, rank (<= 8), shape (dims >= 0), data and nbytes == product(shape) *
 * dtype size. Names must be unique, non-empty, valid UTF-8 and not "__metadata__";
 * metadata keys unique and keys and values valid UTF-8. Mistakes are
 * PML_ERR_INVALID_ARG; file system failures PML_ERR_IO (an existing file is kept). */
pml_status pml_st_write(const char *path, const pml_st_tensor *tensors, size_t n, const pml_st_meta *meta,
                        size_t n_meta, pml_err *err);

/* "F32", "BF16", ... as the format spells dtypes; NULL for one it has no name for. */
const char *pml_st_dtype_name(pml_dtype t);

#endif
