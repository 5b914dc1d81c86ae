/* dump_batches.c — writes the global batches a PML program trains on, so another
 * framework can train on exactly the same data: OUT/x_S.npy and OUT/y_S.npy for steps
 * S = 0 .. STEPS-1 (the micro-batches of a step, in order, make its global batch).
 * Usage: dump_batches PROGRAM.pml STEPS OUT */
#include <stdio.h>
#include <stdlib.h>

#include "compile_plan.h"
#include "exec/feed.h"
#include "formats/npy.h"
#include "plan/plan.h"
#include "pmlc.h"

static int dump(const pml_plan *pl, pml_feed *feed, int64_t step, int which, const char *out)
{
    int node = which >= 0 ? pl->input_nodes[which] : pl->labels;
    const pml_plan_node *n = &pl->nodes[node];
    int64_t per_mb = n->numel, mbs = pl->conf.microbatches;
    char *buf = malloc((size_t)(per_mb * mbs) * 4);
    pml_err err = {0};
    for (int64_t mb = 0; mb < mbs; mb++)
        if (pml_feed_fill(feed, step, mb, which, buf + (size_t)(mb * per_mb) * 4, &err))
            return fprintf(stderr, "%s\n", err.msg), 1;
    int64_t shape[PML_PLAN_MAX_RANK];
    shape[0] = n->dims[0] * mbs;
    for (int k = 1; k < n->rank; k++) shape[k] = n->dims[k];
    char path[4096];
    snprintf(path, sizeof path, "%s/%c_%lld.npy", out, which >= 0 ? 'x' : 'y', (long long)step);
    int rc = pml_npy_write(path, n->dtype == PML_I32 ? PML_I32 : PML_F32, n->rank, shape, buf, &err) ? 1 : 0;
    if (rc) fprintf(stderr, "%s\n", err.msg);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4) return fprintf(stderr, "usage: dump_batches PROGRAM.pml STEPS OUT\n"), 2;
    pml_plan *pl = NULL;
    pml_feed *feed = NULL;
    pml_err err = {0};
    int rc = 1;
    if (!(pl = test_compile_plan(argv[1], NULL, NULL, &err)) || pml_feed_create(pl, &feed, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        goto out;
    }
    rc = 0;
    for (int64_t step = 0; step < atoll(argv[2]) && !rc; step++)
        rc = dump(pl, feed, step, 0, argv[3]) || dump(pl, feed, step, -1, argv[3]);
out:
    pml_feed_destroy(feed);
    pml_plan_free(pl);
    return rc;
}
