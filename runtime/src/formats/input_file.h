/* input_file.h — how the runtime opens a file it reads: the one policy every reader of
 * a user's file follows (plan files, .npy, safetensors, JSON, checkpoints, teachers).
 *
 *   - The file must be a regular file. Anything else is refused at once with its path
 *     and what it is ("PATH: is a fifo, not a regular file"), before a byte is read:
 *     the open itself never blocks (O_NONBLOCK), so a fifo nobody writes to cannot
 *     hang the process, and a device cannot feed it an endless stream.
 *   - Its size is taken once, from fstat, and checked against what the caller allows
 *     before anything is allocated: a 3 GB sparse file given as a 1 MB JSON is refused
 *     without being read.
 *   - pml_input_read returns the bytes it read, so a caller that needs them twice (a
 *     hash, then a parse) reads the file once.
 * Messages start with the path; codes are PML_ERR_IO (cannot open or read, not a
 * regular file) and PML_ERR_FORMAT (larger than allowed). */
#ifndef PML_FORMATS_INPUT_FILE_H
#define PML_FORMATS_INPUT_FILE_H

#include <stddef.h>

#include "core/error.h"

/* Opens `path` read-only as a regular file; on success *fd is open (the caller closes
 * it) and *len is its size. On failure nothing is left open. */
pml_status pml_input_open(const char *path, int *fd, size_t *len, pml_err *err);

/* Reads the whole regular file `path`, of at most `max_bytes`, into a malloc'ed buffer
 * (*data, which the caller frees; one spare NUL byte follows the *len bytes). A file
 * larger than max_bytes is refused before anything is allocated. */
pml_status pml_input_read(const char *path, size_t max_bytes, unsigned char **data, size_t *len, pml_err *err);

#endif
