/* bad_arguments_mpi.c — the argument policy of pml_mpi.h, as bad_arguments.c's of pml.h
 * and pmlc.h: every bad argument of pml_mpi_create is refused before MPI starts, with a
 * message naming the call and the argument, and the out-pointer left NULL. Built and run
 * only when PML was built with MPI (tests/api/CMakeLists.txt); the coverage test
 * api.every_public_function_has_a_bad_argument_case reads it whether or not. */
#include <math.h>

#include "api_test.h"
#include "pml_mpi.h"

/* pml_mpi_create(ctx, plan, &layout, timeout, &d) is refused, saying `text`, and d is NULL. */
#define CHECK_CREATE_REFUSED(ctx, plan, layout, timeout, text)                                                        \
    do {                                                                                                              \
        pml_dist *d_ = (pml_dist *)&d_; /* not NULL: a refusal must set it to NULL */                                \
        pml_ranks_layout lay_ = layout;                                                                               \
        CHECK_REFUSED(ctx, pml_mpi_create(ctx, plan, &lay_, timeout, &d_), text);                                     \
        CHECK(d_ == NULL);                                                                                            \
    } while (0)

API_CASE(mpi_create_refuses_null_arguments_and_a_layout_that_cannot_be_before_starting_mpi)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0); /* examples/mlp.pml: two stages */
    pml_ranks_layout two = {0, 2, 1, "the caller"};
    pml_dist *d = (pml_dist *)&d;
    CHECK_STATUS(pml_mpi_create(NULL, plan, &two, 0, &d), PML_ERR_INVALID_ARG);
    CHECK(d == NULL);
    d = (pml_dist *)&d;
    CHECK_REFUSED(ctx, pml_mpi_create(ctx, NULL, &two, 0, &d), "pml_mpi_create: plan is NULL");
    CHECK(d == NULL);
    CHECK_REFUSED(ctx, pml_mpi_create(ctx, plan, NULL, 0, &d), "pml_mpi_create: layout is NULL");
    CHECK_REFUSED(ctx, pml_mpi_create(ctx, plan, &two, 0, NULL), "pml_mpi_create: out is NULL");
    CHECK_CREATE_REFUSED(ctx, plan, two, NAN, "pml_mpi_create: timeout_s is nan, not a number of seconds");
    CHECK_CREATE_REFUSED(ctx, plan, two, INFINITY, "pml_mpi_create: timeout_s is inf, not a number of seconds");
    CHECK_CREATE_REFUSED(ctx, plan, ((pml_ranks_layout){2, 2, 1, "the caller"}), 0,
                         "pml_mpi_create: layout: rank 2 of 2 does not exist");
    CHECK_CREATE_REFUSED(ctx, plan, ((pml_ranks_layout){-1, 2, 1, "the caller"}), 0,
                         "pml_mpi_create: layout: rank -1 of 2 does not exist");
    CHECK_CREATE_REFUSED(ctx, plan, ((pml_ranks_layout){0, 0, 1, "the caller"}), 0,
                         "pml_mpi_create: layout: rank 0 of 0 does not exist");
    CHECK_CREATE_REFUSED(ctx, plan, ((pml_ranks_layout){0, 3, 2, "the caller"}), 0,
                         "pml_mpi_create: layout: 3 ranks cannot form 2 equal pipeline replicas");
    CHECK_CREATE_REFUSED(ctx, plan, ((pml_ranks_layout){0, 3, 1, "the caller"}), 0,
                         "pml_mpi_create: layout: 3 ranks but the plan has 2 stages");
    CHECK_CREATE_REFUSED(ctx, plan, ((pml_ranks_layout){0, 2, -1, "the caller"}), 0,
                         "pml_mpi_create: layout->replicas is -1, below 0");
    api_close_mlp(ctx, plan, s);
    return 0;
}
