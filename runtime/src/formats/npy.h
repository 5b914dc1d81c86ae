/* npy.h — read and write NumPy .npy files, the format of PML data sets and of arrays
 * exchanged with Python.
 *
 * The format: "\x93NUMPY", a major and minor version byte, a little-endian header
 * length (u16 for 1.0, u32 for 2.0 and 3.0), then that many bytes of a Python dict
 * literal {'descr': ..., 'fortran_order': ..., 'shape': (...), } padded with spaces and
 * a newline, then the raw data.
 *
 * Reading: pml_npy_open memory-maps the file read-only and parses the dict strictly
 * (its own small parser; it is not JSON): exactly the three keys, descr one of '<f4'
 * '<f8' '<i4' '<i8' '|u1' '<u1', fortran_order False, shape a tuple of at most 8
 * non-negative ints (() is a scalar). The data must be exactly product(shape) *
 * itemsize bytes (computed with overflow checks): truncated and trailing bytes are both
 * refused. arr.data points into the mapping, or to an aligned private copy when the
 * file does not align it for its element type. Malformed files are PML_ERR_FORMAT;
 * valid files PML does not read (big-endian, Fortran order, other dtypes, versions
 * other than 1.0, 2.0 and 3.0) are PML_ERR_UNSUPPORTED; messages start with the path.
 *
 * Writing: pml_npy_write writes a version 1.0 file exactly as numpy lays it out, the
 * header padded so the data starts at a multiple of 64 bytes; atomically
 * (atomic_file.h). F32, F64, I32, I64 and U8 can be written.
 *
 * Ownership: an opened pml_npy_array owns its mapping or copy until pml_npy_close.
 * Thread safety: an open array is read-only; calls share no state. Little-endian hosts
 * only (checked at compile time). */
#ifndef PML_FORMATS_NPY_H
#define PML_FORMATS_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define PML_NPY_MAX_RANK 8

typedef struct pml_npy_array {
    pml_dtype dtype;
    int rank;
    int64_t shape[PML_NPY_MAX_RANK];
    const void *data; /* nbytes bytes, aligned for dtype; not NULL after a successful open */
    size_t nbytes;
    /* private */
    void *map_;
    size_t map_len_;
    void *copy_;
} pml_npy_array;

/* Opens and validates `path` into *arr; close it with pml_npy_close. On failure *arr
 * holds nothing to free (closing it is harmless). */
pml_status pml_npy_open(const char *path, pml_npy_array *arr, pml_err *err);
/* The same over bytes in memory (which must outlive arr unless it was copied). */
pml_status pml_npy_open_memory(const void *bytes, size_t len, const char *name, pml_npy_array *arr, pml_err *err);
/* Releases the mapping or copy and zeroes *arr; NULL and repeated calls are allowed. */
void pml_npy_close(pml_npy_array *arr);

/* Writes a C-order array of `rank` (<= 8) dims; data holds product(shape) elements. */
pml_status pml_npy_write(const char *path, pml_dtype dtype, int rank, const int64_t *shape, const void *data,
                         pml_err *err);

#endif
