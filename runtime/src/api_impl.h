/* api_impl.h — what the files behind pml.h share (api.c: contexts, plans, sessions;
 * api_checkpoint.c: checkpoints): the objects' insides and how a call records its
 * error in its context. Private to libpml. */
#ifndef PML_API_IMPL_H
#define PML_API_IMPL_H

#include <stdint.h>

#include "error.h"
#include "pml.h"
#include "train/feed.h"
#include "train/pipeline.h"

struct pml_context {
    pml_err last;
};

struct pml_session {
    pml_context *ctx;
    const pml_plan *plan;
    uint64_t seed; /* the pipeline's: a checkpoint records it */
    pml_feed *feed;
    pml_pipeline *pipe;
};

/* Records `st` (and, when it failed, err's message) as ctx's last outcome; returns st. */
pml_status pml_api_record(pml_context *ctx, pml_status st, const pml_err *err);

#endif
