/* atomic_file.h — write a file so that readers see the old contents or the complete
 * new ones, never a mix, even across a crash or power loss.
 *
 * How: data goes to "PATH.tmp.HOST.PID" in the same folder (so rename stays within one
 * file system), which is flushed to disk with fsync, renamed over PATH, and then the
 * folder is fsynced so the rename itself is durable. On any failure the temporary file
 * is removed and an existing PATH is left exactly as it was. The temporary file is
 * registered (pending.h) while it exists, so a process ending on a signal removes it
 * (pml_remove_partial_files) and leaves PATH as it was or complete.
 *
 * What PATH is decides how it is written, by the one rule of out_path.h: a symbolic
 * link is followed and its regular target replaced (the link stays); a character
 * device, a fifo or a descriptor (/dev/null, /dev/stdout) is written in place — no
 * temporary file, no rename, no fsync, so the all-or-nothing promise does not hold for
 * it; a block device, a socket, a folder or a dangling link is refused by open. Opening
 * also removes the temporary files of PATH that dead writers left (out_path.h).
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

#include "core/error.h"

typedef struct pml_atomic_file {
    int fd;         /* -1 once closed */
    char *path;     /* the destination as named, for messages */
    char *target;   /* the file renamed over: path, or its links' final target */
    char *tmp_path; /* the temporary file, NULL once renamed or removed, and in place */
    int pending;    /* tmp_path's ticket in pending.h's table (0: none) */
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
/* The three above for a file whose n bytes are all in hand: `path` holds them, or is
 * as it was. */
pml_status pml_atomic_write_file(const char *path, const void *data, size_t n, pml_err *err);

/* Makes `dst` another name of the existing file `src` (same file system), atomically:
 * a hard link under dst's temporary name renamed over dst, or, where the file system
 * cannot link, a copy written as above. dst is replaced as a name: a link there is
 * replaced, not followed. */
pml_status pml_atomic_link(const char *src, const char *dst, pml_err *err);

/* Removes `path` (missing is fine) and makes the removal durable (fsync of its folder). */
pml_status pml_atomic_remove(const char *path, pml_err *err);

#endif
