/* formats_tool.c — a command-line bridge for interop.py: PML writes files from raw
 * bytes that numpy made, and dumps what it reads as JSON for Python to compare.
 *
 *   formats_tool st-dump FILE                     tensors and metadata as JSON
 *   formats_tool npy-dump FILE                    dtype, shape and data as JSON
 *   formats_tool st-write OUT [-m KEY=VALUE]... (NAME DTYPE DIMS RAWFILE)...
 *   formats_tool npy-write OUT DTYPE DIMS RAWFILE
 *
 * DTYPE is a safetensors name (F32, BF16, ...); DIMS is "2,3", or "-" for a scalar.
 * Data is dumped as hex. Errors print "STATUS: message" and exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/json.h"
#include "formats/npy.h"
#include "formats/safetensors.h"
#include "harness.h"

static int die(pml_status st, const pml_err *err)
{
    fprintf(stderr, "%s: %s\n", pml_status_name(st), err->msg);
    return 1;
}

static void put_hex(pml_json_buf *b, const void *data, size_t n)
{
    const unsigned char *p = data;
    pml_json_buf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) pml_json_buf_printf(b, "%02x", p[i]);
    pml_json_buf_puts(b, "\"");
}

static void put_shape(pml_json_buf *b, const int64_t *shape, int rank)
{
    pml_json_buf_puts(b, "[");
    for (int i = 0; i < rank; i++) pml_json_buf_printf(b, "%s%lld", i ? "," : "", (long long)shape[i]);
    pml_json_buf_puts(b, "]");
}

static int parse_dims(const char *s, int64_t *shape)
{
    if (strcmp(s, "-") == 0) return 0;
    int rank = 0;
    for (char *end; rank < 8; s = end + 1) {
        shape[rank++] = strtoll(s, &end, 10);
        if (*end != ',') break;
    }
    return rank;
}

static int dtype_of(const char *s)
{
    for (int d = 0; d < PML_DTYPE_COUNT; d++)
        if (strcmp(s, pml_st_dtype_name((pml_dtype)d)) == 0) return d;
    fprintf(stderr, "unknown dtype %s\n", s);
    exit(2);
}

static unsigned char *raw(const char *path, size_t *n)
{
    unsigned char *b = read_bytes(path, n);
    if (!b) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    return b;
}

int main(int argc, char **argv)
{
    pml_err err = {0};
    pml_status st;
    pml_json_buf b = {0};
    if (argc == 3 && strcmp(argv[1], "st-dump") == 0) {
        pml_st_file *f;
        if ((st = pml_st_open(argv[2], &f, &err))) return die(st, &err);
        pml_json_buf_puts(&b, "{\"tensors\":[");
        for (size_t i = 0; i < pml_st_count(f); i++) {
            const pml_st_tensor *t = pml_st_tensor_at(f, i);
            pml_json_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
            pml_json_buf_string(&b, t->name, strlen(t->name));
            pml_json_buf_printf(&b, ",\"dtype\":\"%s\",\"shape\":", pml_st_dtype_name(t->dtype));
            put_shape(&b, t->shape, t->rank);
            pml_json_buf_puts(&b, ",\"hex\":");
            put_hex(&b, t->data, t->nbytes);
            pml_json_buf_puts(&b, "}");
        }
        pml_json_buf_puts(&b, "],\"metadata\":{");
        for (size_t i = 0; i < pml_st_metadata_count(f); i++) {
            const pml_st_meta *m = pml_st_metadata_at(f, i);
            if (i) pml_json_buf_puts(&b, ",");
            pml_json_buf_string(&b, m->key, strlen(m->key));
            pml_json_buf_puts(&b, ":");
            pml_json_buf_string(&b, m->value, strlen(m->value));
        }
        pml_json_buf_puts(&b, "}}");
        pml_st_close(f);
    } else if (argc == 3 && strcmp(argv[1], "npy-dump") == 0) {
        pml_npy_array a;
        if ((st = pml_npy_open(argv[2], &a, &err))) return die(st, &err);
        pml_json_buf_printf(&b, "{\"dtype\":\"%s\",\"shape\":", pml_st_dtype_name(a.dtype));
        put_shape(&b, a.shape, a.rank);
        pml_json_buf_puts(&b, ",\"hex\":");
        put_hex(&b, a.data, a.nbytes);
        pml_json_buf_puts(&b, "}");
        pml_npy_close(&a);
    } else if (argc >= 3 && strcmp(argv[1], "st-write") == 0) {
        pml_st_tensor ts[64] = {0};
        pml_st_meta meta[16] = {0};
        unsigned char *bufs[64];
        size_t n = 0, nm = 0;
        for (int i = 3; i < argc;) {
            if (strcmp(argv[i], "-m") == 0 && i + 1 < argc && nm < 16) {
                char *eq = strchr(argv[i + 1], '=');
                if (!eq) return 2;
                *eq = 0;
                meta[nm].key = argv[i + 1];
                meta[nm++].value = eq + 1;
                i += 2;
            } else if (i + 4 <= argc && n < 64) {
                pml_st_tensor *t = &ts[n];
                memset(t, 0, sizeof *t);
                t->name = argv[i];
                t->dtype = (pml_dtype)dtype_of(argv[i + 1]);
                t->rank = parse_dims(argv[i + 2], t->shape);
                t->data = bufs[n++] = raw(argv[i + 3], &t->nbytes);
                i += 4;
            } else
                return 2;
        }
        st = pml_st_write(argv[2], ts, n, meta, nm, &err);
        for (size_t i = 0; i < n; i++) free(bufs[i]);
        if (st) return die(st, &err);
    } else if (argc == 6 && strcmp(argv[1], "npy-write") == 0) {
        int64_t shape[8];
        int rank = parse_dims(argv[4], shape);
        size_t n;
        unsigned char *data = raw(argv[5], &n);
        st = pml_npy_write(argv[2], (pml_dtype)dtype_of(argv[3]), rank, shape, data, &err);
        free(data);
        if (st) return die(st, &err);
    } else {
        fprintf(stderr, "usage: see the comment at the top of formats_tool.c\n");
        return 2;
    }
    if (b.len) printf("%s\n", b.data);
    pml_json_buf_free(&b);
    return b.failed;
}
