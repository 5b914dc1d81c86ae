/* pending.h — the temporary files this process is writing at this moment, so that a
 * process ending on a signal can remove them first (pml_remove_partial_files, pml.h).
 *
 * Every replaced output is written to a temporary file beside it and renamed over it
 * (atomic_file.h), so a process killed mid-write leaves the old file and a temporary
 * one, which the next writer of that path removes (out_path.h). A process that ends on
 * a signal it handles can do better: its handler calls pml_pending_remove_all, which
 * unlinks every temporary file registered here, and then _exit()s. The writers register
 * a name before they create the file and drop it after it is renamed or removed, so at
 * any instant a temporary file that exists is registered (a registered name whose file
 * does not exist yet, or any more, costs one failed unlink).
 *
 * Thread safety: any thread; lock-free (C11 atomics on a fixed table), and
 * pml_pending_remove_all is async-signal-safe. At most PML_PENDING_MAX writes at once
 * are registered; more are written as before, only not removed by a handler. */
#ifndef PML_FORMATS_PENDING_H
#define PML_FORMATS_PENDING_H

#define PML_PENDING_MAX 64

/* Registers temporary file `path`; returns its ticket (> 0), or 0 when the table is
 * full or the name too long. */
int pml_pending_add(const char *path);
/* Forgets ticket `ticket` (0: nothing). */
void pml_pending_drop(int ticket);
/* Unlinks every registered temporary file. Async-signal-safe. */
void pml_pending_remove_all(void);

#endif
