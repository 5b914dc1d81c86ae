/* test_feed.c — training data from .npy files (runtime/src/train/feed.h): each epoch
 * visits every row exactly once, in an order fixed by the seed and not by the
 * micro-batching; element types convert into the model's; files that do not fit the
 * model are refused with their path. Each test writes its files and a small program
 * into a fresh temporary folder and works there (relative paths resolve against the
 * current directory). Usage: test_feed BEHAVIOUR (all of them without one). */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../data/data_test.h"
#include "formats/npy.h"
#include "plan/plan.h"
#include "pmlc.h"
#include "train/feed.h"
#include "compile_plan.h"

enum { ROWS = 12, FEATURES = 3 };

/* A model of input f32[B, 3] trained with `loss` on data x.npy and labels y.npy. */
static void write_program(const char *loss)
{
    FILE *f = fopen("m.pml", "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f,
            "import \"nn\"\n"
            "model m(x: f32[B, %d]) -> f32[B, 2] {\n"
            "    return linear(x, 2)\n"
            "}\n"
            "train m {\n"
            "    data = \"x.npy\"\n"
            "    labels = \"y.npy\"\n"
            "    loss = %s\n"
            "    optimizer = sgd(lr = 0.1)\n"
            "    batch = 4, microbatches = 2\n"
            "    steps = 10\n"
            "}\n",
            FEATURES, loss);
    fclose(f);
}

static char temp_dir[64];

/* Leaves and removes the temporary folder entered last, with what the tests wrote. */
static void leave_temp_dir(void)
{
    if (!temp_dir[0]) return;
    remove("m.pml");
    remove("x.npy");
    remove("y.npy");
    CHECK(chdir("/") == 0);
    CHECK(rmdir(temp_dir) == 0);
    temp_dir[0] = 0;
}

/* Enters a fresh temporary folder (removed again at exit or by the next call). */
static void enter_temp_dir(void)
{
    leave_temp_dir();
    snprintf(temp_dir, sizeof temp_dir, "/tmp/pml_feed_XXXXXX");
    CHECK(mkdtemp(temp_dir) != NULL);
    CHECK(chdir(temp_dir) == 0);
}

/* Compiles m.pml (with --set overrides) into a loaded plan; NULL after a failure. */
static pml_plan *compile(const char *set)
{
    const char *sets[1] = {set};
    pmlc_options opt = {0};
    opt.sets = sets;
    opt.n_sets = set ? 1 : 0;
    pml_err err = {0};
    pml_plan *out = test_compile_plan("m.pml", NULL, &opt, &err);
    if (!out) fprintf(stderr, "%s\n", err.msg);
    CHECK(out != NULL);
    return out;
}

/* x[i] = (i, i + 0.5, -i) as f32, y[i] = i % 2 as i32: a row's values name the row. */
static void write_dataset(int rows)
{
    float x[64][FEATURES];
    int32_t y[64];
    for (int i = 0; i < rows; i++) {
        x[i][0] = (float)i, x[i][1] = (float)i + 0.5f, x[i][2] = -(float)i;
        y[i] = i % 2;
    }
    int64_t xs[2] = {rows, FEATURES}, ys[1] = {rows};
    CHECK(pml_npy_write("x.npy", PML_F32, 2, xs, x, NULL) == PML_OK);
    CHECK(pml_npy_write("y.npy", PML_I32, 1, ys, y, NULL) == PML_OK);
}

/* The rows (x[.][0]) of steps [from, to) in order, checking labels go with them. */
static int collect_rows(const pml_plan *pl, pml_feed *feed, int64_t from, int64_t to, int *out)
{
    int n = 0;
    int64_t mbs = pl->conf.microbatches, m = pl->conf.microbatch;
    float x[64 * FEATURES];
    int32_t y[64];
    for (int64_t s = from; s < to; s++)
        for (int64_t mb = 0; mb < mbs; mb++) {
            CHECK(pml_feed_fill(feed, s, mb, 0, x, NULL) == PML_OK);
            CHECK(pml_feed_fill(feed, s, mb, -1, y, NULL) == PML_OK);
            for (int64_t j = 0; j < m; j++) {
                int r = (int)x[j * FEATURES];
                CHECK(x[j * FEATURES + 1] == (float)r + 0.5f && x[j * FEATURES + 2] == -(float)r);
                CHECK(y[j] == r % 2);
                out[n++] = r;
            }
        }
    return n;
}

static void every_row_appears_once_per_epoch(void)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    pml_plan *pl = compile(NULL);
    pml_feed *feed = NULL;
    pml_err err = {0};
    CHECK(pl && pml_feed_create(pl, &feed, &err) == PML_OK);
    if (!feed) {
        fprintf(stderr, "%s\n", err.msg);
        pml_plan_free(pl);
        return;
    }
    CHECK(pml_feed_rows(feed) == ROWS);
    /* 12 rows, batch 4: epoch e is steps 3e .. 3e + 2. */
    int order[3][ROWS], same_order = 1;
    for (int e = 0; e < 3; e++) {
        CHECK(collect_rows(pl, feed, 3 * e, 3 * e + 3, order[e]) == ROWS);
        int seen[ROWS] = {0};
        for (int i = 0; i < ROWS; i++)
            if (order[e][i] >= 0 && order[e][i] < ROWS) seen[order[e][i]]++;
        for (int i = 0; i < ROWS; i++) CHECK(seen[i] == 1);
        if (e) same_order &= !memcmp(order[e], order[0], sizeof order[0]);
    }
    CHECK(!same_order); /* each epoch is a fresh permutation */
    pml_feed_destroy(feed);
    pml_plan_free(pl);
}

static void order_does_not_depend_on_microbatches(void)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    const char *sets[] = {NULL, "microbatches=1", "microbatches=4"};
    int order[3][2 * ROWS];
    for (int k = 0; k < 3; k++) {
        pml_plan *pl = compile(sets[k]);
        pml_feed *feed = NULL;
        CHECK(pl && pml_feed_create(pl, &feed, NULL) == PML_OK);
        if (feed) CHECK(collect_rows(pl, feed, 0, 6, order[k]) == 2 * ROWS);
        pml_feed_destroy(feed);
        pml_plan_free(pl);
    }
    CHECK(!memcmp(order[0], order[1], sizeof order[0]));
    CHECK(!memcmp(order[0], order[2], sizeof order[0]));
}

/* Writes x.npy as `xt` holding rows i -> (i, 2i, 255 - i) and y.npy as `yt` holding
 * i % 2, then checks one epoch's values arrive converted. */
static void converts(pml_dtype xt, pml_dtype yt)
{
    enter_temp_dir();
    write_program("cross_entropy");
    unsigned char xb[ROWS * FEATURES * 8], yb[ROWS * 8];
    for (int i = 0; i < ROWS; i++) {
        double v[FEATURES] = {i, 2 * i, 255 - i};
        for (int k = 0; k < FEATURES; k++) {
            int at = i * FEATURES + k;
            switch (xt) {
            case PML_F64:
                ((double *)(void *)xb)[at] = v[k] + 0.25;
                break;
            case PML_U8:
                xb[at] = (uint8_t)v[k];
                break;
            case PML_I32:
                ((int32_t *)(void *)xb)[at] = (int32_t)v[k];
                break;
            case PML_I64:
                ((int64_t *)(void *)xb)[at] = (int64_t)v[k];
                break;
            default:
                ((float *)(void *)xb)[at] = (float)v[k];
                break;
            }
        }
        if (yt == PML_I64)
            ((int64_t *)(void *)yb)[i] = i % 2;
        else if (yt == PML_U8)
            yb[i] = (uint8_t)(i % 2);
        else
            ((int32_t *)(void *)yb)[i] = i % 2;
    }
    int64_t xs[2] = {ROWS, FEATURES}, ys[1] = {ROWS};
    CHECK(pml_npy_write("x.npy", xt, 2, xs, xb, NULL) == PML_OK);
    CHECK(pml_npy_write("y.npy", yt, 1, ys, yb, NULL) == PML_OK);
    pml_plan *pl = compile(NULL);
    pml_feed *feed = NULL;
    pml_err err = {0};
    CHECK(pl && pml_feed_create(pl, &feed, &err) == PML_OK);
    if (feed) {
        float x[2 * FEATURES];
        int32_t y[2];
        int seen = 0;
        for (int64_t s = 0; s < 3; s++)
            for (int64_t mb = 0; mb < 2; mb++) {
                CHECK(pml_feed_fill(feed, s, mb, 0, x, NULL) == PML_OK);
                CHECK(pml_feed_fill(feed, s, mb, -1, y, NULL) == PML_OK);
                for (int j = 0; j < 2; j++) {
                    float off = xt == PML_F64 ? 0.25f : 0;
                    int i = (int)(x[j * FEATURES] - off);
                    CHECK(x[j * FEATURES] == (float)i + off);
                    CHECK(x[j * FEATURES + 1] == (float)(2 * i) + off); /* u8: plain values, no scaling */
                    CHECK(x[j * FEATURES + 2] == (float)(255 - i) + off);
                    CHECK(y[j] == i % 2);
                    seen |= 1 << i;
                }
            }
        CHECK(seen == (1 << ROWS) - 1);
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    pml_feed_destroy(feed);
    pml_plan_free(pl);
}

static void inputs_convert_from_every_dtype(void)
{
    pml_dtype xs[] = {PML_F32, PML_F64, PML_U8, PML_I32, PML_I64};
    for (int k = 0; k < 5; k++) converts(xs[k], PML_I32);
}

static void labels_convert_from_i64_and_u8(void)
{
    converts(PML_F32, PML_I64);
    converts(PML_F32, PML_U8);
}

static void float_labels_convert_from_f64(void)
{
    enter_temp_dir();
    write_program("mse");
    double x[ROWS][FEATURES], y[ROWS][2];
    for (int i = 0; i < ROWS; i++) {
        for (int k = 0; k < FEATURES; k++) x[i][k] = i;
        y[i][0] = i + 0.5, y[i][1] = -i;
    }
    int64_t xs[2] = {ROWS, FEATURES}, ys[2] = {ROWS, 2};
    CHECK(pml_npy_write("x.npy", PML_F64, 2, xs, x, NULL) == PML_OK);
    CHECK(pml_npy_write("y.npy", PML_F64, 2, ys, y, NULL) == PML_OK);
    pml_plan *pl = compile(NULL);
    pml_feed *feed = NULL;
    pml_err err = {0};
    CHECK(pl && pml_feed_create(pl, &feed, &err) == PML_OK);
    if (feed) {
        float xv[2 * FEATURES], yv[4];
        CHECK(pml_feed_fill(feed, 1, 1, 0, xv, NULL) == PML_OK);
        CHECK(pml_feed_fill(feed, 1, 1, -1, yv, NULL) == PML_OK);
        for (int j = 0; j < 2; j++) {
            float i = xv[j * FEATURES];
            CHECK(yv[2 * j] == i + 0.5f && yv[2 * j + 1] == -i);
        }
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    pml_feed_destroy(feed);
    pml_plan_free(pl);
}

/* Creating the feed fails with `code` and a message holding each of `want` (NULL-ended). */
static void refused(pml_status code, const char *const *want)
{
    pml_plan *pl = compile(NULL);
    pml_feed *feed = NULL;
    pml_err err = {0};
    CHECK(pl && pml_feed_create(pl, &feed, &err) == code);
    CHECK(feed == NULL);
    for (int k = 0; want[k]; k++) {
        CHECK(strstr(err.msg, want[k]) != NULL);
        if (!strstr(err.msg, want[k])) fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, want[k]);
    }
    if (getenv("PML_TEST_VERBOSE")) fprintf(stderr, "%s\n", err.msg);
    pml_feed_destroy(feed);
    pml_plan_free(pl);
}

static void a_row_shape_mismatch_is_refused(void)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    float x[ROWS * 4] = {0};
    int64_t xs[2] = {ROWS, 4};
    CHECK(pml_npy_write("x.npy", PML_F32, 2, xs, x, NULL) == PML_OK);
    refused(PML_ERR_INVALID_ARG, (const char *const[]){"x.npy", "(12, 4)", "(N, 3)", NULL});
}

static void a_row_count_mismatch_is_refused(void)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    int32_t y[ROWS - 2] = {0};
    int64_t ys[1] = {ROWS - 2};
    CHECK(pml_npy_write("y.npy", PML_I32, 1, ys, y, NULL) == PML_OK);
    refused(PML_ERR_INVALID_ARG, (const char *const[]){"y.npy", "10 rows", "12", NULL});
}

static void a_missing_file_is_refused(void)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    CHECK(remove("y.npy") == 0);
    refused(PML_ERR_IO, (const char *const[]){"y.npy", NULL});
}

static void an_unsupported_dtype_is_refused(void)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    float y[ROWS] = {0};
    int64_t ys[1] = {ROWS};
    CHECK(pml_npy_write("y.npy", PML_F32, 1, ys, y, NULL) == PML_OK);
    refused(PML_ERR_UNSUPPORTED, (const char *const[]){"y.npy", "f32", "i32", NULL});
}

static void labels_beyond_i32_are_refused(void)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    int64_t y[ROWS] = {0};
    y[7] = (int64_t)1 << 40;
    int64_t ys[1] = {ROWS};
    CHECK(pml_npy_write("y.npy", PML_I64, 1, ys, y, NULL) == PML_OK);
    refused(PML_ERR_INVALID_ARG, (const char *const[]){"y.npy", "1099511627776", NULL});
}

int main(int argc, char **argv)
{
    static const data_test tests[] = {
        {"every_row_appears_once_per_epoch", every_row_appears_once_per_epoch},
        {"order_does_not_depend_on_microbatches", order_does_not_depend_on_microbatches},
        {"inputs_convert_from_every_dtype", inputs_convert_from_every_dtype},
        {"labels_convert_from_i64_and_u8", labels_convert_from_i64_and_u8},
        {"float_labels_convert_from_f64", float_labels_convert_from_f64},
        {"a_row_shape_mismatch_is_refused", a_row_shape_mismatch_is_refused},
        {"a_row_count_mismatch_is_refused", a_row_count_mismatch_is_refused},
        {"a_missing_file_is_refused", a_missing_file_is_refused},
        {"an_unsupported_dtype_is_refused", an_unsupported_dtype_is_refused},
        {"labels_beyond_i32_are_refused", labels_beyond_i32_are_refused},
    };
    int rc = data_test_main(argc, argv, tests, (int)(sizeof tests / sizeof *tests));
    leave_temp_dir();
    return rc;
}
