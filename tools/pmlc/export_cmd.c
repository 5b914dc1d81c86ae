/* export_cmd.c — `pmlc export FILE|PLAN --weights W -o MODEL.onnx`: the model forward
 * with its trained weights as an ONNX model (pml.h's pml_infer_export_onnx, which an
 * embedding program gets too), for ONNX Runtime, TensorRT or a browser.
 *
 * The weights are whatever `pmlc infer --weights` takes. The ONNX shapes are the
 * plan's, so the batch dimension is the plan's micro-batch size: `--set batch=N --set
 * microbatches=1` exports a model for N rows a call. The output path is checked before
 * the work and replaced atomically (libpml's output rule). */
#include "export_cmd.h"

#include <stdio.h>

#include "build_cmd.h"
#include "cli_signal.h"
#include "cli_util.h"

int pmlc_export_main(const char *file, const pmlc_options *opt, const char *weights, const char *out, int quiet)
{
    if (pmlc_signal_end_at_once()) return pmlc_cli_fail("cannot handle signals", NULL);
    pml_context *ctx = NULL;
    if (pml_context_create(&ctx)) return pmlc_cli_fail("out of memory", NULL);
    pml_plan *pl = NULL;
    pml_infer *inf = NULL;
    int rc = 1;
    if (pml_output_check(ctx, out)) { /* before the work, not after it */
        pmlc_cli_fail("-o", pml_context_error(ctx));
        goto done;
    }
    if (pmlc_plan_from_file(ctx, file, opt, PML_BACKEND_CPU, &pl)) goto done;
    if (pml_infer_create(ctx, pl, PML_BACKEND_CPU, 1, weights, &inf)) {
        pmlc_cli_fail("cannot load the weights", pml_context_error(ctx));
        goto done;
    }
    if (pml_infer_export_onnx(inf, out)) {
        fprintf(stderr, "pmlc: error: %s: %s\n", file, pml_context_error(ctx));
        goto done;
    }
    if (!quiet) {
        int64_t mbs;
        pml_plan_batch(pl, NULL, &mbs);
        fprintf(stderr, "exported %s to %s (ONNX opset 17, %lld rows a call: the plan's micro-batch)\n", file, out,
                (long long)mbs);
    }
    rc = 0;
done:
    pml_infer_destroy(inf);
    pml_plan_close(pl);
    pml_context_destroy(ctx);
    return rc;
}
