/* quantize_cmd.c — `pmlc quantize`: post-training int8 weights (pml.h's
 * pml_quantize_weights; the file is described in README.md, "pmlc quantize"). --layers takes
 * freeze's patterns, comma-separated and repeatable; --calibrate X.npy runs the f32 model
 * over X's rows for static activation scales; the output is checked before the work and
 * replaced atomically. */
#define _DEFAULT_SOURCE /* strdup, strtok_r */
#include "quantize_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_cmd.h"
#include "cli_signal.h"
#include "cli_util.h"

int pmlc_quantize_main(const char *file, const pmlc_options *opt, const char *weights, const char *layers,
                       const char *calibrate, const char *out, int quiet)
{
    if (pmlc_signal_end_at_once()) return pmlc_cli_fail("cannot handle signals", NULL);
    pml_context *ctx = NULL;
    if (pml_context_create(&ctx)) return pmlc_cli_fail("out of memory", NULL);
    pml_plan *pl = NULL;
    char *list = layers ? strdup(layers) : NULL;
    const char **pats = calloc((layers ? strlen(layers) : 0) + 1, sizeof *pats);
    int n_pats = 0, rc = 1, done = 0;
    if ((layers && !list) || !pats) {
        pmlc_cli_fail("out of memory", NULL);
        goto end;
    }
    for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
        pats[n_pats++] = t;
    if (layers && !n_pats) {
        pmlc_cli_fail("--layers", "no pattern given");
        goto end;
    }
    if (pml_output_check(ctx, out)) {
        pmlc_cli_fail("-o", pml_context_error(ctx));
        goto end;
    }
    if (pmlc_plan_from_file(ctx, file, opt, PML_BACKEND_CPU, &pl)) goto end;
    if (pml_quantize_weights_calibrated(ctx, pl, weights, pats, n_pats, pmlc_name_match, calibrate, out, &done)) {
        fprintf(stderr, "pmlc: error: %s: %s\n", file, pml_context_error(ctx));
        goto end;
    }
    if (!quiet)
        fprintf(stderr, "quantized %d linear weight%s of %s to int8 (per output channel) into %s%s%s\n", done,
                done == 1 ? "" : "s", file, out, calibrate ? ", static activation scales from " : "",
                calibrate ? calibrate : "");
    rc = 0;
end:
    pml_plan_close(pl);
    pml_context_destroy(ctx);
    free(list);
    free(pats);
    return rc;
}
