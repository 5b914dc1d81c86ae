/* safetensors.c — see safetensors.h. Reading is: map, parse the header with json.h,
 * turn each entry into a pml_st_tensor while checking it, then check that the byte
 * ranges tile the data section. Writing builds the header with pml_json_buf. */
#include "formats/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/atomic_file.h"
#include "formats/json.h"
#include "formats/mapped_file.h"

struct pml_st_file {
    void *map; /* the file mapping, NULL when reading caller memory */
    size_t map_len;
    pml_json_doc *doc; /* owns the names and metadata strings */
    pml_st_tensor *tensors;
    size_t n;
    const pml_st_tensor **by_name;
    pml_st_meta *meta;
    size_t n_meta;
};

static const char *const st_names[PML_DTYPE_COUNT] = {"F32", "BF16", "F16", "I32", "F64", "I64", "U8", "I8"};

const char *pml_st_dtype_name(pml_dtype t) { return (unsigned)t < PML_DTYPE_COUNT ? st_names[t] : NULL; }

size_t pml_st_count(const pml_st_file *f) { return f->n; }
const pml_st_tensor *pml_st_tensor_at(const pml_st_file *f, size_t i) { return i < f->n ? &f->tensors[i] : NULL; }
size_t pml_st_metadata_count(const pml_st_file *f) { return f->n_meta; }
const pml_st_meta *pml_st_metadata_at(const pml_st_file *f, size_t i) { return i < f->n_meta ? &f->meta[i] : NULL; }

static int by_name_cmp(const void *a, const void *b)
{
    return strcmp((*(const pml_st_tensor *const *)a)->name, (*(const pml_st_tensor *const *)b)->name);
}

const pml_st_tensor *pml_st_find(const pml_st_file *f, const char *name)
{
    pml_st_tensor key = {.name = name};
    const pml_st_tensor *kp = &key;
    const pml_st_tensor **hit = f->n ? bsearch(&kp, f->by_name, f->n, sizeof *f->by_name, by_name_cmp) : NULL;
    return hit ? *hit : NULL;
}

static int meta_cmp(const void *a, const void *b)
{
    return strcmp(((const pml_st_meta *)a)->key, ((const pml_st_meta *)b)->key);
}

const char *pml_st_metadata(const pml_st_file *f, const char *key)
{
    pml_st_meta k = {.key = key};
    const pml_st_meta *hit = f->n_meta ? bsearch(&k, f->meta, f->n_meta, sizeof *f->meta, meta_cmp) : NULL;
    return hit ? hit->value : NULL;
}

void pml_st_close(pml_st_file *f)
{
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    pml_json_free(f->doc);
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    free(f);
}

/* ---- reading ------------------------------------------------------------------------ */

/* "[5, 6]" into buf (truncated with "..." when long). */
static const char *fmt_shape(char *buf, size_t cap, const int64_t *shape, int rank)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

static pml_status bad(pml_err *err, const char *name, const char *tensor, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static pml_status bad(pml_err *err, const char *name, const char *tensor, const char *fmt, ...)
{
    char what[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (tensor) return pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%.200s': %s", name, tensor, what);
    return pml_err_set(err, PML_ERR_FORMAT, "%s: %s", name, what);
}

/* Reads one [begin, end] pair or a shape: an array of non-negative int64. */
static pml_status int_array(const pml_json *v, const char *name, const char *tensor, const char *key, int64_t *out,
                            size_t max, size_t *n, pml_err *err)
{
    if (v->kind != PML_JSON_ARRAY)
        return bad(err, name, tensor, "'%s' is a JSON %s, not an array of integers", key, pml_json_kind_name(v->kind));
    if (v->u.arr.n > max) {
        if (max == PML_ST_MAX_RANK)
            return pml_err_set(err, PML_ERR_UNSUPPORTED, "%s: tensor '%.200s': rank %zu exceeds PML's limit of %d",
                               name, tensor, v->u.arr.n, PML_ST_MAX_RANK);
        return bad(err, name, tensor, "'%s' has %zu entries, expected %zu", key, v->u.arr.n, max);
    }
    for (size_t i = 0; i < v->u.arr.n; i++) {
        const pml_json *x = &v->u.arr.items[i];
        if (x->kind != PML_JSON_INT)
            return bad(err, name, tensor, "'%s' entry %zu is a JSON %s, not an integer", key, i,
                       pml_json_kind_name(x->kind));
        if (x->u.i < 0) return bad(err, name, tensor, "'%s' entry %zu is negative (%lld)", key, i, (long long)x->u.i);
        out[i] = x->u.i;
    }
    *n = v->u.arr.n;
    return PML_OK;
}

/* Checks one header entry and fills t; begin/end are the data_offsets. */
static pml_status read_entry(const pml_json *key, const pml_json *v, const char *name, pml_st_tensor *t,
                             uint64_t data_size, int64_t *begin, int64_t *end, pml_err *err)
{
    const char *tn = key->u.str.s;
    if (key->u.str.len == 0) return bad(err, name, NULL, "a tensor has an empty name");
    if (strlen(tn) != key->u.str.len) return bad(err, name, tn, "the name contains a NUL character");
    if (v->kind != PML_JSON_OBJECT)
        return bad(err, name, tn, "the entry is a JSON %s, not an object", pml_json_kind_name(v->kind));
    static const char *const keys[] = {"dtype", "shape", "data_offsets"};
    for (size_t i = 0; i < v->u.obj.n; i++) {
        const char *k = v->u.obj.keys[i].u.str.s;
        if (strcmp(k, keys[0]) && strcmp(k, keys[1]) && strcmp(k, keys[2]))
            return bad(err, name, tn, "unknown key '%.100s' (an entry has dtype, shape and data_offsets)", k);
    }
    for (size_t i = 0; i < 3; i++)
        if (!pml_json_get(v, keys[i])) return bad(err, name, tn, "missing '%s'", keys[i]);

    const pml_json *dt = pml_json_get(v, "dtype");
    if (dt->kind != PML_JSON_STRING)
        return bad(err, name, tn, "'dtype' is a JSON %s, not a string", pml_json_kind_name(dt->kind));
    int found = -1;
    for (int i = 0; i < PML_DTYPE_COUNT; i++)
        if (strcmp(dt->u.str.s, st_names[i]) == 0) found = i;
    if (found < 0)
        return bad(err, name, tn, "unknown dtype '%.40s' (PML reads F32, BF16, F16, I32, F64, I64, U8)", dt->u.str.s);
    t->name = tn;
    t->dtype = (pml_dtype)found;

    size_t rank, two;
    int64_t offs[2];
    pml_status st = int_array(pml_json_get(v, "shape"), name, tn, "shape", t->shape, PML_ST_MAX_RANK, &rank, err);
    if (st) return st;
    t->rank = (int)rank;
    if ((st = int_array(pml_json_get(v, "data_offsets"), name, tn, "data_offsets", offs, 2, &two, err))) return st;
    if (two != 2) return bad(err, name, tn, "'data_offsets' has %zu entries, expected 2", two);
    if (offs[1] < offs[0])
        return bad(err, name, tn, "data_offsets [%lld, %lld] end before they begin", (long long)offs[0],
                   (long long)offs[1]);
    if ((uint64_t)offs[1] > data_size)
        return bad(err, name, tn, "data_offsets [%lld, %lld] reach past the end of the data section (%llu bytes)",
                   (long long)offs[0], (long long)offs[1], (unsigned long long)data_size);

    char sh[200];
    uint64_t need = pml_dtype_size(t->dtype);
    for (size_t i = 0; i < rank; i++)
        if (__builtin_mul_overflow(need, (uint64_t)t->shape[i], &need))
            return bad(err, name, tn, "%s %s has more bytes than a 64-bit size can count", st_names[found],
                       fmt_shape(sh, sizeof sh, t->shape, t->rank));
    uint64_t have = (uint64_t)(offs[1] - offs[0]);
    if (need != have)
        return bad(err, name, tn, "data_offsets [%lld, %lld] hold %llu bytes but %s %s needs %llu", (long long)offs[0],
                   (long long)offs[1], (unsigned long long)have, st_names[found],
                   fmt_shape(sh, sizeof sh, t->shape, t->rank), (unsigned long long)need);
    t->nbytes = (size_t)need;
    *begin = offs[0];
    *end = offs[1];
    return PML_OK;
}

static pml_status read_metadata(pml_st_file *f, const pml_json *v, const char *name, pml_err *err)
{
    if (v->kind != PML_JSON_OBJECT)
        return bad(err, name, NULL, "'__metadata__' is a JSON %s, not an object of strings",
                   pml_json_kind_name(v->kind));
    f->meta = calloc(v->u.obj.n ? v->u.obj.n : 1, sizeof *f->meta);
    if (!f->meta) return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < v->u.obj.n; i++) {
        const pml_json *k = &v->u.obj.keys[i], *x = &v->u.obj.values[i];
        if (x->kind != PML_JSON_STRING)
            return bad(err, name, NULL, "metadata '%.100s' is a JSON %s; metadata values must be strings", k->u.str.s,
                       pml_json_kind_name(x->kind));
        if (strlen(k->u.str.s) != k->u.str.len || strlen(x->u.str.s) != x->u.str.len)
            return bad(err, name, NULL, "metadata '%.100s' contains a NUL character", k->u.str.s);
        f->meta[i].key = k->u.str.s;
        f->meta[i].value = x->u.str.s;
    }
    f->n_meta = v->u.obj.n;
    qsort(f->meta, f->n_meta, sizeof *f->meta, meta_cmp);
    return PML_OK;
}

typedef struct range {
    int64_t begin, end;
    pml_st_tensor t;
} range;

static int range_cmp(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name);
}

/* The ranges sorted by begin must cover [0, data_size) exactly once. */
static pml_status check_tiling(const range *r, size_t n, uint64_t data_size, const char *name, pml_err *err)
{
    int64_t cursor = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].begin > cursor)
            return bad(err, name, r[i].t.name,
                       "data_offsets [%lld, %lld] leave bytes [%lld, %lld) of the data section "
                       "unused (a gap)",
                       (long long)r[i].begin, (long long)r[i].end, (long long)cursor, (long long)r[i].begin);
        if (r[i].begin < cursor)
            return bad(err, name, r[i].t.name, "data_offsets [%lld, %lld] overlap tensor '%.200s' [%lld, %lld]",
                       (long long)r[i].begin, (long long)r[i].end, r[i - 1].t.name, (long long)r[i - 1].begin,
                       (long long)r[i - 1].end);
        cursor = r[i].end;
    }
    if ((uint64_t)cursor != data_size)
        return bad(err, name, NULL, "bytes [%lld, %llu) at the end of the data section belong to no tensor",
                   (long long)cursor, (unsigned long long)data_size);
    return PML_OK;
}

static pml_status parse(pml_st_file *f, const unsigned char *b, size_t len, const char *name, pml_err *err)
{
    if (len < 8)
        return bad(err, name, NULL,
                   "file of %zu bytes is too short to be safetensors (an 8-byte header length "
                   "comes first)",
                   len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    if (hlen > PML_ST_MAX_HEADER)
        return bad(err, name, NULL, "header length %llu exceeds the limit of %llu bytes", (unsigned long long)hlen,
                   (unsigned long long)PML_ST_MAX_HEADER);
    if (hlen > len - 8)
        return bad(err, name, NULL, "header length %llu exceeds the %zu bytes that follow it", (unsigned long long)hlen,
                   len - 8);
    pml_status st = pml_json_parse((const char *)b + 8, (size_t)hlen, name, 8, &f->doc, err);
    if (st) return st;
    const pml_json *root = pml_json_root(f->doc);
    if (root->kind != PML_JSON_OBJECT)
        return bad(err, name, NULL, "the header is a JSON %s, not an object", pml_json_kind_name(root->kind));

    const unsigned char *data = b + 8 + hlen;
    uint64_t data_size = len - 8 - hlen;
    range *r = calloc(root->u.obj.n ? root->u.obj.n : 1, sizeof *r);
    if (!r) return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory", name);
    size_t n = 0;
    for (size_t i = 0; i < root->u.obj.n && !st; i++) {
        const pml_json *k = &root->u.obj.keys[i], *v = &root->u.obj.values[i];
        if (strcmp(k->u.str.s, "__metadata__") == 0 && k->u.str.len == 12)
            st = read_metadata(f, v, name, err);
        else if (!(st = read_entry(k, v, name, &r[n].t, data_size, &r[n].begin, &r[n].end, err)))
            n++;
    }
    if (!st) {
        qsort(r, n, sizeof *r, range_cmp);
        st = check_tiling(r, n, data_size, name, err);
    }
    if (!st) {
        f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
        f->by_name = calloc(n ? n : 1, sizeof *f->by_name);
        if (!f->tensors || !f->by_name) st = pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory", name);
    }
    if (!st) {
        for (size_t i = 0; i < n; i++) {
            f->tensors[i] = r[i].t;
            f->tensors[i].data = data + r[i].begin;
            f->by_name[i] = &f->tensors[i];
        }
        f->n = n;
        qsort(f->by_name, n, sizeof *f->by_name, by_name_cmp);
    }
    free(r);
    return st;
}

pml_status pml_st_open_memory(const void *bytes, size_t len, const char *name, pml_st_file **out, pml_err *err)
{
    *out = NULL;
    if (!name) name = "<memory>";
    if (!bytes && len) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: NULL buffer", name);
    pml_st_file *f = calloc(1, sizeof *f);
    if (!f) return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory", name);
    pml_status st = parse(f, bytes, len, name, err);
    if (st) {
        pml_st_close(f);
        return st;
    }
    *out = f;
    return PML_OK;
}

pml_status pml_st_open(const char *path, pml_st_file **out, pml_err *err)
{
    *out = NULL;
    pml_mapped_file m;
    pml_status st = pml_map_file(path, &m, err);
    if (st) return st;
    static const unsigned char none[8];
    st = pml_st_open_memory(m.data ? m.data : none, m.len, path, out, err);
    if (st) {
        pml_unmap_file(&m);
        return st;
    }
    (*out)->map = m.data;
    (*out)->map_len = m.len;
    return PML_OK;
}

/* ---- writing ------------------------------------------------------------------------ */

static int ptr_name_cmp(const void *a, const void *b) { return by_name_cmp(a, b); }

static int meta_ptr_cmp(const void *a, const void *b)
{
    return strcmp((*(const pml_st_meta *const *)a)->key, (*(const pml_st_meta *const *)b)->key);
}

static pml_status check_input(const char *path, const pml_st_tensor *t, pml_err *err)
{
    if (!t->name || !*t->name) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: a tensor has an empty name", path);
    if (!pml_json_utf8_valid(t->name, strlen(t->name)) || strcmp(t->name, "__metadata__") == 0)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: tensor name '%.200s' is not valid UTF-8 or is reserved", path,
                           t->name);
    if ((unsigned)t->dtype >= PML_DTYPE_COUNT || t->rank < 0 || t->rank > PML_ST_MAX_RANK)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: tensor '%.200s': bad dtype %d or rank %d", path, t->name,
                           (int)t->dtype, t->rank);
    uint64_t need = pml_dtype_size(t->dtype);
    for (int i = 0; i < t->rank; i++)
        if (t->shape[i] < 0 || __builtin_mul_overflow(need, (uint64_t)t->shape[i], &need))
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: tensor '%.200s': dimension %d is %lld", path, t->name, i,
                               (long long)t->shape[i]);
    if (need != t->nbytes || (need && !t->data))
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "%s: tensor '%.200s': nbytes is %zu but %s of that shape needs "
                           "%llu (or data is NULL)",
                           path, t->name, t->nbytes, st_names[t->dtype], (unsigned long long)need);
    return PML_OK;
}

/* Builds the padded header for tensors in `order`; sets b->failed on overflow. */
static void build_header(pml_json_buf *b, const pml_st_tensor *const *order, size_t n, const pml_st_meta *const *mo,
                         size_t n_meta)
{
    pml_json_buf_puts(b, "{");
    if (n_meta) {
        pml_json_buf_puts(b, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i) pml_json_buf_puts(b, ",");
            pml_json_buf_string(b, mo[i]->key, strlen(mo[i]->key));
            pml_json_buf_puts(b, ":");
            pml_json_buf_string(b, mo[i]->value, strlen(mo[i]->value));
        }
        pml_json_buf_puts(b, "}");
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const pml_st_tensor *t = order[i];
        if (i || n_meta) pml_json_buf_puts(b, ",");
        pml_json_buf_string(b, t->name, strlen(t->name));
        pml_json_buf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", st_names[t->dtype]);
        for (int d = 0; d < t->rank; d++) pml_json_buf_printf(b, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        uint64_t end;
        if (__builtin_add_overflow(offset, (uint64_t)t->nbytes, &end) || end > INT64_MAX) b->failed = 1;
        pml_json_buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset, (unsigned long long)end);
        offset = end;
    }
    pml_json_buf_puts(b, "}");
    while (!b->failed && b->len % 8) pml_json_buf_puts(b, " ");
}

pml_status pml_st_write(const char *path, const pml_st_tensor *tensors, size_t n, const pml_st_meta *meta,
                        size_t n_meta, pml_err *err)
{
    if (!path || (n && !tensors) || (n_meta && !meta))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "safetensors write: NULL path, tensors or metadata");
    pml_status st = PML_OK;
    const pml_st_tensor **order = malloc((n ? n : 1) * sizeof *order);
    const pml_st_meta **mo = malloc((n_meta ? n_meta : 1) * sizeof *mo);
    pml_json_buf b = {0};
    if (!order || !mo) st = pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n && !st; i++) {
        order[i] = &tensors[i];
        st = check_input(path, &tensors[i], err);
    }
    for (size_t i = 0; i < n_meta && !st; i++) {
        mo[i] = &meta[i];
        if (!meta[i].key || !meta[i].value || !pml_json_utf8_valid(meta[i].key, strlen(meta[i].key)) ||
            !pml_json_utf8_valid(meta[i].value, strlen(meta[i].value)))
            st = pml_err_set(err, PML_ERR_INVALID_ARG, "%s: metadata %zu is NULL or not valid UTF-8", path, i);
    }
    if (!st) {
        qsort(order, n, sizeof *order, ptr_name_cmp);
        qsort(mo, n_meta, sizeof *mo, meta_ptr_cmp);
        for (size_t i = 1; i < n && !st; i++)
            if (strcmp(order[i - 1]->name, order[i]->name) == 0)
                st = pml_err_set(err, PML_ERR_INVALID_ARG, "%s: tensor name '%.200s' is given twice", path,
                                 order[i]->name);
        for (size_t i = 1; i < n_meta && !st; i++)
            if (strcmp(mo[i - 1]->key, mo[i]->key) == 0)
                st =
                    pml_err_set(err, PML_ERR_INVALID_ARG, "%s: metadata key '%.200s' is given twice", path, mo[i]->key);
    }
    if (!st) {
        build_header(&b, order, n, mo, n_meta);
        if (b.failed)
            st = pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory (or sizes overflow) building the header", path);
        else if (b.len > PML_ST_MAX_HEADER)
            st = pml_err_set(err, PML_ERR_INVALID_ARG, "%s: the header would be %zu bytes, over the limit of %llu",
                             path, b.len, (unsigned long long)PML_ST_MAX_HEADER);
    }
    pml_atomic_file af;
    if (!st && !(st = pml_atomic_open(&af, path, err))) {
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)b.len >> (8 * i));
        st = pml_atomic_write(&af, len8, 8, err);
        if (!st) st = pml_atomic_write(&af, b.data, b.len, err);
        for (size_t i = 0; i < n && !st; i++) st = pml_atomic_write(&af, order[i]->data, order[i]->nbytes, err);
        if (st)
            pml_atomic_abort(&af);
        else
            st = pml_atomic_commit(&af, err);
    }
    pml_json_buf_free(&b);
    free(order);
    free(mo);
    return st;
}
