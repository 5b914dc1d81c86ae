/* mapped_file.h — a file mapped read-only into memory, the way the readers of data
 * files (npy.c, safetensors.c) open what they read. It is opened by input_file.h's
 * policy (a regular file, or refused at once with what it is); the readers then check
 * every size their headers claim against the mapped length. */
#ifndef PML_FORMATS_MAPPED_FILE_H
#define PML_FORMATS_MAPPED_FILE_H

#include <stddef.h>

#include "core/error.h"

typedef struct pml_mapped_file {
    void *data; /* NULL for an empty file */
    size_t len;
} pml_mapped_file;

/* Maps `path` read-only. On failure nothing is left open. */
pml_status pml_map_file(const char *path, pml_mapped_file *m, pml_err *err);
/* Unmaps; a zeroed pml_mapped_file is allowed. */
void pml_unmap_file(pml_mapped_file *m);

#endif
