/* bad_arguments.c — the argument policy of pml.h and pmlc.h (their header comments):
 * every public function, called with each bad argument it takes (a NULL handle, pointer
 * or out-pointer, a negative count, an index out of range, a buffer of the wrong size,
 * a value outside its enum, a call in the wrong order), refuses it with a status (or
 * NULL / -1) and, where a context holds one, a message naming the call and the
 * argument; never a crash or a sanitizer report. The sanitizer build runs these cases
 * against its instrumented libraries (tests/api/CMakeLists.txt), and
 * api.every_public_function_has_a_bad_argument_case checks that each function of the
 * two headers is called here (pml_mpi.h's: bad_arguments_mpi.c). */
#define _POSIX_C_SOURCE 200809L /* open_memstream, setenv */
#include <math.h>
#include <stdlib.h>

#include "api_test.h"

API_CASE(queries_without_a_handle_answer_a_constant)
{
    CHECK(pml_version() && pmlc_version());
    CHECK(pml_status_name((pml_status)-1) && pml_status_name((pml_status)1000));
    CHECK(pml_dtype_size((pml_dtype)-1) == 0 && !strcmp(pml_dtype_name((pml_dtype)-1), "?"));
    pml_backend b = PML_BACKEND_CUDA;
    CHECK_STATUS(pml_backend_parse(NULL, &b), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_backend_parse("cpu", NULL), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_backend_parse("gpu", &b), PML_ERR_INVALID_ARG);
    CHECK(b == PML_BACKEND_CUDA); /* untouched by a refusal */
    pml_remove_partial_files();   /* no write in progress: nothing to do */
    return 0;
}

API_CASE(contexts_and_plan_opening_refuse_null_arguments)
{
    CHECK_STATUS(pml_context_create(NULL), PML_ERR_INVALID_ARG);
    pml_context_destroy(NULL);
    CHECK(!strcmp(pml_context_error(NULL), ""));
    pml_context *ctx = NULL;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    pml_plan *plan = (pml_plan *)&plan; /* not NULL: a refusal must set it to NULL */
    CHECK_STATUS(pml_plan_open(NULL, "x.plan", &plan), PML_ERR_INVALID_ARG);
    CHECK(plan == NULL);
    CHECK_REFUSED(ctx, pml_plan_open(ctx, NULL, &plan), "pml_plan_open: path is NULL");
    CHECK_REFUSED(ctx, pml_plan_open(ctx, "x.plan", NULL), "pml_plan_open: out is NULL");
    CHECK_STATUS(pml_plan_open_memory(NULL, "", 0, "m", &plan), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_plan_open_memory(ctx, NULL, 16, "m", &plan), "pml_plan_open_memory: bytes is NULL");
    CHECK_REFUSED(ctx, pml_plan_open_memory(ctx, "", 0, NULL, &plan), "pml_plan_open_memory: name is NULL");
    CHECK_REFUSED(ctx, pml_plan_open_memory(ctx, "", 0, "m", NULL), "pml_plan_open_memory: out is NULL");
    CHECK(plan == NULL);
    pml_plan_close(NULL);
    pml_context_destroy(ctx);
    return 0;
}

API_CASE(plan_queries_refuse_a_null_plan_and_indexes_out_of_range)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_tensor_info t;
    int np = pml_plan_param_count(plan), ni = pml_plan_input_count(plan);
    CHECK(np > 0 && ni == 1);
    CHECK(pml_plan_param_count(NULL) == -1 && pml_plan_input_count(NULL) == -1);
    CHECK(pml_plan_param_name(NULL, 0) == NULL && pml_plan_param_numel(NULL, 0) == -1);
    CHECK(pml_plan_param_name(plan, np) == NULL && pml_plan_param_numel(plan, -1) == -1);
    int64_t batch = 7, mb = 7;
    pml_plan_batch(NULL, &batch, &mb);
    CHECK(batch == 0 && mb == 0);
    pml_plan_batch(plan, NULL, NULL); /* both optional */
    CHECK_STATUS(pml_plan_input_info(NULL, 0, &t), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_input_info(plan, -1, &t), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_input_info(plan, ni, &t), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_input_info(plan, 0, NULL), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_labels_info(NULL, &t), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_labels_info(plan, NULL), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_output_info(NULL, &t), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_output_info(plan, NULL), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_param_info(NULL, 0, &t), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_param_info(plan, -1, &t), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_param_info(plan, np, &t), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_plan_param_info(plan, 0, NULL), PML_ERR_INVALID_ARG);
    CHECK(pml_plan_param_find(NULL, "fc1.weight") == -1 && pml_plan_param_find(plan, NULL) == -1);
    CHECK(pml_plan_seed(NULL) == 0);
    api_close_mlp(ctx, plan, s);
    return 0;
}

API_CASE(pml_session_create_refuses_null_arguments_and_leaves_no_session)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_session *bad = s; /* not NULL: a refusal must set it to NULL */
    CHECK_STATUS(pml_session_create(NULL, plan, PML_BACKEND_CPU, 1, &bad), PML_ERR_INVALID_ARG);
    CHECK(bad == NULL);
    CHECK_REFUSED(ctx, pml_session_create(ctx, NULL, PML_BACKEND_CPU, 1, &bad), "pml_session_create: plan is NULL");
    CHECK_REFUSED(ctx, pml_session_create(ctx, plan, PML_BACKEND_CPU, 1, NULL), "pml_session_create: out is NULL");
    CHECK_STATUS(pml_session_create(ctx, plan, (pml_backend)-1, 1, &bad), PML_ERR_INVALID_ARG);
    CHECK(bad == NULL && pml_context_error(ctx)[0]);
    /* the calls after a failed create get its NULL, and refuse it */
    CHECK_STATUS(pml_session_train_step(bad, NULL), PML_ERR_INVALID_ARG);
    api_close_mlp(ctx, plan, s);
    return 0;
}

/* Every function taking a session refuses NULL (there is no context to say why). */
API_CASE(every_session_call_refuses_a_null_session)
{
    float w[4];
    int64_t done = 99;
    pml_buffer b = {w, PML_F32, 1, {4}, NULL};
    pml_eval_result r;
    pml_step_metrics m;
    pml_infer *inf = (pml_infer *)&inf;
    void *in[1] = {w};
    CHECK_STATUS(pml_session_train_step(NULL, &m), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_session_read(NULL, "fc1.bias", w, 4), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_session_write(NULL, "fc1.bias", w, 4), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_session_train_batch(NULL, &b, 1, &b, &m), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_session_set_feeder(NULL, NULL, NULL), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_session_set_metrics(NULL, NULL, NULL), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_session_train(NULL, 1, &done), PML_ERR_INVALID_ARG);
    CHECK(done == 0);
    CHECK_STATUS(pml_session_batch(NULL, 0, in, w), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_session_evaluate(NULL, &b, 1, &b, &r), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_infer_create_from_session(NULL, 1, &inf), PML_ERR_INVALID_ARG);
    CHECK(inf == NULL);
    CHECK_STATUS(pml_session_save(NULL, api_work()), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_session_resume(NULL, api_work()), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_session_load_weights(NULL, api_work()), PML_ERR_INVALID_ARG);
    CHECK(pml_session_steps_done(NULL) == -1);
    pml_session_destroy(NULL);
    return 0;
}

API_CASE(session_calls_name_the_bad_argument_and_change_nothing)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    const char *name = pml_plan_param_name(plan, 0);
    int64_t n = pml_plan_param_numel(plan, 0), batch = 0;
    pml_plan_batch(plan, &batch, NULL);
    float *w = calloc((size_t)n, sizeof *w);
    CHECK(w);
    CHECK_REFUSED(ctx, pml_session_read(s, NULL, w, n), "pml_session_read: name is NULL");
    CHECK_REFUSED(ctx, pml_session_read(s, name, NULL, n), "pml_session_read: dst is NULL");
    CHECK_REFUSED(ctx, pml_session_read(s, name, w, -1), "pml_session_read: count is -1");
    CHECK_REFUSED(ctx, pml_session_write(s, NULL, w, n), "pml_session_write: name is NULL");
    CHECK_REFUSED(ctx, pml_session_write(s, name, NULL, n), "pml_session_write: src is NULL");
    CHECK_REFUSED(ctx, pml_session_write(s, name, w, -5), "pml_session_write: count is -5");
    CHECK_REFUSED(ctx, pml_session_write(s, name, w, n - 1), name); /* the wrong size */
    int64_t done = 99;
    CHECK_REFUSED(ctx, pml_session_train(s, -1, &done), "pml_session_train: steps is -1");
    CHECK(done == 0);

    /* buffers: each field that can be wrong */
    pml_tensor_info xi, yi;
    CHECK_STATUS(pml_plan_input_info(plan, 0, &xi), PML_OK);
    CHECK_STATUS(pml_plan_labels_info(plan, &yi), PML_OK);
    float *x = calloc((size_t)(batch * xi.dims[1]), sizeof *x);
    int32_t *y = calloc((size_t)batch, sizeof *y);
    CHECK(x && y);
    pml_buffer bx = {x, PML_F32, 2, {batch, xi.dims[1]}, NULL}, by = {y, PML_I32, 1, {batch}, NULL};
    pml_step_metrics m;
    CHECK_REFUSED(ctx, pml_session_train_batch(s, NULL, 1, &by, &m), "pml_session_train_batch: inputs is NULL");
    CHECK_REFUSED(ctx, pml_session_train_batch(s, &bx, -1, &by, &m), "-1 input buffers");
    CHECK_REFUSED(ctx, pml_session_train_batch(s, &bx, 1, NULL, &m), "pml_session_train_batch: labels is NULL");
    pml_buffer bad = bx;
    bad.rank = 0;
    CHECK_REFUSED(ctx, pml_session_train_batch(s, &bad, 1, &by, &m), "rank 0");
    bad.rank = PML_MAX_RANK + 1;
    CHECK_REFUSED(ctx, pml_session_train_batch(s, &bad, 1, &by, &m), "rank 9");
    bad = bx, bad.dtype = (pml_dtype)99;
    CHECK_REFUSED(ctx, pml_session_train_batch(s, &bad, 1, &by, &m), "dtype");
    bad = bx, bad.dims[1] = -3;
    CHECK_REFUSED(ctx, pml_session_train_batch(s, &bad, 1, &by, &m), "-3");
    bad = bx, bad.data = NULL;
    CHECK_REFUSED(ctx, pml_session_train_batch(s, &bad, 1, &by, &m), "no data");
    bad = bx, bad.dims[0] = batch - 1; /* the wrong size */
    CHECK_REFUSED(ctx, pml_session_train_batch(s, &bad, 1, &by, &m), "rows");

    void *in[1] = {x};
    void *none[1] = {NULL};
    CHECK_REFUSED(ctx, pml_session_batch(s, -1, in, y), "pml_session_batch: step -1");
    CHECK_REFUSED(ctx, pml_session_batch(s, 0, NULL, y), "pml_session_batch: inputs is NULL");
    CHECK_REFUSED(ctx, pml_session_batch(s, 0, none, y), "pml_session_batch: inputs[0]");
    CHECK_REFUSED(ctx, pml_session_batch(s, 0, in, NULL), "pml_session_batch: labels is NULL");

    pml_eval_result r;
    CHECK_REFUSED(ctx, pml_session_evaluate(s, &bx, 1, &by, NULL), "pml_session_evaluate: out is NULL");
    CHECK_REFUSED(ctx, pml_session_evaluate(s, NULL, 1, &by, &r), "pml_session_evaluate: inputs is NULL");
    CHECK_REFUSED(ctx, pml_session_evaluate(s, &bx, 1, NULL, &r), "pml_session_evaluate: labels is NULL");

    CHECK_REFUSED(ctx, pml_session_save(s, NULL), "pml_session_save: dir is NULL");
    CHECK_REFUSED(ctx, pml_session_save(s, ""), "pml_session_save: dir is \"\"");
    CHECK_REFUSED(ctx, pml_session_resume(s, NULL), "pml_session_resume: dir is NULL");
    CHECK_REFUSED(ctx, pml_session_load_weights(s, NULL), "pml_session_load_weights: path is NULL");

    /* nothing of that trained, and the session still works */
    CHECK(pml_session_steps_done(s) == 0);
    CHECK_STATUS(pml_session_set_feeder(s, NULL, NULL), PML_OK); /* NULL: the plan's data */
    CHECK_STATUS(pml_session_set_metrics(s, NULL, NULL), PML_OK);
    CHECK_STATUS(pml_session_train_batch(s, &bx, 1, &by, NULL), PML_OK); /* metrics are optional */
    CHECK_STATUS(pml_session_train(s, 1, NULL), PML_OK);                 /* done is optional */
    CHECK(pml_session_steps_done(s) == 2);
    free(x);
    free(y);
    free(w);
    api_close_mlp(ctx, plan, s);
    return 0;
}

/* The callbacks call back into their own session, which the header forbids: each call is
 * refused, and the step around it goes on. */
typedef struct reentry {
    pml_context *ctx;
    pml_session *s;
    pml_status train, save, read, feeder, batch;
    int calls;
    char said[256]; /* the context's message after the first refusal */
} reentry;

static int feeder_reenters(void *user, int64_t step, void *const *inputs, void *labels)
{
    reentry *r = user;
    r->train = pml_session_train_step(r->s, NULL);
    snprintf(r->said, sizeof r->said, "%s", pml_context_error(r->ctx));
    r->feeder = pml_session_set_feeder(r->s, NULL, NULL);
    r->batch = pml_session_batch(r->s, 0, inputs, labels);
    r->calls++;
    return 0; /* the buffers' zeros are a valid batch: inputs 0, every label class 0 */
}

static int metrics_reenter(void *user, const pml_step_metrics *m)
{
    reentry *r = user;
    float v[10];
    r->save = pml_session_save(r->s, api_work_path("ckpt"));
    snprintf(r->said, sizeof r->said, "%s", pml_context_error(r->ctx));
    r->read = pml_session_read(r->s, "head.bias", v, 10);
    r->calls++;
    return 0;
}

API_CASE(calls_from_inside_a_sessions_callbacks_are_refused)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    reentry fr = {.ctx = ctx, .s = s}, mr = {.ctx = ctx, .s = s};
    CHECK_STATUS(pml_session_set_feeder(s, feeder_reenters, &fr), PML_OK);
    CHECK_STATUS(pml_session_set_metrics(s, metrics_reenter, &mr), PML_OK);
    CHECK_STATUS(pml_session_train_step(s, NULL), PML_OK);
    CHECK(fr.calls == 1 && mr.calls == 1);
    CHECK(fr.train == PML_ERR_INVALID_ARG && fr.feeder == PML_ERR_INVALID_ARG && fr.batch == PML_ERR_INVALID_ARG);
    CHECK(mr.save == PML_ERR_INVALID_ARG && mr.read == PML_ERR_INVALID_ARG);
    CHECK(strstr(fr.said, "pml_session_train_step: called from inside the session's feeder or metrics callback"));
    CHECK(strstr(mr.said, "pml_session_save: called from inside"));
    CHECK(pml_session_steps_done(s) == 1); /* one step: the feeder's nested one was not taken */
    /* after the step the same calls work again */
    CHECK_STATUS(pml_session_set_metrics(s, NULL, NULL), PML_OK);
    float v[10];
    CHECK_STATUS(pml_session_read(s, "head.bias", v, 10), PML_OK);
    api_close_mlp(ctx, plan, s);
    return 0;
}

API_CASE(inference_calls_refuse_bad_arguments)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_infer *inf = (pml_infer *)&inf; /* not NULL: a refusal must set it to NULL */
    CHECK_STATUS(pml_infer_create(NULL, plan, PML_BACKEND_CPU, 1, NULL, &inf), PML_ERR_INVALID_ARG);
    CHECK(inf == NULL);
    CHECK_REFUSED(ctx, pml_infer_create(ctx, NULL, PML_BACKEND_CPU, 1, NULL, &inf), "pml_infer_create: plan is NULL");
    CHECK_REFUSED(ctx, pml_infer_create(ctx, plan, PML_BACKEND_CPU, -1, NULL, &inf), "pml_infer_create: threads is -1");
    CHECK_REFUSED(ctx, pml_infer_create(ctx, plan, PML_BACKEND_CPU, PML_MAX_THREADS + 1, NULL, &inf),
                  "pml_infer_create: threads is 4097, not 0 (every CPU) to 4096");
    CHECK_REFUSED(ctx, pml_infer_create(ctx, plan, PML_BACKEND_CPU, 1, NULL, NULL), "pml_infer_create: out is NULL");
    CHECK_STATUS(pml_infer_create(ctx, plan, (pml_backend)7, 1, NULL, &inf), PML_ERR_INVALID_ARG);
    CHECK(inf == NULL);
    CHECK_REFUSED(ctx, pml_infer_create_from_session(s, -2, &inf), "pml_infer_create_from_session: threads is -2");
    CHECK_REFUSED(ctx, pml_infer_create_from_session(s, 1, NULL), "pml_infer_create_from_session: out is NULL");
    /* after the failed creates: a NULL inference session, refused */
    pml_tensor_info t;
    float x[784], y[10];
    pml_buffer bx = {x, PML_F32, 2, {1, 784}, NULL};
    CHECK_STATUS(pml_infer_output(inf, 1, &t), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_infer_run(inf, &bx, 1, y, sizeof y), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_infer_export_onnx(inf, "m.onnx"), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_infer_trace(inf, "t.json", 1), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_infer_trace_save(inf), PML_ERR_INVALID_ARG);
    pml_infer_destroy(NULL);
    CHECK(pml_infer_int8_weights(NULL) == 0);
    CHECK(pml_infer_int8_served(NULL) == 0);
    CHECK(pml_infer_int8_note(NULL) == NULL);
    const char *pat[] = {"fc1"};
    int nq = -1;
    CHECK_STATUS(pml_quantize_weights(NULL, plan, "w.safetensors", NULL, 0, NULL, "q.safetensors", &nq),
                 PML_ERR_INVALID_ARG);
    CHECK(nq == 0);
    CHECK_REFUSED(ctx, pml_quantize_weights(ctx, NULL, "w.safetensors", NULL, 0, NULL, "q.safetensors", NULL),
                  "pml_quantize_weights: plan is NULL");
    CHECK_REFUSED(ctx, pml_quantize_weights(ctx, plan, NULL, NULL, 0, NULL, "q.safetensors", NULL),
                  "pml_quantize_weights: weights is NULL");
    CHECK_REFUSED(ctx, pml_quantize_weights(ctx, plan, "w.safetensors", NULL, 0, NULL, "", NULL),
                  "pml_quantize_weights: out is \"\"");
    CHECK_REFUSED(ctx, pml_quantize_weights(ctx, plan, "w.safetensors", pat, 1, NULL, "q.safetensors", NULL),
                  "patterns need a match function");
    CHECK_STATUS(pml_quantize_weights_calibrated(NULL, plan, "w.safetensors", NULL, 0, NULL, "c.npy", "q.safetensors",
                                                 &nq),
                 PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx,
                  pml_quantize_weights_calibrated(ctx, plan, "w.safetensors", NULL, 0, NULL, "", "q.safetensors", NULL),
                  "pml_quantize_weights_calibrated: calibrate is \"\"");
    CHECK_REFUSED(ctx,
                  pml_quantize_weights_calibrated(ctx, NULL, "w.safetensors", NULL, 0, NULL, "c.npy", "q.safetensors",
                                                  NULL),
                  "pml_quantize_weights_calibrated: plan is NULL");
    CHECK(pmlc_name_match("", "fc1.weight") == 0 && pmlc_name_match("fc1", "fc1.weight") == 1);

    memset(x, 0, sizeof x);
    CHECK_STATUS(pml_infer_create_from_session(s, 1, &inf), PML_OK);
    CHECK_REFUSED(ctx, pml_infer_output(inf, -1, &t), "pml_infer_output: rows is -1");
    CHECK_REFUSED(ctx, pml_infer_output(inf, 1, NULL), "pml_infer_output: out is NULL");
    CHECK_REFUSED(ctx, pml_infer_run(inf, NULL, 1, y, sizeof y), "pml_infer_run: inputs is NULL");
    CHECK_REFUSED(ctx, pml_infer_run(inf, &bx, -1, y, sizeof y), "-1 input buffers");
    CHECK_REFUSED(ctx, pml_infer_run(inf, &bx, 1, NULL, sizeof y), "pml_infer_run: out is NULL");
    CHECK_REFUSED(ctx, pml_infer_run(inf, &bx, 1, y, sizeof y - 1), "holds 39 bytes"); /* the wrong size */
    CHECK_STATUS(pml_infer_run(inf, &bx, 1, y, sizeof y), PML_OK);
    CHECK_REFUSED(ctx, pml_infer_export_onnx(inf, NULL), "pml_infer_export_onnx: path is NULL");
    CHECK_REFUSED(ctx, pml_infer_export_onnx(inf, ""), "pml_infer_export_onnx: path is \"\"");
    CHECK_REFUSED(ctx, pml_infer_trace(inf, NULL, 1), "pml_infer_trace: path is NULL");
    CHECK_REFUSED(ctx, pml_infer_trace(inf, "t.json", -1), "pml_infer_trace: forwards is -1");
    CHECK_REFUSED(ctx, pml_infer_trace_save(inf), "pml_infer_trace_save: no trace was started");
    pml_infer_destroy(inf);
    api_close_mlp(ctx, plan, s);
    return 0;
}

API_CASE(checkpoint_calls_refuse_null_arguments)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_checkpoint_info info;
    const char *dir = api_work_path("ckpt");
    CHECK_STATUS(pml_checkpoint_read_info(NULL, plan, dir, &info), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_checkpoint_read_info(ctx, NULL, dir, &info), "pml_checkpoint_read_info: plan is NULL");
    CHECK_REFUSED(ctx, pml_checkpoint_read_info(ctx, plan, NULL, &info), "pml_checkpoint_read_info: dir is NULL");
    CHECK_REFUSED(ctx, pml_checkpoint_read_info(ctx, plan, dir, NULL), "pml_checkpoint_read_info: info is NULL");
    CHECK_STATUS(pml_checkpoint_check_folder(NULL, dir), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_checkpoint_check_folder(ctx, NULL), "pml_checkpoint_check_folder: dir is NULL");
    CHECK_REFUSED(ctx, pml_checkpoint_check_folder(ctx, ""), "pml_checkpoint_check_folder: dir is \"\"");
    api_close_mlp(ctx, plan, s);
    return 0;
}

/* pmlc's refusals are error diagnostics in the session's diag_out (here a memory stream). */
API_CASE(pmlc_calls_refuse_bad_arguments_and_calls_out_of_order)
{
    char *diag = NULL;
    size_t diag_len = 0;
    FILE *out = open_memstream(&diag, &diag_len);
    CHECK(out);
    pmlc_options opt = {0};
    opt.diag_out = out;
    opt.n_sets = -1;
    CHECK(pmlc_session_create(&opt) == NULL);
    opt.n_sets = 1; /* sets NULL */
    CHECK(pmlc_session_create(&opt) == NULL);
    opt.n_sets = 0, opt.n_include_dirs = -2;
    CHECK(pmlc_session_create(&opt) == NULL);
    opt.n_include_dirs = 0, opt.max_errors = -1;
    CHECK(pmlc_session_create(&opt) == NULL);
    opt.max_errors = 0, opt.freeze_from = -1;
    CHECK(pmlc_session_create(&opt) == NULL);
    opt.freeze_from = 0;
    fflush(out);
    CHECK(strstr(diag, "pmlc_session_create: n_sets is below 0") && strstr(diag, "sets is NULL") &&
          strstr(diag, "n_include_dirs is below 0") && strstr(diag, "max_errors") && strstr(diag, "freeze_from"));
    pmlc_session *d = pmlc_session_create(NULL); /* NULL options: the defaults */
    CHECK(d);
    pmlc_session_destroy(d);
    pmlc_session_destroy(NULL);

    /* without a session */
    unsigned char *bytes = (unsigned char *)&bytes;
    size_t len = 0;
    char buf[64];
    pmlc_op_desc desc;
    CHECK(pmlc_session_check_file(NULL, "x.pml") == -1);
    CHECK(pmlc_session_check_text(NULL, "x.pml", "", 0) == -1);
    CHECK(pmlc_session_plan(NULL, PMLC_PLAN_TEXT, out) == -1);
    CHECK(pmlc_session_plan_bytes(NULL, &bytes, &len) == -1 && bytes == NULL);
    CHECK(pmlc_session_plan_bytes_gpu(NULL, NULL, &bytes, &len, buf, sizeof buf) == -1);
    CHECK(pmlc_session_node_where(NULL, 0, buf, sizeof buf) == -1);
    CHECK(pmlc_session_errors(NULL) == -1);
    CHECK(pmlc_op_describe(0, NULL) == -1 && pmlc_op_describe(-1, &desc) == -1);
    CHECK(pmlc_gpu_available(NULL, 16) == -1);
    CHECK(pmlc_gpu_available(NULL, 0) >= 0); /* no reason wanted */

    /* with one: calls before a check, then bad arguments after it */
    pmlc_session *early = pmlc_session_create(&opt);
    CHECK(early);
    CHECK(pmlc_session_plan(early, PMLC_PLAN_TEXT, out) == -1);
    CHECK(pmlc_session_plan_bytes(early, &bytes, &len) == -1);
    CHECK(pmlc_session_node_where(early, 0, buf, sizeof buf) == -1);
    CHECK(pmlc_session_check_file(early, NULL) == -1);
    CHECK(pmlc_session_check_text(early, "x.pml", NULL, 5) == -1);
    CHECK(pmlc_session_errors(early) == 5); /* each refusal was reported */
    pmlc_session_destroy(early);
    pmlc_session *c = pmlc_session_create(&opt);
    CHECK(c);
    CHECK(pmlc_session_check_file(c, api_example_path("mlp.pml")) == 0);
    CHECK(pmlc_session_plan(c, (pmlc_plan_format)9, out) == -1);
    CHECK(pmlc_session_plan(c, PMLC_PLAN_TEXT, NULL) == -1);
    CHECK(pmlc_session_plan_bytes(c, NULL, &len) == -1);
    CHECK(pmlc_session_plan_bytes(c, &bytes, NULL) == -1);
    CHECK(pmlc_session_plan_bytes_gpu(c, NULL, NULL, &len, buf, sizeof buf) == -1);
    CHECK(pmlc_session_plan_bytes_gpu(c, NULL, &bytes, &len, NULL, 8) == -1);
    CHECK(pmlc_session_node_where(c, 0, NULL, 8) == -1);
    CHECK(pmlc_session_errors(c) == 7);
    pmlc_session_destroy(c);
    fclose(out);
    CHECK(strstr(diag, "pmlc_session_plan: no program was checked"));
    CHECK(strstr(diag, "pmlc_session_check_file: path is NULL"));
    CHECK(strstr(diag, "pmlc_session_check_text: text is NULL"));
    CHECK(strstr(diag, "pmlc_session_plan: fmt is no pmlc_plan_format"));
    CHECK(strstr(diag, "pmlc_session_plan: out is NULL"));
    CHECK(strstr(diag, "pmlc_session_plan_bytes: bytes is NULL") && strstr(diag, "pmlc_session_plan_bytes: len is NULL"));
    CHECK(strstr(diag, "pmlc_session_plan_bytes_gpu: summary is NULL"));
    CHECK(strstr(diag, "pmlc_session_node_where: buf is NULL"));
    free(diag);
    return 0;
}

/* The training driver (pml_session_open, pml_session_run, pml_plan_steps). */
API_CASE(the_run_calls_refuse_bad_arguments_and_leave_no_session)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    CHECK(pml_plan_steps(NULL) == -1);
    pml_session *bad = s; /* not NULL: a refusal must set it to NULL */
    pml_session_options so = {.seed = -1};
    CHECK_STATUS(pml_session_open(NULL, plan, &so, &bad), PML_ERR_INVALID_ARG);
    CHECK(bad == NULL);
    CHECK_REFUSED(ctx, pml_session_open(ctx, NULL, &so, &bad), "pml_session_open: plan is NULL");
    CHECK_REFUSED(ctx, pml_session_open(ctx, plan, &so, NULL), "pml_session_open: out is NULL");
    so.threads = -1;
    CHECK_REFUSED(ctx, pml_session_open(ctx, plan, &so, &bad), "opts->threads is -1");
    so = (pml_session_options){.seed = -2};
    CHECK_REFUSED(ctx, pml_session_open(ctx, plan, &so, &bad), "opts->seed is -2");
    so = (pml_session_options){.seed = -1, .backend = (pml_backend)7};
    CHECK_REFUSED(ctx, pml_session_open(ctx, plan, &so, &bad), "opts->backend is 7");
    so = (pml_session_options){.seed = -1, .init = "w", .resume = "r"};
    CHECK_REFUSED(ctx, pml_session_open(ctx, plan, &so, &bad), "both set");
    CHECK(bad == NULL);
    pml_run_result result = {.steps_done = 9};
    CHECK_STATUS(pml_session_run(NULL, &(pml_run_options){.steps = 1}, &result), PML_ERR_INVALID_ARG);
    CHECK(result.steps_done == 0);
    CHECK_REFUSED(ctx, pml_session_run(s, NULL, NULL), "pml_session_run: opts is NULL");
    CHECK_REFUSED(ctx, pml_session_run(s, &(pml_run_options){.steps = -5}, NULL), "opts->steps is -5");
    CHECK_REFUSED(ctx, pml_session_run(s, &(pml_run_options){.steps = 1, .eval = -1}, NULL), "opts->eval is -1");
    CHECK(pml_session_steps_done(s) == 0);
    /* A stop request records no message: a signal handler may be its caller. */
    CHECK_STATUS(pml_session_request_stop(NULL, 15), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_session_request_stop(s, -1), PML_ERR_INVALID_ARG);
    api_close_mlp(ctx, plan, s);
    return 0;
}

/* Backends, the GPU remap, outputs and .npy arrays (pml_backend_choose ... pml_array_save). */
API_CASE(file_and_backend_calls_refuse_bad_arguments)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_backend got = PML_BACKEND_AUTO;
    CHECK_STATUS(pml_backend_choose(NULL, plan, PML_BACKEND_CPU, &got), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_backend_choose(ctx, NULL, PML_BACKEND_CPU, &got), "pml_backend_choose: plan is NULL");
    CHECK_REFUSED(ctx, pml_backend_choose(ctx, plan, (pml_backend)9, &got), "pml_backend_choose: want is 9");
    CHECK_REFUSED(ctx, pml_backend_choose(ctx, plan, PML_BACKEND_CPU, NULL), "pml_backend_choose: got is NULL");
    CHECK(got == PML_BACKEND_AUTO); /* untouched by a refusal */
    int gpus[2] = {0, -2};
    CHECK_STATUS(pml_context_set_devices(NULL, gpus, 1), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_context_set_devices(ctx, NULL, 1), "pml_context_set_devices: gpus is NULL");
    CHECK_REFUSED(ctx, pml_context_set_devices(ctx, gpus, -1), "pml_context_set_devices: n is -1");
    CHECK_REFUSED(ctx, pml_context_set_devices(ctx, gpus, 2), "pml_context_set_devices: gpus[1] is -2");
    CHECK_STATUS(pml_context_set_devices_local(NULL), PML_ERR_INVALID_ARG);
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK"), unsetenv("SLURM_LOCALID"), unsetenv("LOCAL_RANK");
    CHECK_REFUSED(ctx, pml_context_set_devices_local(ctx), "no launcher said this process's local rank");
    setenv("LOCAL_RANK", "-1", 1);
    CHECK_REFUSED(ctx, pml_context_set_devices_local(ctx), "LOCAL_RANK is '-1'");
    unsetenv("LOCAL_RANK");
    char arch[16];
    CHECK_STATUS(pml_gpu_arch(NULL, sizeof arch), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_gpu_arch(arch, 2), PML_ERR_INVALID_ARG);
    CHECK_STATUS(pml_output_check(NULL, "y.npy"), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_output_check(ctx, NULL), "pml_output_check: path is NULL");
    CHECK_REFUSED(ctx, pml_output_check(ctx, ""), "pml_output_check: path is \"\"");
    CHECK_STATUS(pml_output_write(NULL, "y", "", 0), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_output_write(ctx, NULL, "", 0), "pml_output_write: path is NULL");
    CHECK_REFUSED(ctx, pml_output_write(ctx, api_work_path("w"), NULL, 4), "pml_output_write: bytes is NULL");
    pml_buffer rows = {0};
    pml_array *a = (pml_array *)&a; /* not NULL: a refusal must set it to NULL */
    CHECK_STATUS(pml_array_open(NULL, "x.npy", &rows, &a), PML_ERR_INVALID_ARG);
    CHECK(a == NULL);
    CHECK_REFUSED(ctx, pml_array_open(ctx, NULL, &rows, &a), "pml_array_open: path is NULL");
    CHECK_REFUSED(ctx, pml_array_open(ctx, "x.npy", NULL, &a), "pml_array_open: rows is NULL");
    CHECK_REFUSED(ctx, pml_array_open(ctx, "x.npy", &rows, NULL), "pml_array_open: out is NULL");
    pml_array_close(NULL);
    float v[2] = {1, 2};
    pml_buffer b = {v, PML_F32, 1, {2}, NULL};
    CHECK_STATUS(pml_array_save(NULL, "y.npy", &b), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_array_save(ctx, NULL, &b), "pml_array_save: path is NULL");
    CHECK_REFUSED(ctx, pml_array_save(ctx, "y.npy", NULL), "pml_array_save: rows is NULL");
    b.rank = PML_MAX_RANK + 1;
    CHECK_REFUSED(ctx, pml_array_save(ctx, "y.npy", &b), "pml_array_save: rows->rank is 9");
    b = (pml_buffer){v, (pml_dtype)-1, 1, {2}, NULL};
    CHECK_REFUSED(ctx, pml_array_save(ctx, "y.npy", &b), "pml_array_save: rows->dtype is -1");
    b = (pml_buffer){v, PML_F32, 1, {-2}, NULL};
    CHECK_REFUSED(ctx, pml_array_save(ctx, "y.npy", &b), "pml_array_save: rows->dims[0] is -2");
    b = (pml_buffer){NULL, PML_F32, 1, {2}, NULL};
    CHECK_REFUSED(ctx, pml_array_save(ctx, "y.npy", &b), "pml_array_save: rows->data is NULL");
    api_close_mlp(ctx, plan, s);
    return 0;
}

/* pml_tcp_create(ctx, plan, &layout, addr, port, timeout, &d) is refused, saying `text`,
 * and d is NULL: before any socket is opened. */
#define CHECK_TCP_REFUSED(ctx, plan, layout, addr, port, timeout, text)                       \
    do {                                                                                      \
        pml_dist *d_ = (pml_dist *)&d_;                                                       \
        pml_ranks_layout lay_ = layout;                                                       \
        CHECK_REFUSED(ctx, pml_tcp_create(ctx, plan, &lay_, addr, port, timeout, &d_), text); \
        CHECK(d_ == NULL);                                                                    \
    } while (0)

API_CASE(tcp_create_refuses_bad_arguments_and_a_missing_address_before_any_socket)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0); /* two stages */
    pml_ranks_layout two = {1, 2, 1, "the caller"};
    pml_dist *d = (pml_dist *)&d;
    unsetenv("MASTER_ADDR"), unsetenv("MASTER_PORT");
    CHECK_STATUS(pml_tcp_create(NULL, plan, &two, "127.0.0.1", 29500, 0, &d), PML_ERR_INVALID_ARG);
    CHECK(d == NULL);
    CHECK_REFUSED(ctx, pml_tcp_create(ctx, NULL, &two, "127.0.0.1", 29500, 0, &d), "pml_tcp_create: plan is NULL");
    CHECK_REFUSED(ctx, pml_tcp_create(ctx, plan, NULL, "127.0.0.1", 29500, 0, &d), "pml_tcp_create: layout is NULL");
    CHECK_REFUSED(ctx, pml_tcp_create(ctx, plan, &two, "127.0.0.1", 29500, 0, NULL), "pml_tcp_create: out is NULL");
    CHECK_TCP_REFUSED(ctx, plan, two, "127.0.0.1", 29500, NAN,
                      "pml_tcp_create: timeout_s is nan, not a number of seconds");
    CHECK_TCP_REFUSED(ctx, plan, ((pml_ranks_layout){0, 3, 1, "the caller"}), "127.0.0.1", 29500, 0,
                      "pml_tcp_create: layout: 3 ranks but the plan has 2 stages");
    CHECK_TCP_REFUSED(ctx, plan, two, NULL, 29500, 0,
                      "pml_tcp_create: no address of rank 0: master_addr is NULL and MASTER_ADDR is not set");
    CHECK_TCP_REFUSED(ctx, plan, two, "127.0.0.1", 0, 0,
                      "pml_tcp_create: master_port is 0 and MASTER_PORT is not set, not a port (1 to 65535)");
    CHECK_TCP_REFUSED(ctx, plan, two, "127.0.0.1", 70000, 0, "pml_tcp_create: master_port is 70000, not a port");
    setenv("MASTER_PORT", "29500x", 1);
    CHECK_TCP_REFUSED(ctx, plan, two, "127.0.0.1", 0, 0, "pml_tcp_create: MASTER_PORT is 29500x, not a port");
    unsetenv("MASTER_PORT");
    api_close_mlp(ctx, plan, s);
    return 0;
}

/* Ranks (pml_ranks_resolve ... pml_dist_destroy): every call that takes a handle is
 * given NULL here (the rank tests make real ones). */
API_CASE(rank_calls_refuse_bad_arguments)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_ranks_layout lay = {7, 7, 7, "untouched"};
    CHECK_STATUS(pml_ranks_resolve(NULL, plan, -1, 0, 0, &lay), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_ranks_resolve(ctx, NULL, -1, 0, 0, &lay), "pml_ranks_resolve: plan is NULL");
    CHECK_REFUSED(ctx, pml_ranks_resolve(ctx, plan, 0, 0, 0, &lay), "pml_ranks_resolve: rank is 0 and world 0");
    CHECK_REFUSED(ctx, pml_ranks_resolve(ctx, plan, -1, 2, 0, &lay), "pml_ranks_resolve: rank is -1 and world 2");
    CHECK_REFUSED(ctx, pml_ranks_resolve(ctx, plan, 0, 1, -1, &lay), "pml_ranks_resolve: replicas is -1");
    CHECK_REFUSED(ctx, pml_ranks_resolve(ctx, plan, 0, 1, 0, NULL), "pml_ranks_resolve: out is NULL");
    CHECK(lay.rank == 7 && !strcmp(lay.source, "untouched"));
    int x = 0;
    CHECK_STATUS(pml_ranks_share(NULL, NULL, &x, sizeof x), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_ranks_share(ctx, NULL, &x, sizeof x), "pml_ranks_share: d is NULL");
    CHECK_STATUS(pml_ranks_barrier(NULL, NULL), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_ranks_barrier(ctx, NULL), "pml_ranks_barrier: d is NULL");
    pml_rank_fact f = {"--seed", "1", NULL, NULL};
    CHECK_STATUS(pml_ranks_agree(NULL, NULL, &f, 1), PML_ERR_INVALID_ARG);
    CHECK_REFUSED(ctx, pml_ranks_agree(ctx, NULL, &f, 1), "pml_ranks_agree: d is NULL");
    pml_dist_destroy(NULL);
    api_close_mlp(ctx, plan, s);
    return 0;
}
