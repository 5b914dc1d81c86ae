/* atomic_file.c — see atomic_file.h. POSIX only: open/write/fsync/rename. */
#include "formats/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void release(pml_atomic_file *f)
{
    free(f->path);
    free(f->tmp_path);
    f->path = f->tmp_path = NULL;
    f->fd = -1;
}

void pml_atomic_abort(pml_atomic_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    if (f->tmp_path) unlink(f->tmp_path);
    release(f);
}

pml_status pml_atomic_open(pml_atomic_file *f, const char *path, pml_err *err)
{
    f->fd = -1;
    f->path = f->tmp_path = NULL;
    if (!path || !*path) return pml_err_set(err, PML_ERR_INVALID_ARG, "atomic write: empty destination path");
    size_t n = strlen(path) + 32;
    f->path = strdup(path);
    f->tmp_path = malloc(n);
    if (!f->path || !f->tmp_path) {
        release(f);
        return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(f->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    /* O_EXCL: never write through a planted symlink. A stale temporary file of ours
     * (a crashed earlier run with the same pid) is removed and the open retried once. */
    for (int attempt = 0; attempt < 2; attempt++) {
        f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0 || errno != EEXIST || attempt) break;
        unlink(f->tmp_path);
    }
    if (f->fd < 0) {
        int e = errno;
        pml_err_set(err, PML_ERR_IO, "%s: cannot create the temporary file %s: %s", path, f->tmp_path, strerror(e));
        free(f->tmp_path); /* not ours: must not be removed */
        f->tmp_path = NULL;
        release(f);
        return PML_ERR_IO;
    }
    return PML_OK;
}

pml_status pml_atomic_write(pml_atomic_file *f, const void *data, size_t n, pml_err *err)
{
    if (f->fd < 0) return pml_err_set(err, PML_ERR_INVALID_ARG, "atomic write: the file is not open");
    const char *p = data;
    while (n) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(f->fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return pml_err_set(err, PML_ERR_IO, "%s: write failed: %s", f->path,
                               w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return PML_OK;
}

/* fsync of the folder that holds `path`, so that a rename in it is durable. */
static int sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = 0;
    free(dir);
    if (fd < 0) return errno;
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS) /* some file systems cannot */
        e = errno;
    close(fd);
    return e;
}

pml_status pml_atomic_commit(pml_atomic_file *f, pml_err *err)
{
    if (f->fd < 0) return pml_err_set(err, PML_ERR_INVALID_ARG, "atomic write: the file is not open");
    const char *what = NULL;
    int e = 0;
    if (fsync(f->fd) != 0) what = "fsync failed", e = errno;
    if (close(f->fd) != 0 && !what) what = "close failed", e = errno;
    f->fd = -1;
    if (!what && rename(f->tmp_path, f->path) != 0) what = "cannot replace it", e = errno;
    if (what) {
        pml_err_set(err, PML_ERR_IO, "%s: %s: %s", f->path, what, strerror(e));
        pml_atomic_abort(f);
        return PML_ERR_IO;
    }
    free(f->tmp_path); /* renamed: nothing left to remove */
    f->tmp_path = NULL;
    if ((e = sync_folder(f->path))) {
        pml_err_set(err, PML_ERR_IO, "%s: written, but syncing its folder failed: %s", f->path, strerror(e));
        release(f);
        return PML_ERR_IO;
    }
    release(f);
    return PML_OK;
}
