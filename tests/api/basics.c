/* basics.c — conformance of the functions pml.h and pmlc.h had first: the version,
 * status and dtype queries, contexts, plans and sessions with every error they report
 * on bad input, and the compiler library's check/plan calls. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <math.h>
#include <stdlib.h>

#include "api_test.h"

API_CASE(pml_version_is_the_header_version)
{
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", PML_VERSION_MAJOR, PML_VERSION_MINOR, PML_VERSION_PATCH);
    CHECK(!strcmp(pml_version(), want));
    CHECK(!strcmp(pmlc_version(), want)); /* the two libraries are released together */
    return 0;
}

API_CASE(every_status_has_its_own_name)
{
    pml_status all[] = {PML_OK,          PML_ERR_INVALID_ARG, PML_ERR_IO,       PML_ERR_FORMAT,  PML_ERR_NOMEM,
                        PML_ERR_UNSUPPORTED, PML_ERR_DEVICE,  PML_ERR_INTERNAL, PML_ERR_NONFINITE,
                        PML_ERR_PEER};
    int n = (int)(sizeof all / sizeof all[0]);
    CHECK(!strcmp(pml_status_name(PML_OK), "ok"));
    for (int i = 0; i < n; i++) {
        CHECK(pml_status_name(all[i]) && pml_status_name(all[i])[0]);
        for (int j = 0; j < i; j++) CHECK(strcmp(pml_status_name(all[i]), pml_status_name(all[j])));
    }
    CHECK(pml_status_name((pml_status)999) != NULL); /* an unknown value still has a name */
    return 0;
}

API_CASE(dtypes_have_sizes_and_names)
{
    static const struct {
        pml_dtype t;
        size_t size;
        const char *name;
    } want[] = {{PML_F32, 4, "f32"}, {PML_BF16, 2, "bf16"}, {PML_F16, 2, "f16"}, {PML_I32, 4, "i32"},
                {PML_F64, 8, "f64"}, {PML_I64, 8, "i64"},   {PML_U8, 1, "u8"},     {PML_I8, 1, "i8"}};
    CHECK(sizeof want / sizeof want[0] == PML_DTYPE_COUNT);
    for (int i = 0; i < PML_DTYPE_COUNT; i++) {
        CHECK(pml_dtype_size(want[i].t) == want[i].size);
        CHECK(!strcmp(pml_dtype_name(want[i].t), want[i].name));
    }
    CHECK(pml_dtype_size(PML_DTYPE_COUNT) == 0);
    CHECK(!strcmp(pml_dtype_name(PML_DTYPE_COUNT), "?"));
    return 0;
}

API_CASE(a_new_context_has_no_error)
{
    pml_context *ctx = NULL;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    CHECK(ctx && !strcmp(pml_context_error(ctx), ""));
    CHECK(!strcmp(pml_context_error(NULL), ""));
    pml_context_destroy(ctx);
    pml_context_destroy(NULL); /* destroying nothing is allowed */
    return 0;
}

API_CASE(pml_plan_open_names_a_missing_file)
{
    pml_context *ctx = NULL;
    pml_plan *plan = NULL;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    const char *path = api_work_path("no-such.plan");
    CHECK_STATUS(pml_plan_open(ctx, path, &plan), PML_ERR_IO);
    CHECK_ERROR_SAYS(ctx, path);
    pml_context_destroy(ctx);
    return 0;
}

API_CASE(pml_plan_open_refuses_a_file_that_is_no_plan)
{
    pml_context *ctx = NULL;
    pml_plan *plan = NULL;
    const char *path = api_work_path("not-a.plan");
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs("this is not a plan file\n", f);
    fclose(f);
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    CHECK_STATUS(pml_plan_open(ctx, path, &plan), PML_ERR_FORMAT);
    CHECK_ERROR_SAYS(ctx, path);
    pml_context_destroy(ctx);
    return 0;
}

API_CASE(pml_plan_open_memory_refuses_every_truncation)
{
    unsigned char *bytes = NULL;
    size_t len = 0;
    CHECK(api_compile_example("mlp.pml", &bytes, &len) == 0);
    pml_context *ctx = NULL;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    /* a cut anywhere in the header and at a spread of places after it */
    for (size_t cut = 0; cut < len; cut += cut < 256 ? 1 : len / 97 + 1) {
        pml_plan *plan = NULL;
        pml_status st = pml_plan_open_memory(ctx, bytes, cut, "cut.plan", &plan);
        if (st != PML_ERR_FORMAT) api_failed(__FILE__, __LINE__, "a plan cut to %zu of %zu bytes gave '%s'", cut, len,
                                             pml_status_name(st));
        CHECK(st == PML_ERR_FORMAT);
        CHECK_ERROR_SAYS(ctx, "cut.plan");
    }
    pml_context_destroy(ctx);
    free(bytes);
    return 0;
}

API_CASE(a_plan_lists_its_parameters)
{
    unsigned char *bytes = NULL;
    size_t len = 0;
    CHECK(api_compile_example("mlp.pml", &bytes, &len) == 0);
    pml_context *ctx = NULL;
    pml_plan *plan = NULL;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    CHECK_STATUS(pml_plan_open_memory(ctx, bytes, len, "mlp.pml", &plan), PML_OK);
    free(bytes); /* the plan copied them */
    int n = pml_plan_param_count(plan);
    CHECK(n > 0);
    for (int i = 0; i < n; i++) CHECK(pml_plan_param_name(plan, i) && pml_plan_param_numel(plan, i) > 0);
    CHECK(pml_plan_param_name(plan, -1) == NULL && pml_plan_param_numel(plan, -1) == -1);
    CHECK(pml_plan_param_name(plan, n) == NULL && pml_plan_param_numel(plan, n) == -1);
    pml_plan_close(plan);
    pml_plan_close(NULL);
    pml_context_destroy(ctx);
    return 0;
}

API_CASE(a_session_trains_and_reports_each_step)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_step_metrics m = {0};
    for (int i = 1; i <= 3; i++) {
        CHECK_STATUS(pml_session_train_step(s, &m), PML_OK);
        CHECK(m.step == i && m.loss > 0 && m.grad_norm > 0 && m.lr > 0 && m.seconds >= 0);
    }
    CHECK_STATUS(pml_session_train_step(s, NULL), PML_OK); /* metrics are optional */
    CHECK(!strcmp(pml_context_error(ctx), ""));
    api_close_mlp(ctx, plan, s);
    pml_session_destroy(NULL);
    return 0;
}

API_CASE(pml_session_create_refuses_an_unknown_backend)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s, *bad = NULL;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    CHECK(pml_session_create(ctx, plan, (pml_backend)42, 1, &bad) != PML_OK);
    CHECK(bad == NULL && pml_context_error(ctx)[0]);
    api_close_mlp(ctx, plan, s);
    return 0;
}

API_CASE(pml_session_read_and_write_check_the_name_and_count)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    const char *name = pml_plan_param_name(plan, 0);
    int64_t n = pml_plan_param_numel(plan, 0);
    float *w = malloc(sizeof(float) * (size_t)(n + 1)), *back = malloc(sizeof(float) * (size_t)(n + 1));
    CHECK(w && back);
    CHECK_STATUS(pml_session_read(s, "no.such.param", w, n), PML_ERR_INVALID_ARG);
    CHECK_ERROR_SAYS(ctx, "no.such.param");
    CHECK_STATUS(pml_session_write(s, "no.such.param", w, n), PML_ERR_INVALID_ARG);
    CHECK_ERROR_SAYS(ctx, "no.such.param");
    CHECK_STATUS(pml_session_read(s, name, w, n + 1), PML_ERR_INVALID_ARG);
    CHECK_ERROR_SAYS(ctx, name);
    CHECK_STATUS(pml_session_write(s, name, w, n - 1), PML_ERR_INVALID_ARG);
    CHECK_ERROR_SAYS(ctx, name);
    /* a write is read back exactly, and a success clears the last error */
    for (int64_t i = 0; i < n; i++) w[i] = (float)i * 0.25f - 1.0f;
    CHECK_STATUS(pml_session_write(s, name, w, n), PML_OK);
    CHECK(!strcmp(pml_context_error(ctx), ""));
    CHECK_STATUS(pml_session_read(s, name, back, n), PML_OK);
    CHECK(!memcmp(w, back, sizeof(float) * (size_t)n));
    free(w);
    free(back);
    api_close_mlp(ctx, plan, s);
    return 0;
}

/* A weight tied across stages (the table gathered on stage 0 and read, transposed, on
 * stage 1) is one parameter of the plan's list, and pml_session_write sets both
 * stages' copies: the forward then computes tanh(emb[idx]) · embᵀ from the values
 * written, which it would not with a stale copy on either stage. */
API_CASE(a_weight_tied_across_stages_is_one_parameter_and_a_write_sets_every_copy)
{
    static const char text[] = "import \"nn\"\n"
                               "model m(idx: i32[B, T]) -> f32[B, T, 3] {\n"
                               "    stage 0 {\n"
                               "        param emb: [3, 4] = normal(0.5)\n"
                               "        h = tanh(gather(emb, idx))\n"
                               "    }\n"
                               "    stage 1 { return h @ transpose(emb) }\n"
                               "}\n"
                               "train m {\n"
                               "    data = markov(vocab = 3, order = 1)\n"
                               "    loss = cross_entropy\n"
                               "    optimizer = sgd(lr = 0.1)\n"
                               "    batch = 2, microbatches = 2, T = 2\n"
                               "}\n";
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *c = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    size_t len = 0;
    CHECK(c && pmlc_session_check_text(c, "tied.pml", text, strlen(text)) == 0);
    CHECK(pmlc_session_plan_bytes(c, &bytes, &len) == 0);
    pmlc_session_destroy(c);
    pml_context *ctx = NULL;
    pml_plan *plan = NULL;
    pml_session *s = NULL;
    pml_infer *inf = NULL;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    CHECK_STATUS(pml_plan_open_memory(ctx, bytes, len, "tied.pml", &plan), PML_OK);
    free(bytes);
    CHECK(pml_plan_param_count(plan) == 1 && !strcmp(pml_plan_param_name(plan, 0), "emb"));
    CHECK(pml_plan_param_name(plan, 1) == NULL);
    CHECK_STATUS(pml_session_create(ctx, plan, PML_BACKEND_CPU, 7, &s), PML_OK);
    float emb[12];
    for (int i = 0; i < 12; i++) emb[i] = 0.1f * (float)(i - 5);
    CHECK_STATUS(pml_session_write(s, "emb", emb, 12), PML_OK);
    CHECK_STATUS(pml_infer_create_from_session(s, 1, &inf), PML_OK);
    int32_t idx[2] = {2, 0};
    pml_buffer in = {idx, PML_I32, 2, {1, 2}, NULL};
    float y[6] = {0};
    CHECK_STATUS(pml_infer_run(inf, &in, 1, y, sizeof y), PML_OK);
    for (int t = 0; t < 2; t++)
        for (int v = 0; v < 3; v++) {
            double want = 0;
            for (int d = 0; d < 4; d++) want += tanh(emb[idx[t] * 4 + d]) * emb[v * 4 + d];
            CHECK(fabs(y[t * 3 + v] - want) < 1e-5);
        }
    pml_infer_destroy(inf);
    pml_session_destroy(s);
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    return 0;
}

API_CASE(pmlc_reports_errors_with_their_place)
{
    char *diag = NULL;
    size_t diag_len = 0;
    FILE *out = open_memstream(&diag, &diag_len);
    CHECK(out);
    pmlc_options opt = {0};
    opt.diag_out = out;
    pmlc_session *c = pmlc_session_create(&opt);
    CHECK(c);
    const char *text = "model M {\n  y = undefined_name(x)\n}\n";
    int errors = pmlc_session_check_text(c, "bad.pml", text, strlen(text));
    CHECK(errors > 0 && pmlc_session_errors(c) == errors);
    unsigned char *bytes = NULL;
    size_t len = 0;
    CHECK(pmlc_session_plan_bytes(c, &bytes, &len) != 0 && bytes == NULL); /* no plan of an invalid program */
    pmlc_session_destroy(c);
    fclose(out);
    CHECK(diag && strstr(diag, "bad.pml:") && strstr(diag, "error"));
    free(diag);
    return 0;
}

API_CASE(pmlc_names_a_missing_file)
{
    char *diag = NULL;
    size_t diag_len = 0;
    FILE *out = open_memstream(&diag, &diag_len);
    CHECK(out);
    pmlc_options opt = {0};
    opt.diag_out = out;
    pmlc_session *c = pmlc_session_create(&opt);
    const char *path = api_work_path("missing.pml");
    CHECK(pmlc_session_check_file(c, path) > 0);
    pmlc_session_destroy(c);
    fclose(out);
    CHECK(diag && strstr(diag, path));
    free(diag);
    return 0;
}

API_CASE(pmlc_plans_a_valid_program_and_places_its_nodes)
{
    pmlc_options opt = {0}; /* diagnostics nowhere */
    pmlc_session *c = pmlc_session_create(&opt);
    CHECK(c);
    CHECK(pmlc_session_check_file(c, api_example_path("mlp.pml")) == 0);
    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    CHECK(out);
    CHECK(pmlc_session_plan(c, PMLC_PLAN_TEXT, out) == 0);
    fclose(out);
    CHECK(text_len > 0);
    free(text);
    unsigned char *bytes = NULL;
    size_t len = 0;
    CHECK(pmlc_session_plan_bytes(c, &bytes, &len) == 0 && bytes && len > 0);
    char where[256];
    int found = 0, node = 0, r;
    while ((r = pmlc_session_node_where(c, node, where, sizeof where)) >= 0) {
        if (r == 0) found += strstr(where, "mlp.pml:") != NULL;
        node++;
    }
    CHECK(node > 0 && found > 0);
    CHECK(pmlc_session_node_where(c, node, where, sizeof where) == -1);
    CHECK(pmlc_session_errors(c) == 0);
    free(bytes);
    pmlc_session_destroy(c);
    return 0;
}
