/* test_feed.c — training data from .npy files (runtime/src/exec/feed.h): each epoch
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
#include <sys/stat.h>
#include <unistd.h>

#include "../data/data_test.h"
#include "compile_plan.h"
#include "exec/feed.h"
#include "exec/pipeline.h"
#include "formats/npy.h"
#include "plan/plan.h"
#include "pmlc.h"

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
    static const char *const written[] = {"m.pml", "x.npy", "y.npy", "xv.npy", "yv.npy", "t.bin", "v.bin"};
    for (size_t k = 0; k < sizeof written / sizeof *written; k++) remove(written[k]);
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

/* Compiles m.pml with the --set overrides `sets` (NULL-ended) into a loaded plan; NULL
 * after a failure. */
static pml_plan *compile_with(const char *const *sets)
{
    pmlc_options opt = {0};
    int n = 0;
    while (sets && sets[n]) n++;
    opt.sets = (const char **)sets;
    opt.n_sets = n;
    pml_err err = {0};
    pml_plan *out = test_compile_plan("m.pml", NULL, &opt, &err);
    if (!out) fprintf(stderr, "%s\n", err.msg);
    CHECK(out != NULL);
    return out;
}

/* Compiles m.pml with at most one --set override. */
static pml_plan *compile(const char *set)
{
    const char *sets[2] = {set, NULL};
    return compile_with(sets);
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

/* ---- class labels: checked at load ---------------------------------------------- */

/* y.npy of `dtype` holding i % 2 but `bad` at row `row`: refused naming file, row, value. */
static void label_refused(pml_dtype dtype, int row, int64_t bad, const char *value)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    int64_t y[ROWS];
    unsigned char buf[ROWS * 8];
    for (int i = 0; i < ROWS; i++) y[i] = i == row ? bad : i % 2;
    for (int i = 0; i < ROWS; i++) {
        if (dtype == PML_I64) ((int64_t *)(void *)buf)[i] = y[i];
        if (dtype == PML_I32) ((int32_t *)(void *)buf)[i] = (int32_t)y[i];
        if (dtype == PML_U8) buf[i] = (uint8_t)y[i];
    }
    int64_t ys[1] = {ROWS};
    CHECK(pml_npy_write("y.npy", dtype, 1, ys, buf, NULL) == PML_OK);
    char where[32];
    snprintf(where, sizeof where, "row %d:", row);
    refused(PML_ERR_INVALID_ARG, (const char *const[]){"y.npy: ", where, value, "outside [0, 2)", NULL});
}

static void a_label_out_of_range_is_named_at_load(void)
{
    label_refused(PML_I64, 7, 2, "label 2 ");
    label_refused(PML_I32, 0, -1, "label -1 ");
    label_refused(PML_U8, 11, 200, "label 200 ");
    label_refused(PML_I64, 3, INT64_MIN + 1, "label -9223372036854775807 ");
}

/* Float labels, whole or not (NaN, 0.5), are refused by type with a hint. */
static void float_class_labels_are_refused_with_a_hint(void)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    double y[ROWS] = {0};
    y[4] = 0.5;
    int64_t ys[1] = {ROWS};
    CHECK(pml_npy_write("y.npy", PML_F64, 1, ys, y, NULL) == PML_OK);
    refused(PML_ERR_UNSUPPORTED, (const char *const[]){"y.npy", "f64", "whole numbers", NULL});
}

/* ---- held-out data ---------------------------------------------------------------- */

/* The rows (x[.][0]) of evaluation batches [0, batches). */
static int collect_eval_rows(const pml_plan *pl, pml_feed *feed, int64_t batches, int *out)
{
    return collect_rows(pl, feed, PML_EVAL_STEP0, PML_EVAL_STEP0 + batches, out);
}

static void holdout_rows_are_never_trained_on(void)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    pml_plan *pl = compile("holdout=0.25"); /* 3 of 12 rows held out, 9 train */
    pml_feed *feed = NULL;
    pml_err err = {0};
    CHECK(pl && pml_feed_create(pl, &feed, &err) == PML_OK);
    if (!feed) {
        fprintf(stderr, "%s\n", err.msg);
        pml_plan_free(pl);
        return;
    }
    CHECK(pml_feed_rows(feed) == 9); /* an epoch is the training rows */
    int64_t rows = 0;
    CHECK(pml_feed_eval_source(feed, &rows, NULL) == PML_FEED_EVAL_HOLDOUT && rows == 3);
    int held[ROWS] = {0}, eval[12];
    CHECK(collect_eval_rows(pl, feed, 3, eval) == 12);
    for (int i = 0; i < 12; i++) {
        CHECK(eval[i] == eval[i % 3]); /* the 3 held-out rows, in order, again and again */
        if (eval[i] >= 0 && eval[i] < ROWS) held[eval[i]] = 1;
    }
    CHECK(held[eval[0]] + held[eval[1]] + held[eval[2]] == 3 && eval[0] != eval[1] && eval[1] != eval[2] &&
          eval[0] != eval[2]);
    /* 4 epochs of 9 rows = 36 rows = 9 steps of 4: each epoch is the 9 others, once. */
    int order[36];
    CHECK(collect_rows(pl, feed, 0, 9, order) == 36);
    for (int e = 0; e < 4; e++) {
        int seen[ROWS] = {0};
        for (int i = 0; i < 9; i++)
            if (order[9 * e + i] >= 0 && order[9 * e + i] < ROWS) seen[order[9 * e + i]]++;
        for (int r = 0; r < ROWS; r++) CHECK(seen[r] == (held[r] ? 0 : 1));
    }
    pml_feed_destroy(feed);
    pml_plan_free(pl);
    /* Another seed holds out the same rows. */
    const char *sets[] = {"holdout=0.25", "seed=7", NULL};
    pl = compile_with(sets);
    feed = NULL;
    CHECK(pl && pml_feed_create(pl, &feed, NULL) == PML_OK);
    int again[4] = {-1, -1, -1, -1};
    if (feed) CHECK(collect_eval_rows(pl, feed, 1, again) == 4);
    CHECK(!memcmp(again, eval, 3 * sizeof *again));
    pml_feed_destroy(feed);
    pml_plan_free(pl);
}

static void eval_files_feed_evaluation_and_only_evaluation(void)
{
    enter_temp_dir();
    write_program("cross_entropy");
    write_dataset(ROWS);
    /* Held-out rows 40..44: values no training row has. */
    float x[5][FEATURES];
    int64_t y[5];
    for (int i = 0; i < 5; i++) {
        int r = 40 + i;
        x[i][0] = (float)r, x[i][1] = (float)r + 0.5f, x[i][2] = -(float)r;
        y[i] = r % 2;
    }
    int64_t xs[2] = {5, FEATURES}, ys[1] = {5};
    CHECK(pml_npy_write("xv.npy", PML_F32, 2, xs, x, NULL) == PML_OK);
    CHECK(pml_npy_write("yv.npy", PML_I64, 1, ys, y, NULL) == PML_OK);
    const char *sets[] = {"eval_data=\"xv.npy\"", "eval_labels=\"yv.npy\"", NULL};
    pml_plan *pl = compile_with(sets);
    pml_feed *feed = NULL;
    pml_err err = {0};
    CHECK(pl && pml_feed_create(pl, &feed, &err) == PML_OK);
    if (feed) {
        int64_t rows = 0;
        const char *path = NULL;
        CHECK(pml_feed_eval_source(feed, &rows, &path) == PML_FEED_EVAL_FILES && rows == 5);
        CHECK(path && !strcmp(path, "xv.npy"));
        CHECK(pml_feed_rows(feed) == ROWS);
        int ev[8], tr[6 * 4];
        CHECK(collect_eval_rows(pl, feed, 2, ev) == 8);
        for (int i = 0; i < 8; i++) CHECK(ev[i] == 40 + i % 5);
        CHECK(collect_rows(pl, feed, 0, 6, tr) == 24);
        for (int i = 0; i < 24; i++) CHECK(tr[i] < ROWS);
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    pml_feed_destroy(feed);
    pml_plan_free(pl);
    /* A bad label in the held-out file is named too. */
    y[3] = 5;
    CHECK(pml_npy_write("yv.npy", PML_I64, 1, ys, y, NULL) == PML_OK);
    pl = compile_with(sets);
    feed = NULL;
    CHECK(pl && pml_feed_create(pl, &feed, &err) == PML_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "yv.npy: row 3: label 5 is outside [0, 2)") != NULL);
    pml_feed_destroy(feed);
    pml_plan_free(pl);
}

/* ---- token files ------------------------------------------------------------------ */

enum { VOCAB = 11, T = 4 };

/* A model of token input i32[B, T] trained on tokens("t.bin") (with `extra` fields). */
static void write_token_program(const char *extra)
{
    FILE *f = fopen("m.pml", "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f,
            "import \"nn\"\n"
            "model m(idx: i32[B, T]) -> f32[B, T, %d] {\n"
            "    return linear(embedding(idx, %d, 8), %d)\n"
            "}\n"
            "train m {\n"
            "    data = tokens(\"t.bin\")\n"
            "    loss = cross_entropy\n"
            "    optimizer = sgd(lr = 0.1)\n"
            "    batch = 4, microbatches = 2\n"
            "    steps = 10\n"
            "    T = %d\n"
            "%s"
            "}\n",
            VOCAB, VOCAB, VOCAB, T, extra ? extra : "");
    fclose(f);
}

/* Writes `n` tokens, token i = (i + base) % VOCAB, flat or with llm.c's header (`header`
 * holds its magic, version and count), plus `tail` stray bytes. */
static void write_tokens(const char *path, int n, int base, const int32_t *header, int tail)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    if (header) {
        int32_t h[256] = {0};
        memcpy(h, header, 3 * sizeof *h);
        CHECK(fwrite(h, sizeof h, 1, f) == 1);
    }
    for (int i = 0; i < n; i++) {
        uint16_t v = (uint16_t)((i + base) % VOCAB);
        CHECK(fwrite(&v, 2, 1, f) == 1);
    }
    for (int i = 0; i < tail; i++) CHECK(fputc(0, f) != EOF);
    fclose(f);
}

/* Every window of steps [from, to): the labels are the inputs shifted by one, and the
 * inputs a run of the file (token i = (i + base) % VOCAB). */
static void check_windows(const pml_plan *pl, pml_feed *feed, int64_t from, int64_t to, int base)
{
    int32_t x[2 * T], y[2 * T];
    for (int64_t s = from; s < to; s++)
        for (int64_t mb = 0; mb < 2; mb++) {
            CHECK(pml_feed_fill(feed, s, mb, 0, x, NULL) == PML_OK);
            CHECK(pml_feed_fill(feed, s, mb, -1, y, NULL) == PML_OK);
            for (int j = 0; j < 2; j++)
                for (int t = 0; t < T; t++) {
                    CHECK(y[j * T + t] == (x[j * T + t] + 1) % VOCAB);
                    CHECK(x[j * T + t] == (x[j * T] + t) % VOCAB);
                }
            (void)base;
        }
    (void)pl;
}

static void token_files_give_windows_and_next_tokens(void)
{
    enter_temp_dir();
    write_token_program("    eval_data = tokens(\"v.bin\")\n");
    write_tokens("t.bin", 100, 0, NULL, 0);                              /* flat, nanoGPT's */
    write_tokens("v.bin", 30, 5, (const int32_t[]){20240520, 1, 30}, 0); /* llm.c's header */
    pml_plan *pl = compile(NULL);
    pml_feed *feed = NULL;
    pml_err err = {0};
    CHECK(pl && pml_feed_create(pl, &feed, &err) == PML_OK);
    if (feed) {
        CHECK(pml_feed_eval_source(feed, NULL, NULL) == PML_FEED_EVAL_FILES);
        check_windows(pl, feed, 0, 20, 0);
        check_windows(pl, feed, PML_EVAL_STEP0, PML_EVAL_STEP0 + 5, 5);
        /* A step's windows are a function of (seed, step): asked again, the same. */
        int32_t a[2 * T], b[2 * T];
        CHECK(pml_feed_fill(feed, 7, 1, 0, a, NULL) == PML_OK);
        CHECK(pml_feed_fill(feed, 3, 0, 0, b, NULL) == PML_OK);
        CHECK(pml_feed_fill(feed, 7, 1, 0, b, NULL) == PML_OK);
        CHECK(!memcmp(a, b, sizeof a));
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    pml_feed_destroy(feed);
    pml_plan_free(pl);
}

/* With holdout, training windows never reach the held-out tail and evaluation's stay in it. */
static void token_holdout_windows_stay_on_their_side(void)
{
    enter_temp_dir();
    write_token_program("    holdout = 0.2\n");
    /* 100 tokens: the first 80 are 0..9 repeating, the held-out 20 are all 10. */
    FILE *f = fopen("t.bin", "wb");
    CHECK(f != NULL);
    for (int i = 0; f && i < 100; i++) {
        uint16_t v = (uint16_t)(i < 80 ? i % 10 : 10);
        CHECK(fwrite(&v, 2, 1, f) == 1);
    }
    if (f) fclose(f);
    pml_plan *pl = compile(NULL);
    pml_feed *feed = NULL;
    CHECK(pl && pml_feed_create(pl, &feed, NULL) == PML_OK);
    int32_t x[2 * T], y[2 * T];
    for (int64_t s = 0; feed && s < 200; s++) {
        CHECK(pml_feed_fill(feed, s, s % 2, -1, y, NULL) == PML_OK);
        for (int i = 0; i < 2 * T; i++) CHECK(y[i] != 10);
        CHECK(pml_feed_fill(feed, PML_EVAL_STEP0 + s, s % 2, 0, x, NULL) == PML_OK);
        for (int i = 0; i < 2 * T; i++) CHECK(x[i] == 10);
    }
    pml_feed_destroy(feed);
    pml_plan_free(pl);
}

/* t.bin as written by `write`, refused with a message holding each of `want`. */
static void token_file_refused(pml_status code, const char *const *want)
{
    pml_plan *pl = compile(NULL);
    pml_feed *feed = NULL;
    pml_err err = {0};
    CHECK(pl && pml_feed_create(pl, &feed, &err) == code);
    CHECK(feed == NULL);
    for (int k = 0; want[k]; k++)
        if (!strstr(err.msg, want[k])) {
            CHECK(!"the message names what is wrong");
            fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, want[k]);
        }
    pml_feed_destroy(feed);
    pml_plan_free(pl);
}

static void bad_token_files_are_refused_naming_the_file(void)
{
    enter_temp_dir();
    write_token_program(NULL);
    write_tokens("t.bin", 50, 0, (const int32_t[]){20240520, 2, 50}, 0);
    token_file_refused(PML_ERR_UNSUPPORTED, (const char *const[]){"t.bin", "version 2", NULL});
    write_tokens("t.bin", 50, 0, (const int32_t[]){20240520, 1, 60}, 0);
    token_file_refused(PML_ERR_FORMAT, (const char *const[]){"t.bin", "claims 60 tokens", "100 bytes", NULL});
    write_tokens("t.bin", 50, 0, (const int32_t[]){20240520, 1, 50}, 3);
    token_file_refused(PML_ERR_FORMAT, (const char *const[]){"t.bin", "claims 50 tokens", "103 bytes", NULL});
    write_tokens("t.bin", 50, 0, NULL, 1);
    token_file_refused(PML_ERR_FORMAT, (const char *const[]){"t.bin", "101 bytes", "odd", NULL});
    write_tokens("t.bin", 3, 0, NULL, 0);
    token_file_refused(PML_ERR_INVALID_ARG, (const char *const[]){"t.bin", "3 tokens", "T = 4", NULL});
    write_tokens("t.bin", 0, 0, NULL, 0);
    token_file_refused(PML_ERR_INVALID_ARG, (const char *const[]){"t.bin", "no tokens", NULL});
    /* Token 37 of a headered file is 11, the vocabulary's size: named by index and offset. */
    write_tokens("t.bin", 50, 0, (const int32_t[]){20240520, 1, 50}, 0);
    FILE *f = fopen("t.bin", "r+b");
    CHECK(f && fseek(f, 1024 + 2 * 37, SEEK_SET) == 0);
    uint16_t big = VOCAB;
    if (f) {
        CHECK(fwrite(&big, 2, 1, f) == 1);
        fclose(f);
    }
    token_file_refused(PML_ERR_INVALID_ARG,
                       (const char *const[]){"t.bin", "token 37", "offset 1098", "is 11", "[0, 11)", NULL});
    CHECK(remove("t.bin") == 0);
    CHECK(mkdir("t.bin", 0700) == 0);
    token_file_refused(PML_ERR_IO, (const char *const[]){"t.bin", "folder", NULL});
    CHECK(rmdir("t.bin") == 0);
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
        {"a_label_out_of_range_is_named_at_load", a_label_out_of_range_is_named_at_load},
        {"float_class_labels_are_refused_with_a_hint", float_class_labels_are_refused_with_a_hint},
        {"holdout_rows_are_never_trained_on", holdout_rows_are_never_trained_on},
        {"eval_files_feed_evaluation_and_only_evaluation", eval_files_feed_evaluation_and_only_evaluation},
        {"token_files_give_windows_and_next_tokens", token_files_give_windows_and_next_tokens},
        {"token_holdout_windows_stay_on_their_side", token_holdout_windows_stay_on_their_side},
        {"bad_token_files_are_refused_naming_the_file", bad_token_files_are_refused_naming_the_file},
    };
    int rc = data_test_main(argc, argv, tests, (int)(sizeof tests / sizeof *tests));
    leave_temp_dir();
    return rc;
}
