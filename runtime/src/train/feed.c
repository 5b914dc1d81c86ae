/* feed.c — see feed.h. A generator feed asks data/synth.h for rows; a file feed maps
 * two .npy files and copies (converting) the rows the shuffle picks. */
#include "feed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shuffle.h"
#include "data/synth.h"
#include "formats/npy.h"

enum { DATA_NONE, DATA_FILE, DATA_CLASSES, DATA_MARKOV };

/* One .npy file bound to one model node. */
typedef struct feed_file {
    const char *path;
    pml_npy_array arr;
    const pml_plan_node *node;
    size_t row_elems; /* elements per row, in the file and in the node alike */
} feed_file;

struct pml_feed {
    const pml_plan *plan;
    pml_synth *synth;
    feed_file x, y; /* the inputs and the labels of a file feed */
    int64_t rows;   /* N: rows per epoch of a file feed, 0 for a generator */
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

/* Opens `path` for `node` (what: "input 'x'" or "labels") and checks dtype and row shape. */
static pml_status file_open(feed_file *f, const char *path, const pml_plan_node *node, const char *what, pml_err *err)
{
    f->path = path;
    f->node = node;
    pml_status st = pml_npy_open(path, &f->arr, err);
    if (st) return st;
    const pml_npy_array *a = &f->arr;
    if (!pml_feed_converts(a->dtype, (pml_dtype)node->dtype))
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "%s: holds %s, which cannot feed the model's %s of type %s", path,
                           pml_dtype_name(a->dtype), what, pml_dtype_name((pml_dtype)node->dtype));
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
    f->row_elems = 1;
    for (int k = 1; k < a->rank; k++) f->row_elems *= (size_t)a->shape[k];
    /* i64 into i32: every value must fit, checked once here rather than per step. */
    if (a->dtype == PML_I64 && node->dtype == PML_I32) {
        const int64_t *v = a->data;
        size_t n = a->nbytes / sizeof *v;
        for (size_t i = 0; i < n; i++)
            if (v[i] < INT32_MIN || v[i] > INT32_MAX)
                return pml_err_set(err, PML_ERR_INVALID_ARG,
                                   "%s: element %zu (row %zu) is %lld, which does not fit the model's i32 %s", path, i,
                                   f->row_elems ? i / f->row_elems : 0, (long long)v[i], what);
    }
    return PML_OK;
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

static pml_status file_create(pml_feed *f, pml_err *err)
{
    const pml_plan *plan = f->plan;
    const char *xp = plan_string(plan, plan->conf.data_path), *yp = plan_string(plan, plan->conf.labels_path);
    if (!xp || !yp) return pml_err_set(err, PML_ERR_INVALID_ARG, "the plan names no data or labels file");
    if (plan->n_inputs != 1 || plan->labels < 0)
        return pml_err_set(
            err, PML_ERR_UNSUPPORTED,
            "%s: a .npy dataset feeds a model of exactly one input and labels (this one has %d input%s%s)", xp,
            plan->n_inputs, plan->n_inputs == 1 ? "" : "s", plan->labels < 0 ? " and no labels" : "");
    char what[160];
    snprintf(what, sizeof what, "input '%s'", plan->input_names[0]);
    pml_status st = file_open(&f->x, xp, &plan->nodes[plan->input_nodes[0]], what, err);
    if (!st) st = file_open(&f->y, yp, &plan->nodes[plan->labels], "labels", err);
    if (st) return st;
    int64_t nx = f->x.arr.shape[0], ny = f->y.arr.shape[0];
    if (nx < 1) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: has no rows", xp);
    if (nx != ny)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: has %lld rows, but the data %s has %lld", yp, (long long)ny,
                           xp, (long long)nx);
    f->rows = nx;
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

pml_status pml_feed_create(const pml_plan *plan, pml_feed **out, pml_err *err)
{
    *out = NULL;
    int64_t data = plan->conf.data;
    if (data != DATA_FILE && data != DATA_CLASSES && data != DATA_MARKOV)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "the plan has no data source to train on");
    pml_feed *f = calloc(1, sizeof *f);
    if (!f) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    f->plan = plan;
    pml_status st = data == DATA_FILE ? file_create(f, err) : synth_create(f, err);
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
    free(f);
}

pml_status pml_feed_fill(void *ctx, int64_t step, int64_t mb, int input, void *dst, pml_err *err)
{
    pml_feed *f = ctx;
    const pml_plan_config *c = &f->plan->conf;
    int64_t first = step * c->batch + mb * c->microbatch;
    if (f->rows) {
        /* Global row r: epoch r / N, position r % N of that epoch's permutation. */
        const feed_file *ff = input >= 0 ? &f->x : &f->y;
        size_t row_bytes = ff->row_elems * (ff->node->dtype == PML_F32 ? sizeof(float) : sizeof(int32_t));
        uint64_t n = (uint64_t)f->rows;
        for (int64_t j = 0; j < c->microbatch; j++) {
            uint64_t r = (uint64_t)(first + j);
            uint64_t idx = pml_shuffle_index((uint64_t)c->seed, r / n, n, r % n);
            file_row(ff, (int64_t)idx, (char *)dst + (size_t)j * row_bytes);
        }
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

int64_t pml_feed_rows(const pml_feed *f) { return f->rows; }

double pml_feed_best_loss(const pml_feed *f)
{
    return f->synth && pml_synth_kind_of(f->synth) == PML_SYNTH_MARKOV ? pml_synth_entropy(f->synth) : NAN;
}
