/* mapped_file.c — see mapped_file.h. */
#include "mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

pml_status pml_map_file(const char *path, pml_mapped_file *m, pml_err *err)
{
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pml_err_set(err, PML_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return pml_err_set(err, PML_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return pml_err_set(err, PML_ERR_IO, "%s: %s", path,
                           S_ISDIR(sb.st_mode) ? "is a folder, not a file" : "is not a regular file");
    }
    size_t len = (size_t)sb.st_size;
    if (len) { /* mmap refuses an empty length */
        void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return pml_err_set(err, PML_ERR_IO, "%s: cannot map %zu bytes: %s", path, len, strerror(e));
        }
        m->data = map;
    }
    close(fd);
    m->len = len;
    return PML_OK;
}

void pml_unmap_file(pml_mapped_file *m)
{
    if (m->data) munmap(m->data, m->len);
    m->data = NULL;
    m->len = 0;
}
