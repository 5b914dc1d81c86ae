/* mapped_file.c — see mapped_file.h. */
#include "mapped_file.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "input_file.h"

pml_status pml_map_file(const char *path, pml_mapped_file *m, pml_err *err)
{
    memset(m, 0, sizeof *m);
    int fd;
    size_t len;
    pml_status st = pml_input_open(path, &fd, &len, err); /* a regular file, or refused */
    if (st) return st;
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
