/* dist_gather.c — bytes of every rank onto one (see dist_gather.h): the lengths first,
 * so the root can allocate, then the bytes, rank by rank. */
#include "exec/dist_gather.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

pml_status pml_dist_gather_bytes(pml_dist *d, int root, const void *mine, size_t len, void **all, size_t *lens,
                                 pml_err *err)
{
    *all = NULL;
    int me = d->rank, W = d->world;
    uint64_t *n = calloc((size_t)W, sizeof *n);
    if (!n) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    n[me] = len;
    pml_status st = PML_OK;
    for (int r = 0; r < W && !st; r++)
        if (r != root) st = d->move(d, r, root, &n[r], sizeof n[r], err);
    size_t total = 0;
    for (int r = 0; r < W && me == root; r++) total += n[r];
    char *buf = NULL;
    if (!st && me == root && !(buf = malloc(total + 1))) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    size_t at = 0;
    for (int r = 0; r < W && !st; r++) {
        /* The root knows every length after the first loop and a sender its own; the
         * ranks in neither role do nothing. */
        if (me == root && r == root)
            memcpy(buf + at, mine, len);
        else if (me == root || me == r)
            st = d->move(d, r, root, me == root ? (void *)(buf + at) : (void *)mine, (size_t)n[r], err);
        if (me == root) at += n[r];
    }
    if (!st && me == root) {
        for (int r = 0; r < W; r++) lens[r] = (size_t)n[r];
        *all = buf;
    } else {
        free(buf);
    }
    free(n);
    return st;
}
