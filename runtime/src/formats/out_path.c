/* out_path.c — see out_path.h. POSIX only: lstat/readlink/open/kill. */
#include "formats/out_path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "formats/pending.h"

#define MAX_LINKS 40 /* as the kernel's ELOOP limit */

/* This machine's name for temporary file names: '.' and '/' made '_' so that the PID
 * is whatever follows the last '.'. */
static const char *host(void)
{
    static char name[65];
    if (!name[0]) {
        if (gethostname(name, sizeof name - 1) != 0 || !name[0]) snprintf(name, sizeof name, "host");
        for (char *c = name; *c; c++)
            if (*c == '.' || *c == '/' || *c == ' ') *c = '_';
    }
    return name;
}

char *pml_out_tmp_name(const char *path)
{
    size_t n = strlen(path) + strlen(host()) + 40;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s.tmp.%s.%ld", path, host(), (long)getpid());
    return s;
}

/* A process's descriptor under another name: written in place whatever it leads to (a
 * terminal, a pipe, the file the shell redirected it to). */
static int is_descriptor(const char *p)
{
    return !strcmp(p, "/dev/stdout") || !strcmp(p, "/dev/stderr") || !strncmp(p, "/dev/fd/", 8) ||
           (!strncmp(p, "/proc/", 6) && strstr(p, "/fd/"));
}

/* The folder part of `path` ("." when it has none), malloc'ed. */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

/* The path a symbolic link at `link` leads to, malloc'ed (NULL: err set). */
static char *follow(const char *link, const char *path, pml_err *err)
{
    char buf[4096];
    ssize_t n = readlink(link, buf, sizeof buf - 1);
    if (n < 0) {
        pml_err_set(err, PML_ERR_IO, "%s: cannot read the link %s: %s", path, link, strerror(errno));
        return NULL;
    }
    buf[n] = 0;
    char *dir = buf[0] == '/' ? NULL : folder_of(link);
    size_t cap = (dir ? strlen(dir) + 1 : 0) + (size_t)n + 1;
    char *out = malloc(cap);
    if (out) snprintf(out, cap, "%s%s%s", dir ? dir : "", dir ? "/" : "", buf);
    if (!out) pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    free(dir);
    return out;
}

pml_status pml_out_resolve(const char *path, pml_out_kind *kind, char **target, pml_err *err)
{
    *target = NULL;
    *kind = PML_OUT_REPLACE;
    if (!path || !*path) return pml_err_set(err, PML_ERR_INVALID_ARG, "an empty output path");
    char *cur = strdup(path);
    if (!cur) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    struct stat sb;
    int hops = 0;
    for (;;) {
        if (is_descriptor(cur)) {
            free(cur);
            *kind = PML_OUT_IN_PLACE;
            return PML_OK;
        }
        if (lstat(cur, &sb) != 0) {
            int e = errno;
            pml_status st = PML_OK;
            if (e != ENOENT)
                st = pml_err_set(err, PML_ERR_IO, "%s: cannot write it: %s", path, strerror(e));
            else if (hops)
                st = pml_err_set(err, PML_ERR_IO,
                                 "%s: a symbolic link to %s, which does not exist (name the file itself)", path, cur);
            if (st) {
                free(cur);
                return st;
            }
            *target = cur; /* a new file */
            return PML_OK;
        }
        if (!S_ISLNK(sb.st_mode)) break;
        if (++hops > MAX_LINKS) {
            free(cur);
            return pml_err_set(err, PML_ERR_IO, "%s: too many levels of symbolic links", path);
        }
        char *next = follow(cur, path, err);
        free(cur);
        if (!(cur = next)) return err ? err->code : PML_ERR_IO;
    }
    const char *what = S_ISBLK(sb.st_mode)    ? "a block device (a disk is never written over)"
                       : S_ISSOCK(sb.st_mode) ? "a socket"
                       : S_ISDIR(sb.st_mode)  ? "a folder"
                                              : NULL;
    if (S_ISREG(sb.st_mode)) {
        *target = cur;
        return PML_OK;
    }
    free(cur);
    if (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode)) {
        *kind = PML_OUT_IN_PLACE;
        return PML_OK;
    }
    return pml_err_set(err, PML_ERR_IO, "%s: is %s, not a file to write", path, what ? what : "not a regular file");
}

pml_status pml_out_open_in_place(const char *path, int *fd, pml_err *err)
{
    struct stat sb;
    int fifo = stat(path, &sb) == 0 && S_ISFIFO(sb.st_mode);
    int flags = O_WRONLY | O_CLOEXEC | O_NOCTTY;
    /* A fifo opened for writing blocks until it has a reader: wait a bounded time. */
    for (int waited = 0;; waited += 10) {
        *fd = open(path, flags | (fifo ? O_NONBLOCK : 0));
        if (*fd >= 0 || !fifo || errno != ENXIO || waited >= PML_OUT_FIFO_WAIT_MS) break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    if (*fd < 0) {
        int e = errno;
        if (fifo && e == ENXIO)
            return pml_err_set(err, PML_ERR_IO, "%s: a fifo nobody reads (start its reader first)", path);
        return pml_err_set(err, PML_ERR_IO, "%s: cannot open it for writing: %s", path, strerror(e));
    }
    if (fifo) fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) & ~O_NONBLOCK);
    return PML_OK;
}

pml_status pml_out_open_stream(const char *path, int *fd, pml_err *err)
{
    pml_out_kind kind;
    char *target;
    *fd = -1;
    pml_status st = pml_out_resolve(path, &kind, &target, err);
    if (st) return st;
    if (kind == PML_OUT_IN_PLACE) return pml_out_open_in_place(path, fd, err);
    *fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
    if (*fd < 0) st = pml_err_set(err, PML_ERR_IO, "%s: cannot write it: %s", path, strerror(errno));
    free(target);
    return st;
}

/* Whether folder `dir` takes a write: a probe file created, written and removed. */
static pml_status probe(const char *dir, const char *path, pml_err *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return pml_err_set(err, PML_ERR_IO, "%s: cannot write there: %s: %s", path, dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return pml_err_set(err, PML_ERR_IO, "%s: %s is not a folder", path, dir);
    size_t cap = strlen(dir) + 16;
    char *base = malloc(cap), *name = NULL;
    if (base) snprintf(base, cap, "%s/.pml-probe", dir);
    if (!base || !(name = pml_out_tmp_name(base))) {
        free(base);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    int pending = pml_pending_add(name); /* a signal handler removes it (pending.h) */
    int e = 0, fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) e = errno;
    if (fd >= 0 && write(fd, "", 1) != 1) e = errno ? errno : EIO;
    if (fd >= 0 && close(fd) != 0 && !e) e = errno;
    if (fd >= 0) unlink(name);
    pml_pending_drop(pending);
    free(name);
    free(base);
    if (e) return pml_err_set(err, PML_ERR_IO, "%s: cannot write in the folder %s: %s", path, dir, strerror(e));
    return PML_OK;
}

pml_status pml_out_check(const char *path, pml_err *err)
{
    pml_out_kind kind;
    char *target;
    pml_status st = pml_out_resolve(path, &kind, &target, err);
    if (st || kind == PML_OUT_IN_PLACE) return st; /* opening a fifo now would end its reader's input */
    char *dir = folder_of(target);
    st = dir ? probe(dir, path, err) : pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    free(dir);
    free(target);
    return st;
}

pml_status pml_out_make_dir(const char *dir, pml_err *err)
{
    if (!dir || !*dir) return pml_err_set(err, PML_ERR_INVALID_ARG, "an empty output folder");
    char *p = strdup(dir);
    if (!p) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_status st = PML_OK;
    for (char *c = p + 1;; c++) { /* each prefix that ends a component, then the whole */
        if (*c && *c != '/') continue;
        char keep = *c;
        *c = 0;
        struct stat sb;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            st = pml_err_set(err, PML_ERR_IO, "%s: cannot create the folder %s: %s", dir, p, strerror(errno));
        else if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
            st = pml_err_set(err, PML_ERR_IO, "%s: %s is not a folder", dir, p);
        *c = keep;
        if (st || !keep) break;
        while (c[1] == '/') c++;
        if (!c[1]) break; /* a trailing '/' */
    }
    free(p);
    return st ? st : probe(dir, dir, err);
}

/* Whether NAME ("BASE.tmp.HOST.PID" or "BASE.tmp.PID") was left by a writer of this
 * machine that is no longer alive. */
static int stale(const char *name, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(name, base, n) || strncmp(name + n, ".tmp.", 5)) return 0;
    const char *rest = name + n + 5, *dot = strrchr(rest, '.');
    const char *digits = dot ? dot + 1 : rest;
    if (dot && ((size_t)(dot - rest) != strlen(host()) || strncmp(rest, host(), (size_t)(dot - rest)))) return 0;
    if (!*digits || strlen(digits) > 9) return 0;
    for (const char *d = digits; *d; d++)
        if (*d < '0' || *d > '9') return 0;
    long pid = strtol(digits, NULL, 10);
    if (pid <= 0 || pid == (long)getpid()) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

void pml_out_remove_folder(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t cap = strlen(path) + strlen(e->d_name) + 2;
        char *p = malloc(cap);
        if (!p) break;
        snprintf(p, cap, "%s/%s", path, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(path);
}

void pml_out_clean_stale(const char *dir, const char *base, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if ((keep && !strcmp(e->d_name, keep)) || !stale(e->d_name, base)) continue;
        size_t cap = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(cap);
        if (!p) break;
        snprintf(p, cap, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            pml_out_remove_folder(p);
        else if (lstat(p, &sb) == 0 && (S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode)))
            unlink(p);
        free(p);
    }
    closedir(d);
}
