/* input_file.c — see input_file.h. */
#include "input_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a file that is not a regular file is, for the message. */
static const char *kind_of(mode_t m)
{
    if (S_ISDIR(m)) return "is a folder, not a file";
    if (S_ISFIFO(m)) return "is a fifo, not a regular file";
    if (S_ISCHR(m)) return "is a character device, not a regular file";
    if (S_ISBLK(m)) return "is a block device, not a regular file";
    if (S_ISSOCK(m)) return "is a socket, not a regular file";
    return "is not a regular file";
}

pml_status pml_input_open(const char *path, int *fd, size_t *len, pml_err *err)
{
    *fd = -1;
    *len = 0;
    /* O_NONBLOCK: opening a fifo for reading would otherwise wait for a writer, forever
     * if none comes, before fstat could say what the path is. It changes nothing for
     * a regular file. */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (f < 0) return pml_err_set(err, PML_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(f, &sb) != 0) {
        int e = errno;
        close(f);
        return pml_err_set(err, PML_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(f);
        return pml_err_set(err, PML_ERR_IO, "%s: %s", path, kind_of(sb.st_mode));
    }
    if ((unsigned long long)sb.st_size > (size_t)-1 / 2) {
        close(f);
        return pml_err_set(err, PML_ERR_IO, "%s: too large to read (%lld bytes)", path, (long long)sb.st_size);
    }
    *fd = f;
    *len = (size_t)sb.st_size;
    return PML_OK;
}

pml_status pml_input_read(const char *path, size_t max_bytes, unsigned char **data, size_t *len, pml_err *err)
{
    *data = NULL;
    *len = 0;
    int fd;
    size_t size;
    pml_status st = pml_input_open(path, &fd, &size, err);
    if (st) return st;
    if (size > max_bytes) {
        close(fd);
        return pml_err_set(err, PML_ERR_FORMAT, "%s: is %zu bytes, larger than the %zu bytes such a file may have",
                           path, size, max_bytes);
    }
    unsigned char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    size_t n = 0;
    while (n < size) {
        ssize_t got = read(fd, buf + n, size - n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) { /* an error, or the file shrank under us */
            int e = got < 0 ? errno : 0;
            close(fd);
            free(buf);
            return e ? pml_err_set(err, PML_ERR_IO, "%s: cannot read: %s", path, strerror(e))
                     : pml_err_set(err, PML_ERR_IO, "%s: cannot read: it shrank while being read", path);
        }
        n += (size_t)got;
    }
    close(fd);
    buf[size] = 0;
    *data = buf;
    *len = size;
    return PML_OK;
}
