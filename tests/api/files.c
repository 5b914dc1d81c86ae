/* files.c — conformance of what pml.h gives a program beside sessions, which `pmlc
 * build` and `pmlc infer` are made of: outputs written by the one output rule, .npy
 * arrays read and written, the backend chosen for a plan, and the layout of ranks. */
#include <stdlib.h>

#include "api_test.h"

API_CASE(an_array_saved_reads_back_as_it_was)
{
    pml_context *ctx;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    int32_t v[6] = {1, -2, 3, -4, 5, 2147483647};
    pml_buffer b = {v, PML_I32, 2, {3, 2}, NULL};
    const char *path = api_work_path("a.npy");
    CHECK_STATUS(pml_output_check(ctx, path), PML_OK);
    CHECK_STATUS(pml_array_save(ctx, path, &b), PML_OK);
    pml_buffer rows;
    pml_array *a = NULL;
    CHECK_STATUS(pml_array_open(ctx, path, &rows, &a), PML_OK);
    CHECK(rows.dtype == PML_I32 && rows.rank == 2 && rows.dims[0] == 3 && rows.dims[1] == 2);
    CHECK(!memcmp(rows.data, v, sizeof v) && !strcmp(rows.source, path));
    pml_array_close(a);
    pml_context_destroy(ctx);
    return 0;
}

API_CASE(pml_array_open_names_the_file_and_what_is_wrong)
{
    pml_context *ctx;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    const char *path = api_work_path("bad.npy");
    CHECK_STATUS(pml_output_write(ctx, path, "\x93NUMPY\x01\x00", 8), PML_OK); /* a header cut short */
    pml_buffer rows;
    pml_array *a = (pml_array *)&a;
    CHECK_STATUS(pml_array_open(ctx, path, &rows, &a), PML_ERR_FORMAT);
    CHECK(a == NULL);
    CHECK_ERROR_SAYS(ctx, path);
    CHECK(pml_array_open(ctx, api_work_path("missing.npy"), &rows, &a) == PML_ERR_IO);
    CHECK_ERROR_SAYS(ctx, "missing.npy");
    pml_context_destroy(ctx);
    return 0;
}

API_CASE(pml_output_check_refuses_a_folder_that_is_missing)
{
    pml_context *ctx;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    const char *path = api_work_path("no-such-folder/y.npy");
    CHECK(pml_output_check(ctx, path) != PML_OK);
    CHECK_ERROR_SAYS(ctx, "no-such-folder");
    CHECK(pml_output_write(ctx, path, "x", 1) != PML_OK);
    pml_context_destroy(ctx);
    return 0;
}

API_CASE(the_cpu_is_chosen_for_cpu_and_auto_without_a_gpu)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_backend got = PML_BACKEND_AUTO;
    CHECK_STATUS(pml_backend_choose(ctx, plan, PML_BACKEND_CPU, &got), PML_OK);
    CHECK(got == PML_BACKEND_CPU);
    char arch[16];
    CHECK_STATUS(pml_backend_choose(ctx, plan, PML_BACKEND_AUTO, &got), PML_OK);
    /* AUTO takes the GPU only where there is one (and the plan has code for it). */
    CHECK(got == PML_BACKEND_CPU || pml_gpu_arch(arch, sizeof arch) == PML_OK);
    api_close_mlp(ctx, plan, s);
    return 0;
}

API_CASE(one_process_is_rank_0_of_1_and_a_bad_layout_is_refused)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    pml_ranks_layout lay;
    CHECK_STATUS(pml_ranks_resolve(ctx, plan, 0, 1, 0, &lay), PML_OK);
    CHECK(lay.rank == 0 && lay.world == 1 && lay.replicas == 1 && !strcmp(lay.source, "the caller"));
    CHECK_STATUS(pml_ranks_resolve(ctx, plan, 2, 2, 0, &lay), PML_ERR_INVALID_ARG);
    CHECK_ERROR_SAYS(ctx, "rank 2 does not exist in a world of 2");
    CHECK_STATUS(pml_ranks_resolve(ctx, plan, 0, 3, 2, &lay), PML_ERR_INVALID_ARG);
    CHECK_ERROR_SAYS(ctx, "cannot place the stages on the ranks: 3 ranks cannot form 2 equal pipeline replicas");
    api_close_mlp(ctx, plan, s);
    return 0;
}
