/* dist_gather.h — bytes of every rank onto one (dist.h): each rank has a buffer of
 * its own length, unknown to the others, and one rank receives them all. Built on
 * pml_dist.move alone, so every pml_dist has it; meant for what is gathered once per
 * run (a timeline, a summary), not for per-step traffic.
 *
 * Every rank calls it with the same `root`, between steps. */
#ifndef PML_TRAIN_DIST_GATHER_H
#define PML_TRAIN_DIST_GATHER_H

#include <stddef.h>

#include "exec/dist.h"

/* Rank r's `len` bytes at `mine` onto `root`: there *all is a malloc'ed block (the
 * caller frees it) holding every rank's bytes in rank order, and lens[r] (lens has
 * world entries) rank r's length. On the other ranks *all is NULL and lens untouched. */
pml_status pml_dist_gather_bytes(pml_dist *d, int root, const void *mine, size_t len, void **all, size_t *lens,
                                 pml_err *err);

#endif
