/* lifetimes.c — pml.h's lifetimes: a session or inference handle holds its plan and its
 * context, so the caller may close and destroy them before the handles made from them
 * and every handle stays usable until it is destroyed itself. (Before the holds, each
 * case below was a use after free: the sanitizer build, which runs these cases against
 * its instrumented libraries, reported it.) */
#include <stdlib.h>

#include "api_test.h"

API_CASE(a_session_trains_after_its_plan_and_context_are_gone)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    pml_step_metrics m;
    CHECK_STATUS(pml_session_train_step(s, &m), PML_OK);
    CHECK(m.step == 1);
    float w[1];
    CHECK_STATUS(pml_session_read(s, "no such parameter", w, 1), PML_ERR_INVALID_ARG); /* recorded in the held ctx */
    pml_infer *inf = NULL;
    CHECK_STATUS(pml_infer_create_from_session(s, 1, &inf), PML_OK);
    pml_session_destroy(s);
    float x[784] = {0}, y[10];
    pml_buffer bx = {x, PML_F32, 2, {1, 784}, NULL};
    CHECK_STATUS(pml_infer_run(inf, &bx, 1, y, sizeof y), PML_OK); /* the session's plan, held by inf */
    pml_infer_destroy(inf);
    return 0;
}

API_CASE(an_inference_handle_runs_after_its_plan_and_context_are_gone)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_infer *a = NULL, *b = NULL;
    CHECK_STATUS(pml_infer_create(ctx, plan, PML_BACKEND_CPU, 1, NULL, &a), PML_OK);
    CHECK_STATUS(pml_infer_create(ctx, plan, PML_BACKEND_CPU, 1, NULL, &b), PML_OK);
    pml_context_destroy(ctx);
    pml_plan_close(plan);
    pml_session_destroy(s);
    float x[784] = {0}, ya[10], yb[10];
    pml_buffer bx = {x, PML_F32, 2, {1, 784}, NULL};
    CHECK_STATUS(pml_infer_run(a, &bx, 1, ya, sizeof ya), PML_OK);
    pml_infer_destroy(a);
    CHECK_STATUS(pml_infer_run(b, &bx, 1, yb, sizeof yb), PML_OK); /* the last holder */
    CHECK(!memcmp(ya, yb, sizeof ya));                                /* one plan, one seed */
    pml_infer_destroy(b);
    return 0;
}
