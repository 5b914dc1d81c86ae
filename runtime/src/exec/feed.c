/* feed.c — see feed.h. A generator feed asks data/synth.h for rows; a file feed maps
 * two .npy files (and a held-out pair) and copies (converting) the rows the shuffle
 * picks; a token feed copies windows of a token file (data/tokens.h). Evaluation steps
 * (PML_EVAL_STEP0 on) are mapped to held-out data here, and only here. */
#include "exec/feed.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/finite.h"
#include "core/rng.h"
#include "data/bounds.h"
#include "data/shuffle.h"
#include "data/synth.h"
#include "data/tokens.h"
#include "exec/pipeline.h"
#include "formats/npy.h"

enum { DATA_NONE, DATA_FILE, DATA_CLASSES, DATA_MARKOV, DATA_TOKENS };

/* The key of the fixed permutation that splits a .npy dataset into training and
 * held-out rows: not the training seed, so a run with another seed holds out the same
 * rows and never trains on the others' test set. */
#define HOLDOUT_KEY 0x686f6c646f75742eull /* "holdout." */
/* rng.h streams of a token feed's window starts: training and evaluation. */
#define STREAM_WINDOW 0x746f6b2d77696e64ull      /* "tok-wind" */
#define STREAM_EVAL_WINDOW 0x746f6b2d6576616cull /* "tok-eval" */

/* One .npy file bound to one model node. */
typedef struct feed_file {
    const char *path;
    pml_npy_array arr;
    const pml_plan_node *node;
    size_t row_elems; /* elements per row, in the file and in the node alike */
} feed_file;

/* A token feed's tokens: windows start in [lo, hi - T - 1] of `file`. */
typedef struct token_span {
    const pml_tokens *file;
    uint64_t lo, hi;
} token_span;

struct pml_feed {
    const pml_plan *plan;
    pml_synth *synth;
    feed_file x, y;   /* the inputs and the labels of a file feed */
    feed_file ex, ey; /* its held-out files (eval_data, eval_labels), when given */
    pml_tokens tok, eval_tok;
    token_span train_span, eval_span; /* a token feed's */
    int64_t rows;                     /* rows per epoch of a file feed (those not held out), 0 otherwise */
    int64_t held;                     /* rows held out by `holdout` (the last of the fixed split permutation) */
    int64_t eval_rows;                /* distinct rows evaluation draws from (0: endless) */
    pml_feed_eval eval;
};

/* "(28, 28)" — a shape as numpy prints it; with `rows`, "(N, 28, 28)" for rows of dims. */
static const char *shape_str(char *buf, size_t cap, const int64_t *dims, int rank, int rows)
{
    size_t n = (size_t)snprintf(buf, cap, "(%s", rows ? "N" : "");
    for (int k = 0; k < rank && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", k || rows ? ", " : "", (long long)dims[k]);
    if (n < cap) snprintf(buf + n, cap - n, rank + rows == 1 ? ",)" : ")");
    return buf;
}

int pml_feed_converts(pml_dtype from, pml_dtype to)
{
    if (to == PML_F32)
        return from == PML_F32 || from == PML_F64 || from == PML_U8 || from == PML_I32 || from == PML_I64;
    if (to == PML_I32) return from == PML_I32 || from == PML_I64 || from == PML_U8;
    return 0;
}

/* Checks `a` (rows for `node`; what: "input 'x'" or "labels") in dtype, rank and row
 * shape, and that its values are finite; sets *row_elems. */
static pml_status rows_fit(const pml_npy_array *a, const char *path, const pml_plan_node *node, const char *what,
                           size_t *row_elems, pml_err *err)
{
    if (!pml_feed_converts(a->dtype, (pml_dtype)node->dtype)) {
        /* Float class labels (NaN, 2.5, or whole numbers alike) are refused as a type, as
         * PyTorch's cross-entropy refuses float targets: a rounding rule would hide bad labels. */
        int float_ids = node->dtype == PML_I32 && (a->dtype == PML_F32 || a->dtype == PML_F64);
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "%s: holds %s, which cannot feed the model's %s of type %s%s",
                           path, pml_dtype_name(a->dtype), what, pml_dtype_name((pml_dtype)node->dtype),
                           float_ids ? " (class labels and token ids are whole numbers: save them as integers, "
                                       "e.g. y.astype(numpy.int64))"
                                     : "");
    }
    if (a->rank < 1)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: holds a scalar; a dataset needs rows (a first dimension)",
                           path);
    int same = a->rank == node->rank;
    for (int k = 1; same && k < a->rank; k++) same = a->shape[k] == node->dims[k];
    if (!same) {
        char got[160], want[160];
        shape_str(got, sizeof got, a->shape, a->rank, 0);
        shape_str(want, sizeof want, node->dims + 1, node->rank > 0 ? node->rank - 1 : 0, 1);
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: has shape %s, but the model's %s needs shape %s", path, got,
                           what, want);
    }
    *row_elems = 1;
    for (int k = 1; k < a->rank; k++) *row_elems *= (size_t)a->shape[k];
    /* NaN or inf in the data is named here, once (at memory speed: docs/reliability.md),
     * rather than found as a diverged loss steps later. */
    return pml_feed_check_finite(a, path, *row_elems, err);
}

/* i64 into i32: every value must fit, checked once at load rather than per step. */
static pml_status fits_i32(const pml_npy_array *a, const char *path, const pml_plan_node *node, size_t row_elems,
                           const char *what, pml_err *err)
{
    if (a->dtype != PML_I64 || node->dtype != PML_I32) return PML_OK;
    const int64_t *v = a->data;
    size_t n = a->nbytes / sizeof *v;
    for (size_t i = 0; i < n; i++)
        if (v[i] < INT32_MIN || v[i] > INT32_MAX)
            return pml_err_set(err, PML_ERR_INVALID_ARG,
                               "%s: element %zu (row %zu) is %lld, which does not fit the model's i32 %s", path, i,
                               row_elems ? i / row_elems : 0, (long long)v[i], what);
    return PML_OK;
}

pml_status pml_feed_check_finite(const pml_npy_array *a, const char *path, size_t row_elems, pml_err *err)
{
    size_t n = a->nbytes / pml_dtype_size(a->dtype), k = n;
    double v = 0;
    if (a->dtype == PML_F32 && (k = pml_finite_scan_f32(a->data, n)) < n) v = ((const float *)a->data)[k];
    if (a->dtype == PML_F64) { /* finite, and within f32's range, into which it converts */
        const double *x = a->data;
        for (k = 0; k < n && fabs(x[k]) <= FLT_MAX; k++) continue;
        if (k < n) v = x[k];
    }
    if (k == n) return PML_OK;
    return pml_err_set(err, PML_ERR_NONFINITE, "%s: row %zu (element %zu) is %s%s: the data must be finite", path,
                       row_elems ? k / row_elems : 0, k, isfinite(v) ? "beyond f32's range: " : "",
                       isfinite(v) ? "" : pml_finite_name(v));
}

void pml_feed_convert(void *dst, pml_dtype to, const void *src, pml_dtype from, size_t at, size_t n)
{
    if (to == PML_F32) {
        float *d = dst;
        switch (from) {
        case PML_F32:
            memcpy(d, (const float *)src + at, n * sizeof *d);
            break;
        case PML_F64:
            for (size_t i = 0; i < n; i++) d[i] = (float)((const double *)src)[at + i];
            break;
        case PML_U8:
            for (size_t i = 0; i < n; i++) d[i] = (float)((const uint8_t *)src)[at + i];
            break;
        case PML_I32:
            for (size_t i = 0; i < n; i++) d[i] = (float)((const int32_t *)src)[at + i];
            break;
        case PML_I64:
            for (size_t i = 0; i < n; i++) d[i] = (float)((const int64_t *)src)[at + i];
            break;
        default:
            break;
        }
    } else {
        int32_t *d = dst;
        switch (from) {
        case PML_I32:
            memcpy(d, (const int32_t *)src + at, n * sizeof *d);
            break;
        case PML_I64:
            for (size_t i = 0; i < n; i++) d[i] = (int32_t)((const int64_t *)src)[at + i];
            break;
        case PML_U8:
            for (size_t i = 0; i < n; i++) d[i] = ((const uint8_t *)src)[at + i];
            break;
        default:
            break;
        }
    }
}

/* Copies row `row` of `f` into dst (row_elems elements of the node's dtype). */
static void file_row(const feed_file *f, int64_t row, void *dst)
{
    pml_feed_convert(dst, (pml_dtype)f->node->dtype, f->arr.data, f->arr.dtype, (size_t)row * f->row_elems,
                     f->row_elems);
}

static const char *plan_string(const pml_plan *plan, int64_t idx)
{
    return idx >= 0 && idx < plan->n_strings ? plan->strings[idx] : NULL;
}

/* V, the size of the output's class axis when the labels are class indices (i32 labels
 * with one axis fewer than the output, as the loss and pml_pipeline_evaluate read them);
 * 0 when they are not. */
static int64_t class_count(const pml_plan *plan)
{
    if (plan->labels < 0 || plan->output < 0) return 0;
    const pml_plan_node *out = &plan->nodes[plan->output], *lab = &plan->nodes[plan->labels];
    return lab->dtype == PML_I32 && out->rank >= 1 && out->rank == lab->rank + 1 ? out->dims[out->rank - 1] : 0;
}

/* Class labels: every one in [0, classes), checked once at load so a bad label is named
 * by file, row and value, never found when its row is drawn. (Labels in files of other
 * dtypes cannot feed i32 labels: rows_fit refuses them.) */
static pml_status labels_check(const pml_npy_array *a, const char *path, size_t row_elems, int64_t classes,
                               pml_err *err)
{
    size_t n = a->nbytes / pml_dtype_size(a->dtype), bad = n;
    int64_t v = 0;
    if (a->dtype == PML_U8) {
        bad = pml_first_outside_u8(a->data, n, (uint64_t)classes);
        if (bad < n) v = ((const uint8_t *)a->data)[bad];
    } else if (a->dtype == PML_I32) {
        bad = pml_first_outside_i32(a->data, n, (uint64_t)classes);
        if (bad < n) v = ((const int32_t *)a->data)[bad];
    } else if (a->dtype == PML_I64) {
        bad = pml_first_outside_i64(a->data, n, (uint64_t)classes);
        if (bad < n) v = ((const int64_t *)a->data)[bad];
    }
    if (bad == n) return PML_OK;
    size_t row = row_elems ? bad / row_elems : 0;
    if (row_elems > 1)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: row %zu, element %zu: label %lld is outside [0, %lld)",
                           path, row, bad % row_elems, (long long)v, (long long)classes);
    return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: row %zu: label %lld is outside [0, %lld)", path, row,
                       (long long)v, (long long)classes);
}

pml_status pml_feed_check_rows(const pml_npy_array *a, const char *path, const pml_plan *plan, int input,
                               pml_err *err)
{
    char what[160] = "labels";
    const pml_plan_node *node = &plan->nodes[input >= 0 ? plan->input_nodes[input] : plan->labels];
    if (input >= 0) snprintf(what, sizeof what, "input '%s'", plan->input_names[input]);
    size_t row_elems = 0;
    pml_status st = rows_fit(a, path, node, what, &row_elems, err);
    int64_t classes = input < 0 ? class_count(plan) : 0;
    /* Class labels in range fit in i32 (V < 2^31): that check names the label. */
    if (!st) st = classes > 0 ? labels_check(a, path, row_elems, classes, err) : fits_i32(a, path, node, row_elems, what, err);
    return st;
}

/* Opens `path` for model input `input` (-1: the labels) and checks its rows. */
static pml_status file_open(feed_file *f, const char *path, const pml_plan *plan, int input, pml_err *err)
{
    f->path = path;
    f->node = &plan->nodes[input >= 0 ? plan->input_nodes[input] : plan->labels];
    pml_status st = pml_npy_open(path, &f->arr, err);
    if (!st) st = pml_feed_check_rows(&f->arr, path, plan, input, err);
    f->row_elems = 1;
    for (int k = 1; !st && k < f->arr.rank; k++) f->row_elems *= (size_t)f->arr.shape[k];
    return st;
}

/* Opens a data file and its labels file for the plan's one input and labels, checks
 * each (pml_feed_check_rows) and that they have the same rows N >= 1. */
static pml_status pair_open(const pml_plan *plan, feed_file *x, feed_file *y, const char *xp, const char *yp,
                            pml_err *err)
{
    pml_status st = file_open(x, xp, plan, 0, err);
    if (!st) st = file_open(y, yp, plan, -1, err);
    if (st) return st;
    int64_t nx = x->arr.shape[0], ny = y->arr.shape[0];
    if (nx < 1) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: has no rows", xp);
    if (nx != ny)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: has %lld rows, but the data %s has %lld", yp, (long long)ny,
                           xp, (long long)nx);
    return PML_OK;
}

static pml_status file_create(pml_feed *f, pml_err *err)
{
    const pml_plan *plan = f->plan;
    const pml_plan_config *c = &plan->conf;
    const char *xp = plan_string(plan, c->data_path), *yp = plan_string(plan, c->labels_path);
    if (!xp || !yp) return pml_err_set(err, PML_ERR_INVALID_ARG, "the plan names no data or labels file");
    if (plan->n_inputs != 1 || plan->labels < 0)
        return pml_err_set(
            err, PML_ERR_UNSUPPORTED,
            "%s: a .npy dataset feeds a model of exactly one input and labels (this one has %d input%s%s)", xp,
            plan->n_inputs, plan->n_inputs == 1 ? "" : "s", plan->labels < 0 ? " and no labels" : "");
    pml_status st = pair_open(plan, &f->x, &f->y, xp, yp, err);
    if (st) return st;
    int64_t n = f->x.arr.shape[0];
    f->rows = n;
    f->eval = PML_FEED_EVAL_TRAINING;
    f->eval_rows = n;
    const char *exp = plan_string(plan, c->eval_data_path), *eyp = plan_string(plan, c->eval_labels_path);
    if (exp) {
        if (!eyp) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: held-out data without held-out labels", exp);
        if ((st = pair_open(plan, &f->ex, &f->ey, exp, eyp, err))) return st;
        f->eval = PML_FEED_EVAL_FILES;
        f->eval_rows = f->ex.arr.shape[0];
    } else if (c->holdout > 0) {
        /* At least one row on each side: a fraction that rounds to none is refused. */
        int64_t held = (int64_t)floor(c->holdout * (double)n);
        if (held < 1 || held >= n)
            return pml_err_set(err, PML_ERR_INVALID_ARG,
                               "%s: holdout = %g of its %lld rows is %lld rows: training and evaluation need at least "
                               "one row each",
                               xp, c->holdout, (long long)n, (long long)held);
        f->held = held;
        f->rows = n - held;
        f->eval = PML_FEED_EVAL_HOLDOUT;
        f->eval_rows = held;
    }
    return PML_OK;
}

/* The token feed: input i32[mb, T] gets a window's first T tokens, the labels its last T. */
static pml_status tokens_create(pml_feed *f, pml_err *err)
{
    const pml_plan *plan = f->plan;
    const pml_plan_config *c = &plan->conf;
    const char *path = plan_string(plan, c->data_path), *eval_path = plan_string(plan, c->eval_data_path);
    if (!path) return pml_err_set(err, PML_ERR_INVALID_ARG, "the plan names no token file");
    const pml_plan_node *in = plan->n_inputs == 1 ? &plan->nodes[plan->input_nodes[0]] : NULL,
                        *out = plan->output >= 0 ? &plan->nodes[plan->output] : NULL;
    if (!in || in->dtype != PML_I32 || in->rank != 2 || !out || out->rank != 3 || plan->labels < 0 ||
        plan->nodes[plan->labels].dtype != PML_I32 || plan->nodes[plan->labels].numel != in->numel)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "%s: a token file feeds a model of one input i32[B, T] with labels like it and an output "
                           "[B, T, vocab]",
                           path);
    int64_t T = in->dims[1], vocab = out->dims[2];
    pml_status st = pml_tokens_open(path, vocab, &f->tok, err);
    if (!st && eval_path) st = pml_tokens_open(eval_path, vocab, &f->eval_tok, err);
    if (st) return st;
    uint64_t n = f->tok.n, need = (uint64_t)T + 1;
    f->train_span = (token_span){&f->tok, 0, n};
    f->eval_span = f->train_span;
    f->eval = PML_FEED_EVAL_TRAINING;
    if (eval_path) {
        f->eval_span = (token_span){&f->eval_tok, 0, f->eval_tok.n};
        f->eval = PML_FEED_EVAL_FILES;
    } else if (c->holdout > 0) { /* the file's last tokens, as nanoGPT splits a corpus */
        uint64_t split = n - (uint64_t)ceil(c->holdout * (double)n);
        f->train_span.hi = split;
        f->eval_span = (token_span){&f->tok, split, n};
        f->eval = PML_FEED_EVAL_HOLDOUT;
    }
    const token_span *sp[2] = {&f->train_span, &f->eval_span};
    for (int k = 0; k < 2; k++)
        if (sp[k]->hi - sp[k]->lo < need)
            return pml_err_set(err, PML_ERR_INVALID_ARG,
                               "%s: %s %llu tokens, but one window of T = %lld takes %llu (T + 1)", sp[k]->file->path,
                               k && f->eval == PML_FEED_EVAL_HOLDOUT    ? "holdout leaves evaluation"
                               : !k && f->eval == PML_FEED_EVAL_HOLDOUT ? "holdout leaves training"
                                                                        : "holds",
                               (unsigned long long)(sp[k]->hi - sp[k]->lo), (long long)T, (unsigned long long)need);
    return PML_OK;
}

/* The generator feed. Its sizes were checked against the model's input and labels when
 * the plan was read (plan_read.c: rows of conf.microbatch, of the generator's width). */
static pml_status synth_create(pml_feed *f, pml_err *err)
{
    const pml_plan *plan = f->plan;
    const pml_plan_config *c = &plan->conf;
    if (plan->n_inputs != 1 || plan->labels < 0)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "a data generator feeds a model of exactly one input and labels");
    pml_synth_params sp = {0};
    sp.features = c->features;
    sp.classes = c->classes;
    sp.vocab = c->vocab;
    sp.order = c->order;
    sp.length = c->seq_len;
    sp.seed = (uint64_t)c->data_seed;
    return pml_synth_create(&f->synth, c->data == DATA_CLASSES ? PML_SYNTH_CLASSES : PML_SYNTH_MARKOV, &sp, err);
}

int pml_feed_has_source(const pml_plan *plan) { return plan->conf.data != DATA_NONE; }

pml_status pml_feed_create(const pml_plan *plan, pml_feed **out, pml_err *err)
{
    *out = NULL;
    int64_t data = plan->conf.data;
    if (data != DATA_FILE && data != DATA_CLASSES && data != DATA_MARKOV && data != DATA_TOKENS)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "the train block names no data to train on: give 'data' (or --set data=...)");
    pml_feed *f = calloc(1, sizeof *f);
    if (!f) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    f->plan = plan;
    f->eval = PML_FEED_EVAL_FRESH;
    pml_status st = data == DATA_FILE     ? file_create(f, err)
                    : data == DATA_TOKENS ? tokens_create(f, err)
                                          : synth_create(f, err);
    if (st) {
        pml_feed_destroy(f);
        return st;
    }
    *out = f;
    return PML_OK;
}

void pml_feed_destroy(pml_feed *f)
{
    if (!f) return;
    pml_synth_destroy(f->synth);
    pml_npy_close(&f->x.arr);
    pml_npy_close(&f->y.arr);
    pml_npy_close(&f->ex.arr);
    pml_npy_close(&f->ey.arr);
    pml_tokens_close(&f->tok);
    pml_tokens_close(&f->eval_tok);
    free(f);
}

/* The file row of the training sample at global row r: epoch r / N, position r % N of
 * that epoch's permutation of the N training rows. With a holdout, the training rows
 * are the first N of the fixed split permutation of all rows and the held-out rows its
 * last ones, so no epoch ever draws a held-out row. */
static int64_t train_row(const pml_feed *f, uint64_t seed, uint64_t r)
{
    uint64_t n = (uint64_t)f->rows, k = pml_shuffle_index(seed, r / n, n, r % n);
    return (int64_t)(f->held ? pml_shuffle_index(HOLDOUT_KEY, 0, n + (uint64_t)f->held, k) : k);
}

/* Evaluation sample e: row e % H of the held-out rows, in order. */
static int64_t held_out_row(const pml_feed *f, uint64_t e)
{
    uint64_t k = e % (uint64_t)f->eval_rows;
    return (int64_t)(f->eval == PML_FEED_EVAL_HOLDOUT
                         ? pml_shuffle_index(HOLDOUT_KEY, 0, (uint64_t)(f->rows + f->held), (uint64_t)f->rows + k)
                         : k);
}

static void file_fill(const pml_feed *f, int64_t step, int64_t first, int input, void *dst)
{
    const pml_plan_config *c = &f->plan->conf;
    int files = step >= PML_EVAL_STEP0 && f->eval == PML_FEED_EVAL_FILES;
    const feed_file *ff = input >= 0 ? (files ? &f->ex : &f->x) : (files ? &f->ey : &f->y);
    size_t row_bytes = ff->row_elems * (ff->node->dtype == PML_F32 ? sizeof(float) : sizeof(int32_t));
    /* Evaluation samples count from 0 at PML_EVAL_STEP0; without held-out data they are
     * training rows, drawn as the training steps are. */
    uint64_t e0 = (uint64_t)(first - PML_EVAL_STEP0 * c->batch);
    int held_out = step >= PML_EVAL_STEP0 && f->eval != PML_FEED_EVAL_TRAINING;
    for (int64_t j = 0; j < c->microbatch; j++) {
        int64_t row =
            held_out ? held_out_row(f, e0 + (uint64_t)j) : train_row(f, (uint64_t)c->seed, (uint64_t)(first + j));
        file_row(ff, row, (char *)dst + (size_t)j * row_bytes);
    }
}

/* Window j of a token feed: T + 1 tokens from a start drawn from (seed, sample index),
 * so any step can be filled alone (a resume is bit-exact). */
static void tokens_fill(const pml_feed *f, int64_t step, int64_t first, int input, int32_t *dst)
{
    const pml_plan_config *c = &f->plan->conf;
    const pml_plan_node *in = &f->plan->nodes[f->plan->input_nodes[0]];
    int64_t T = in->dims[1];
    int eval = step >= PML_EVAL_STEP0;
    const token_span *sp = eval ? &f->eval_span : &f->train_span;
    uint64_t starts = sp->hi - sp->lo - (uint64_t)T, stream = eval ? STREAM_EVAL_WINDOW : STREAM_WINDOW;
    uint64_t base = eval ? (uint64_t)(first - PML_EVAL_STEP0 * c->batch) : (uint64_t)first;
    for (int64_t j = 0; j < c->microbatch; j++) {
        uint64_t at = sp->lo + pml_rng_u64((uint64_t)c->seed, stream, base + (uint64_t)j) % starts;
        pml_tokens_copy(sp->file, at + (input >= 0 ? 0 : 1), T, dst + j * T);
    }
}

pml_status pml_feed_fill(void *ctx, int64_t step, int64_t mb, int input, void *dst, pml_err *err)
{
    pml_feed *f = ctx;
    const pml_plan_config *c = &f->plan->conf;
    int64_t first = step * c->batch + mb * c->microbatch;
    if (f->rows) {
        file_fill(f, step, first, input, dst);
        return PML_OK;
    }
    if (f->tok.n) {
        tokens_fill(f, step, first, input, dst);
        return PML_OK;
    }
    /* Each stage's thread fills its own tensors, so the index list is local to the call. */
    uint64_t local_rows[256] = {0},
             *rows = c->microbatch <= 256 ? local_rows : malloc(sizeof(uint64_t) * (size_t)c->microbatch);
    if (!rows) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int64_t j = 0; j < c->microbatch; j++) rows[j] = (uint64_t)(first + j);
    pml_synth_batch(f->synth, rows, (size_t)c->microbatch, input >= 0 ? dst : NULL, input >= 0 ? NULL : dst);
    if (rows != local_rows) free(rows);
    return PML_OK;
}

pml_feed_eval pml_feed_eval_source(const pml_feed *f, int64_t *rows, const char **path)
{
    if (rows) *rows = f->eval_rows;
    if (path)
        *path = f->eval != PML_FEED_EVAL_FILES ? (f->rows ? f->x.path : f->tok.path)
                : f->rows                      ? f->ex.path
                                               : f->eval_tok.path;
    return f->eval;
}

int64_t pml_feed_rows(const pml_feed *f) { return f->rows; }

double pml_feed_best_loss(const pml_feed *f)
{
    return f->synth && pml_synth_kind_of(f->synth) == PML_SYNTH_MARKOV ? pml_synth_entropy(f->synth) : NAN;
}
