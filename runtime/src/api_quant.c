/* api_quant.c — pml.h's pml_quantize_weights: which weights a quantization selects;
 * the file itself is quant/int8.c's. */
#include <stdlib.h>

#include "api_impl.h"
#include "quant/int8.h"

pml_status pml_quantize_weights(pml_context *ctx, const pml_plan *plan, const char *weights,
                                const char *const *patterns, int n_patterns, pml_name_match_fn match,
                                const char *out, int *n_quantized)
{
    if (n_quantized) *n_quantized = 0;
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_NONNULL(&err, plan);
    PML_CHECK_PATH(&err, weights);
    pml_status st = PML_CHECK_PATH(&err, out);
    if (!st && n_patterns > 0 && (!patterns || !match))
        st = pml_err_set(&err, PML_ERR_INVALID_ARG, "pml_quantize_weights: patterns need a match function");
    uint8_t *linear = st ? NULL : malloc((size_t)plan->n_params + 1);
    uint8_t *select = st ? NULL : calloc((size_t)plan->n_params + 1, 1);
    if (!st && (!linear || !select)) st = pml_err_set(&err, PML_ERR_NOMEM, "out of memory");
    if (!st) pml_quant_linear_weights(plan, linear);
    for (int k = 0; k < n_patterns && !st; k++) {
        int hits = 0;
        for (int q = 0; q < plan->n_params; q++)
            if (linear[q] && match(patterns[k], plan->params[q].name)) select[q] = 1, hits++;
        if (!hits)
            st = pml_err_set(&err, PML_ERR_INVALID_ARG, "--layers pattern '%s' selects no linear layer's weight",
                             patterns[k]);
    }
    if (!st && n_patterns == 0)
        for (int q = 0; q < plan->n_params; q++) select[q] = linear[q];
    int done = 0;
    if (!st) st = pml_quant_write(plan, weights, select, out, &done, &err);
    if (!st && n_quantized) *n_quantized = done;
    free(linear);
    free(select);
    return pml_api_record(ctx, st, &err);
}
