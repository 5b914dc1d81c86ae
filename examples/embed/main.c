/* embed — training a PML model from your own C program.
 *
 * Compiles a .pml file with the compiler library (pmlc.h), hands the plan to the
 * runtime (pml.h) in memory, trains it for a few steps as a pipeline on the CPU, and
 * reads a parameter back by name. Build: see CMakeLists.txt beside this file; run:
 *   embed_train examples/mlp.pml 20 */
#include <stdio.h>
#include <stdlib.h>

#include "pml.h"
#include "pmlc.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: embed_train MODEL.pml STEPS\n");
        return 2;
    }
    int steps = atoi(argv[2]);

    /* 1. Compile: diagnostics go to stderr, like pmlc's. */
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *compiler = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (pmlc_session_check_file(compiler, argv[1]) || pmlc_session_plan_bytes(compiler, &bytes, &len)) {
        pmlc_session_destroy(compiler);
        return 1;
    }
    pmlc_session_destroy(compiler);

    /* 2. Load the plan into the runtime and make a training session. */
    pml_context *ctx = NULL;
    pml_plan *plan = NULL;
    pml_session *session = NULL;
    int rc = 1;
    if (pml_context_create(&ctx) || pml_plan_open_memory(ctx, bytes, len, argv[1], &plan) ||
        pml_session_create(ctx, plan, PML_BACKEND_CPU, 1234, &session)) {
        fprintf(stderr, "embed_train: %s\n", ctx ? pml_context_error(ctx) : "out of memory");
        goto out;
    }

    /* 3. Train, watching the loss. */
    pml_step_metrics m = {0};
    for (int i = 0; i < steps; i++) {
        if (pml_session_train_step(session, &m)) {
            fprintf(stderr, "embed_train: %s\n", pml_context_error(ctx));
            goto out;
        }
        printf("step %lld loss %.4f\n", (long long)m.step, m.loss);
    }

    /* 4. Read the first parameter back by its name. */
    const char *name = pml_plan_param_name(plan, 0);
    int64_t n = pml_plan_param_numel(plan, 0);
    float *w = malloc(sizeof(float) * (size_t)n);
    if (w && !pml_session_read(session, name, w, n)) {
        double sum = 0;
        for (int64_t i = 0; i < n; i++) sum += w[i];
        printf("%s: %lld values, sum %.6f\n", name, (long long)n, sum);
        rc = 0;
    }
    free(w);
out:
    pml_session_destroy(session);
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    free(bytes);
    return rc;
}
