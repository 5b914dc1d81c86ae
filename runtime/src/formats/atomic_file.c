/* atomic_file.c — see atomic_file.h. POSIX only: open/write/fsync/rename/link. */
#include "formats/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/out_path.h"
#include "formats/pending.h"

static void release(pml_atomic_file *f)
{
    free(f->path);
    free(f->target);
    free(f->tmp_path);
    f->path = f->target = f->tmp_path = NULL;
    f->fd = -1;
    pml_pending_drop(f->pending);
    f->pending = 0;
}

void pml_atomic_abort(pml_atomic_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    if (f->tmp_path) unlink(f->tmp_path);
    release(f);
}

pml_status pml_atomic_write_file(const char *path, const void *data, size_t n, pml_err *err)
{
    pml_atomic_file f;
    pml_status st = pml_atomic_open(&f, path, err);
    if (!st && (st = pml_atomic_write(&f, data, n, err))) pml_atomic_abort(&f);
    return st ? st : pml_atomic_commit(&f, err); /* commit releases f whatever its outcome */
}

/* Removes the temporary files of `target` that killed writers left beside it. */
static void clean_stale_beside(const char *target)
{
    const char *slash = strrchr(target, '/');
    char *dir = slash ? strndup(target, slash == target ? 1 : (size_t)(slash - target)) : strdup(".");
    if (dir) pml_out_clean_stale(dir, slash ? slash + 1 : target, NULL);
    free(dir);
}

/* The temporary file beside f->target, created exclusively (O_EXCL: never written
 * through a planted symlink); sets f->fd and f->tmp_path, or err. */
static pml_status create_tmp(pml_atomic_file *f, pml_err *err)
{
    if (!(f->tmp_path = pml_out_tmp_name(f->target))) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    /* Temporary files of this target that killed writers left go first. Ours, with
     * this pid, can only be a dead earlier process's: removed and the open retried. */
    clean_stale_beside(f->target);
    f->pending = pml_pending_add(f->tmp_path); /* before it exists: a signal handler removes it */
    for (int attempt = 0; attempt < 2; attempt++) {
        f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0 || errno != EEXIST || attempt) break;
        unlink(f->tmp_path);
    }
    if (f->fd >= 0) return PML_OK;
    int e = errno;
    pml_err_set(err, PML_ERR_IO, "%s: cannot create the temporary file %s: %s", f->path, f->tmp_path, strerror(e));
    pml_pending_drop(f->pending); /* not ours: must not be removed */
    f->pending = 0;
    free(f->tmp_path);
    f->tmp_path = NULL;
    return PML_ERR_IO;
}

pml_status pml_atomic_open(pml_atomic_file *f, const char *path, pml_err *err)
{
    f->fd = -1;
    f->path = f->target = f->tmp_path = NULL;
    f->pending = 0;
    if (!path || !*path) return pml_err_set(err, PML_ERR_INVALID_ARG, "atomic write: empty destination path");
    if (!(f->path = strdup(path))) return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory", path);
    pml_out_kind kind;
    pml_status st = pml_out_resolve(path, &kind, &f->target, err);
    if (!st) st = kind == PML_OUT_IN_PLACE ? pml_out_open_in_place(path, &f->fd, err) : create_tmp(f, err);
    if (st) release(f);
    return st;
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
    if (!f->target) { /* in place: nothing to sync or rename; a device's close errors are its own */
        int e = close(f->fd) != 0 && errno != EINTR ? errno : 0;
        f->fd = -1;
        if (e) {
            pml_err_set(err, PML_ERR_IO, "%s: close failed: %s", f->path, strerror(e));
            release(f);
            return PML_ERR_IO;
        }
        release(f);
        return PML_OK;
    }
    const char *what = NULL;
    int e = 0;
    if (fsync(f->fd) != 0) what = "fsync failed", e = errno;
    if (close(f->fd) != 0 && !what) what = "close failed", e = errno;
    f->fd = -1;
    if (!what && rename(f->tmp_path, f->target) != 0) what = "cannot replace it", e = errno;
    if (what) {
        pml_err_set(err, PML_ERR_IO, "%s: %s: %s", f->path, what, strerror(e));
        pml_atomic_abort(f);
        return PML_ERR_IO;
    }
    pml_pending_drop(f->pending); /* renamed: nothing left to remove */
    f->pending = 0;
    free(f->tmp_path);
    f->tmp_path = NULL;
    if ((e = sync_folder(f->target))) {
        pml_err_set(err, PML_ERR_IO, "%s: written, but syncing its folder failed: %s", f->path, strerror(e));
        release(f);
        return PML_ERR_IO;
    }
    release(f);
    return PML_OK;
}

/* dst written atomically with a copy of src's bytes. */
static pml_status copy_file(const char *src, const char *dst, pml_err *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return pml_err_set(err, PML_ERR_IO, "%s: cannot read: %s", src, strerror(errno));
    pml_atomic_file f = {.fd = -1, .path = strdup(dst), .target = strdup(dst)};
    pml_status st = f.path && f.target ? create_tmp(&f, err) : pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    char buf[1 << 16];
    for (ssize_t n; !st && (n = read(in, buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        st = n < 0 ? pml_err_set(err, PML_ERR_IO, "%s: cannot read: %s", src, strerror(errno))
                   : pml_atomic_write(&f, buf, (size_t)n, err);
    }
    close(in);
    if (st) {
        pml_atomic_abort(&f);
        return st;
    }
    return pml_atomic_commit(&f, err);
}

pml_status pml_atomic_link(const char *src, const char *dst, pml_err *err)
{
    char *tmp = pml_out_tmp_name(dst);
    if (!tmp) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    clean_stale_beside(dst); /* a link a killed writer made and never renamed */
    unlink(tmp);             /* ours, so a dead earlier process's */
    int pending = pml_pending_add(tmp);
    pml_status st = PML_OK;
    if (link(src, tmp) != 0) {
        int e = errno;
        st = e == EPERM || e == EXDEV || e == EMLINK || e == ENOTSUP || e == EOPNOTSUPP
                 ? copy_file(src, dst, err)
                 : pml_err_set(err, PML_ERR_IO, "%s: cannot link it to %s: %s", dst, src, strerror(e));
    } else if (rename(tmp, dst) != 0) {
        st = pml_err_set(err, PML_ERR_IO, "%s: cannot replace it: %s", dst, strerror(errno));
        unlink(tmp);
    } else if (sync_folder(dst)) {
        st = pml_err_set(err, PML_ERR_IO, "%s: linked, but syncing its folder failed", dst);
    }
    pml_pending_drop(pending);
    free(tmp);
    return st;
}

pml_status pml_atomic_remove(const char *path, pml_err *err)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return pml_err_set(err, PML_ERR_IO, "%s: cannot remove it: %s", path, strerror(errno));
    int e = sync_folder(path);
    return e ? pml_err_set(err, PML_ERR_IO, "%s: removed, but syncing its folder failed: %s", path, strerror(e))
             : PML_OK;
}
