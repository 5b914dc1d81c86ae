/* atomic_file.h — write a file so that readers see the old contents or the complete
 * new ones, never a mix, even across a crash or power loss.
 *
 * How: data goes to "PATH.tmp.<pid>" in the same folder (so rename stays within one
 * file system), which is flushed to disk with fsync, renamed over PATH, and then the
 * folder is fsynced so the rename itself is durable. On any failure the temporary file
 * is removed and an existing PATH is left exactly as it was.
 *
 * Usage:
 *     pml_atomic_file f;
 *     if ((st = pml_atomic_open(&f, path, err))) return st;
 *     if ((st = pml_atomic_write(&f, buf, n, err))) { pml_atomic_abort(&f); return st; }
 *     return pml_atomic_commit(&f, err); // aborts by itself when it fails
 *
 * Ownership: the struct owns the descriptor and a copy of the paths until commit or
 * abort releases them; pml_atomic_abort is safe to call at any time, any number of
 * times. Thread safety: one pml_atomic_file per thread; two writers (threads of one
 * process) targeting the same PATH at once are not supported. */
#ifndef PML_FORMATS_ATOMIC_FILE_H
#define PML_FORMATS_ATOMIC_FILE_H

#include <stddef.h>

#include "error.h"

typedef struct pml_atomic_file {
    int fd;         /* -1 once closed */
    char *path;     /* the destination */
    char *tmp_path; /* the temporary file, NULL once renamed or removed */
} pml_atomic_file;

/* Creates the temporary file for `path`. On failure nothing is left behind and `f`
 * needs no abort (calling it is harmless). */
pml_status pml_atomic_open(pml_atomic_file *f, const char *path, pml_err *err);
/* Appends n bytes (any size; short writes and EINTR are retried). */
pml_status pml_atomic_write(pml_atomic_file *f, const void *data, size_t n, pml_err *err);
/* fsync, close, rename over the destination, fsync the folder. Releases `f` whatever
 * the outcome; on failure before the rename the destination is untouched. */
pml_status pml_atomic_commit(pml_atomic_file *f, pml_err *err);
/* Closes and removes the temporary file and releases `f`. */
void pml_atomic_abort(pml_atomic_file *f);

#endif
