/* out_path.h — what an output path is, decided in one place for every writer.
 *
 * Every file PML writes (plan files, .npy outputs, safetensors, JSON, checkpoints,
 * metrics, timelines) follows one rule, by what PATH is when the write starts:
 *
 *   missing, or a regular file   replaced: atomic_file.h writes a temporary file beside
 *                                it and renames it over PATH (a streamed log, such as
 *                                --metrics, is written into it from the start instead)
 *   a symbolic link              followed to its final target, which the rule is applied
 *                                to: the link stays, a regular target is replaced; a
 *                                dangling link is refused (it would create a file
 *                                somewhere the user did not name)
 *   a character device, a fifo,  written in place: opened for writing, never created,
 *   a process's descriptor       truncated or renamed over, and not fsynced (devices and
 *   (/dev/stdout, /dev/stderr,   pipes cannot be; their errors are not the file's); a
 *   /dev/fd/N, /proc/.../fd/N)   fifo must have a reader within PML_OUT_FIFO_WAIT_MS
 *   a block device, a socket,    refused with the path and what it is: a disk is never
 *   a folder                     written over by mistake
 *
 * Temporary files are named "PATH.tmp.HOST.PID" (HOST: this machine's name with '.'
 * made '_', so a shared file system tells writers on two machines apart). One left by a
 * writer that was killed is removed when the next writer of PATH starts: only when HOST
 * is this machine and no process PID is alive here, so a live writer's file — on this
 * machine or another — is never removed. (An older "PATH.tmp.PID" counts as this
 * machine's.)
 *
 * Early checks: a command checks every output before its long work starts
 * (pml_out_check, pml_out_make_dir), so a path that cannot be written fails at once
 * with the path and why, not after the run. Writability is tested by writing: a probe
 * file is created, written and removed, because permission bits do not stop root while
 * a read-only mount or a full disk does.
 *
 * Strings returned are malloc'ed and owned by the caller. Thread safety: none needed
 * (no state but the host name, computed on first use). */
#ifndef PML_FORMATS_OUT_PATH_H
#define PML_FORMATS_OUT_PATH_H

#include "core/error.h"

#define PML_OUT_FIFO_WAIT_MS 2000

typedef enum pml_out_kind {
    PML_OUT_REPLACE,  /* missing or regular: write beside, rename over */
    PML_OUT_IN_PLACE, /* character device, fifo, descriptor */
} pml_out_kind;

/* Classifies `path` by the rule above. For PML_OUT_REPLACE, *target is the file to
 * replace (path itself, or its links' final target), malloc'ed; NULL otherwise. */
pml_status pml_out_resolve(const char *path, pml_out_kind *kind, char **target, pml_err *err);

/* Opens an in-place output (PML_OUT_IN_PLACE) for writing: *fd, blocking writes. */
pml_status pml_out_open_in_place(const char *path, int *fd, pml_err *err);

/* Opens a streamed output (a log written as it grows): in place when the rule says so,
 * else the regular file created or truncated. */
pml_status pml_out_open_stream(const char *path, int *fd, pml_err *err);

/* The early check of an output file: its kind is one the rule accepts and, when it is
 * to be replaced, its folder exists and takes a write. Writes nothing to `path`. */
pml_status pml_out_check(const char *path, pml_err *err);

/* Creates folder `dir` and any missing parents (as mkdir -p) and checks that it takes
 * a write; the error names the part of the path that failed and why. */
pml_status pml_out_make_dir(const char *dir, pml_err *err);

/* "PATH.tmp.HOST.PID" for this process (NULL: out of memory). */
char *pml_out_tmp_name(const char *path);

/* Removes, in folder `dir`, every "BASE.tmp.*" entry left by a dead writer of this
 * machine (above) but `keep` (a name, or NULL): files, and folders with their files.
 * Best effort: what cannot be removed stays. */
void pml_out_clean_stale(const char *dir, const char *base, const char *keep);

/* Removes folder `path` and the files in it (nothing deeper: PML writes nothing
 * deeper). Best effort. */
void pml_out_remove_folder(const char *path);

#endif
