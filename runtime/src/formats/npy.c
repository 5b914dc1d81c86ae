/* npy.c — see npy.h. The header dict is parsed by a tiny scanner that accepts only what
 * numpy's own writer produces (plus Python 2's "3L" integers): quoted strings without
 * escapes, True/False, and tuples of non-negative integers. */
#include "formats/npy.h"

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
#include "formats/mapped_file.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

static const struct {
    const char *descr;
    pml_dtype dtype;
} descrs[] = {{"<f4", PML_F32}, {"<f8", PML_F64}, {"<i4", PML_I32}, {"<i8", PML_I64}, {"|u1", PML_U8}, {"<u1", PML_U8}};

typedef struct hparse {
    const unsigned char *s; /* the whole file */
    size_t pos, end;        /* the header dict is s[pos..end) */
    const char *name;
    pml_err *err;
} hparse;

static pml_status hfail(hparse *h, pml_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static pml_status hfail(hparse *h, pml_status code, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (code == PML_ERR_FORMAT) return pml_err_set(h->err, code, "%s: header byte %zu: %s", h->name, h->pos, what);
    return pml_err_set(h->err, code, "%s: %s", h->name, what);
}

static void hws(hparse *h)
{
    while (h->pos < h->end && (h->s[h->pos] == ' ' || h->s[h->pos] == '\t' || h->s[h->pos] == '\n')) h->pos++;
}

/* Consumes `c` after optional spaces, or fails naming what was expected. */
static pml_status hexpect(hparse *h, char c, const char *what)
{
    hws(h);
    if (h->pos < h->end && h->s[h->pos] == (unsigned char)c) {
        h->pos++;
        return PML_OK;
    }
    return hfail(h, PML_ERR_FORMAT, "malformed header dict: expected %s", what);
}

static int hpeek(hparse *h, char c)
{
    hws(h);
    return h->pos < h->end && h->s[h->pos] == (unsigned char)c;
}

static pml_status hstring(hparse *h, char *out, size_t cap)
{
    hws(h);
    if (h->pos >= h->end || (h->s[h->pos] != '\'' && h->s[h->pos] != '"'))
        return hfail(h, PML_ERR_FORMAT, "malformed header dict: expected a quoted string");
    unsigned char q = h->s[h->pos++];
    size_t n = 0;
    while (h->pos < h->end && h->s[h->pos] != q) {
        unsigned char c = h->s[h->pos];
        if (c < 0x20 || c > 0x7E || c == '\\' || n + 1 >= cap)
            return hfail(h, PML_ERR_FORMAT, "malformed header dict: unexpected string contents");
        out[n++] = (char)c;
        h->pos++;
    }
    if (h->pos >= h->end) return hfail(h, PML_ERR_FORMAT, "malformed header dict: unterminated string");
    h->pos++;
    out[n] = 0;
    return PML_OK;
}

static int hword(hparse *h, const char *w)
{
    size_t n = strlen(w);
    hws(h);
    if (h->end - h->pos >= n && memcmp(h->s + h->pos, w, n) == 0) {
        h->pos += n;
        return 1;
    }
    return 0;
}

static pml_status hint(hparse *h, int64_t *out)
{
    hws(h);
    if (h->pos >= h->end || h->s[h->pos] < '0' || h->s[h->pos] > '9')
        return hfail(h, PML_ERR_FORMAT, "malformed shape: expected a non-negative integer");
    if (h->s[h->pos] == '0' && h->pos + 1 < h->end && h->s[h->pos + 1] >= '0' && h->s[h->pos + 1] <= '9')
        return hfail(h, PML_ERR_FORMAT, "malformed shape: integer with a leading zero");
    int64_t v = 0;
    while (h->pos < h->end && h->s[h->pos] >= '0' && h->s[h->pos] <= '9') {
        int d = h->s[h->pos++] - '0';
        if (v > (INT64_MAX - d) / 10) return hfail(h, PML_ERR_FORMAT, "shape dimension does not fit in 64 bits");
        v = v * 10 + d;
    }
    if (h->pos < h->end && h->s[h->pos] == 'L') /* Python 2 long literals */
        h->pos++;
    *out = v;
    return PML_OK;
}

/* "(", ")" | "(" int "," ")" | "(" int ("," int)+ [","] ")" */
static pml_status hshape(hparse *h, pml_npy_array *a)
{
    pml_status st;
    if ((st = hexpect(h, '(', "'(' starting the shape tuple"))) return st;
    a->rank = 0;
    while (!hpeek(h, ')')) {
        int64_t d = 0;
        if (a->rank == PML_NPY_MAX_RANK)
            return hfail(h, PML_ERR_UNSUPPORTED, "arrays of more than %d dimensions are not supported",
                         PML_NPY_MAX_RANK);
        if ((st = hint(h, &d))) return st;
        a->shape[a->rank++] = d;
        if (hpeek(h, ','))
            h->pos++;
        else if (!hpeek(h, ')'))
            return hfail(h, PML_ERR_FORMAT, "malformed shape: expected ',' or ')'");
        else if (a->rank == 1)
            return hfail(h, PML_ERR_FORMAT, "malformed shape: '(n)' is not a tuple; numpy writes '(n,)'");
    }
    h->pos++;
    return PML_OK;
}

static pml_status parse_dict(hparse *h, pml_npy_array *a)
{
    pml_status st;
    int seen[3] = {0, 0, 0}, fortran = 0;
    char descr[64] = "";
    if ((st = hexpect(h, '{', "'{'"))) return st;
    while (!hpeek(h, '}')) {
        char key[32];
        if ((st = hstring(h, key, sizeof key)) || (st = hexpect(h, ':', "':' after a key"))) return st;
        static const char *const keys[] = {"descr", "fortran_order", "shape"};
        int k = 0;
        while (k < 3 && strcmp(key, keys[k])) k++;
        if (k == 3)
            return hfail(h, PML_ERR_FORMAT, "unexpected key '%s' (numpy writes descr, fortran_order, shape)", key);
        if (seen[k]++) return hfail(h, PML_ERR_FORMAT, "key '%s' appears twice", key);
        if (k == 0) {
            if (hpeek(h, '[')) return hfail(h, PML_ERR_UNSUPPORTED, "structured arrays are not supported");
            st = hstring(h, descr, sizeof descr);
        } else if (k == 1) {
            if (hword(h, "True"))
                fortran = 1;
            else if (!hword(h, "False"))
                st = hfail(h, PML_ERR_FORMAT, "malformed header dict: fortran_order must be True or False");
        } else
            st = hshape(h, a);
        if (st) return st;
        if (hpeek(h, ','))
            h->pos++;
        else if (!hpeek(h, '}'))
            return hfail(h, PML_ERR_FORMAT, "malformed header dict: expected ',' or '}'");
    }
    h->pos++;
    hws(h);
    if (h->pos != h->end) return hfail(h, PML_ERR_FORMAT, "unexpected text after the header dict");
    for (int k = 0; k < 3; k++)
        if (!seen[k])
            return hfail(h, PML_ERR_FORMAT, "the header has no '%s'",
                         k == 0   ? "descr"
                         : k == 1 ? "fortran_order"
                                  : "shape");
    size_t i = 0, nd = sizeof descrs / sizeof *descrs;
    while (i < nd && strcmp(descr, descrs[i].descr)) i++;
    if (i == nd && descr[0] == '>')
        return hfail(h, PML_ERR_UNSUPPORTED,
                     "big-endian arrays ('%s') are not supported; save with "
                     "arr.astype(arr.dtype.newbyteorder('<'))",
                     descr);
    if (i == nd)
        return hfail(h, PML_ERR_UNSUPPORTED, "dtype '%s' is not supported (PML reads <f4, <f8, <i4, <i8, |u1)", descr);
    if (fortran)
        return hfail(h, PML_ERR_UNSUPPORTED, "Fortran-order arrays are not supported; save with np.ascontiguousarray");
    a->dtype = descrs[i].dtype;
    return PML_OK;
}

void pml_npy_close(pml_npy_array *arr)
{
    if (!arr) return;
    if (arr->map_) munmap(arr->map_, arr->map_len_);
    free(arr->copy_);
    memset(arr, 0, sizeof *arr);
}

pml_status pml_npy_open_memory(const void *bytes, size_t len, const char *name, pml_npy_array *arr, pml_err *err)
{
    memset(arr, 0, sizeof *arr);
    if (!name) name = "<memory>";
    if (!bytes && len) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: NULL buffer", name);
    const unsigned char *b = bytes;
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return pml_err_set(err, PML_ERR_FORMAT, "%s: not a .npy file (it does not start with \\x93NUMPY)", name);
    size_t prefix, hlen;
    if (b[6] == 1 && b[7] == 0) {
        prefix = 10;
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
    } else if ((b[6] == 2 || b[6] == 3) && b[7] == 0) {
        if (len < 12) return pml_err_set(err, PML_ERR_FORMAT, "%s: file ends inside the header length", name);
        prefix = 12;
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    } else
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "%s: .npy version %d.%d is not supported (PML reads 1.0, 2.0, 3.0)", name, b[6], b[7]);
    if (hlen > len - prefix)
        return pml_err_set(err, PML_ERR_FORMAT, "%s: header length %zu exceeds the %zu bytes that follow it", name,
                           hlen, len - prefix);
    hparse h = {.s = b, .pos = prefix, .end = prefix + hlen, .name = name, .err = err};
    pml_status st = parse_dict(&h, arr);
    if (st) {
        memset(arr, 0, sizeof *arr);
        return st;
    }
    size_t item = pml_dtype_size(arr->dtype), need = item;
    for (int i = 0; i < arr->rank; i++)
        if (__builtin_mul_overflow(need, (size_t)arr->shape[i], &need)) {
            memset(arr, 0, sizeof *arr);
            return pml_err_set(err, PML_ERR_FORMAT, "%s: the shape has more bytes than a 64-bit size can count", name);
        }
    size_t have = len - h.end;
    if (have != need) {
        memset(arr, 0, sizeof *arr);
        return pml_err_set(err, PML_ERR_FORMAT, "%s: the data is %zu bytes but the shape needs %zu (%s)", name, have,
                           need, have < need ? "truncated" : "trailing bytes");
    }
    const unsigned char *data = b + h.end;
    arr->nbytes = need;
    arr->data = data;
    if ((uintptr_t)data % item) { /* numpy aligns to 64; older or odd writers may not */
        arr->copy_ = malloc(need ? need : 1);
        if (!arr->copy_) {
            memset(arr, 0, sizeof *arr);
            return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory copying %zu bytes", name, need);
        }
        memcpy(arr->copy_, data, need);
        arr->data = arr->copy_;
    }
    return PML_OK;
}

pml_status pml_npy_open(const char *path, pml_npy_array *arr, pml_err *err)
{
    memset(arr, 0, sizeof *arr);
    pml_mapped_file m;
    pml_status st = pml_map_file(path, &m, err);
    if (st) return st;
    st = pml_npy_open_memory(m.data ? m.data : "", m.len, path, arr, err);
    if (st || arr->copy_) { /* a copy needs the mapping no longer */
        pml_unmap_file(&m);
        return st;
    }
    arr->map_ = m.data;
    arr->map_len_ = m.len;
    return PML_OK;
}

pml_status pml_npy_write(const char *path, pml_dtype dtype, int rank, const int64_t *shape, const void *data,
                         pml_err *err)
{
    const char *descr = NULL;
    for (size_t i = 0; i < sizeof descrs / sizeof *descrs && !descr; i++)
        if (descrs[i].dtype == dtype) descr = descrs[i].descr;
    if (!path) return pml_err_set(err, PML_ERR_INVALID_ARG, "npy write: NULL path");
    if (!descr)
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "%s: .npy files of %s are not supported (PML writes f32, f64, "
                           "i32, i64, u8)",
                           path, pml_dtype_name(dtype));
    if (rank < 0 || rank > PML_NPY_MAX_RANK || (rank && !shape))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: rank %d is not 0..%d", path, rank, PML_NPY_MAX_RANK);
    size_t need = pml_dtype_size(dtype);
    /* numpy's layout: dict, spare room for the first dim to grow to 21 digits, padding
     * so that magic + length + header is a multiple of 64, and a newline. */
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(need, (size_t)shape[i], &need))
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: dimension %d is %lld", path, i, (long long)shape[i]);
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%s%lld%s", i ? ", " : "", (long long)shape[i],
                      rank == 1 ? "," : "");
    }
    if (need && !data) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: NULL data", path);
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
    if (rank) {
        int digits = snprintf(NULL, 0, "%lld", (long long)shape[0]);
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%*s", 21 - digits, "");
    }
    int pad = 64 - (10 + n + 1) % 64;
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%*s\n", pad, "");
    unsigned char prefix[10] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xFF), (unsigned char)(n >> 8)};

    pml_atomic_file af;
    pml_status st = pml_atomic_open(&af, path, err);
    if (st) return st;
    if ((st = pml_atomic_write(&af, prefix, sizeof prefix, err)) || (st = pml_atomic_write(&af, hdr, (size_t)n, err)) ||
        (st = pml_atomic_write(&af, data, need, err))) {
        pml_atomic_abort(&af);
        return st;
    }
    return pml_atomic_commit(&af, err);
}
