/* json.h — a small strict JSON (RFC 8259) parser and a string-building writer.
 *
 * Why: safetensors headers are JSON written by other programs, so the reader must be
 * strict and bounded. The parser builds a read-only tree; every node, string and array
 * lives in one arena owned by the pml_json_doc and freed by pml_json_free.
 *
 * Strictness: one value and nothing but whitespace around it; strings are valid UTF-8,
 * escapes include \uXXXX with surrogate pairs (lone surrogates are refused) and are
 * decoded to UTF-8; integers (no '.', no exponent) must fit int64 exactly, other
 * numbers become doubles (parsed with strtod: the process must keep the default "C"
 * LC_NUMERIC locale); duplicate object keys are refused. Limits: at most
 * PML_JSON_MAX_VALUES values, nesting depth <= 64,
 * input <= 100 MB. Errors are PML_ERR_FORMAT with "NAME: byte N: what is wrong", N
 * counted from the start of the input plus the caller's `base` (so a header inside a
 * larger file reports file offsets).
 *
 * Thread safety: parsing has no global state; a parsed document may be read from any
 * number of threads. A pml_json_buf belongs to one thread at a time. */
#ifndef PML_FORMATS_JSON_H
#define PML_FORMATS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define PML_JSON_MAX_DEPTH 64
#define PML_JSON_MAX_INPUT ((size_t)100 * 1000 * 1000)
/* At most this many values in one document (about 160 MB of tree). */
#define PML_JSON_MAX_VALUES 4000000

typedef enum pml_json_kind {
    PML_JSON_NULL,
    PML_JSON_BOOL,
    PML_JSON_INT,    /* an integer literal that fits int64: u.i */
    PML_JSON_DOUBLE, /* any other number: u.d */
    PML_JSON_STRING, /* u.str: NUL-terminated UTF-8; len excludes the NUL; may hold \0 */
    PML_JSON_ARRAY,  /* u.arr: items[n] */
    PML_JSON_OBJECT  /* u.obj: keys[n] (STRING nodes) and values[n], in input order */
} pml_json_kind;

typedef struct pml_json pml_json;
struct pml_json {
    pml_json_kind kind;
    size_t offset; /* where the value starts, counted like error offsets (base included) */
    union {
        int b;
        int64_t i;
        double d;
        struct {
            const char *s;
            size_t len;
        } str;
        struct {
            const pml_json *items;
            size_t n;
        } arr;
        struct {
            const pml_json *keys;
            const pml_json *values;
            size_t n;
        } obj;
    } u;
};

typedef struct pml_json_doc pml_json_doc;

/* Parses text[0..len) (it need not be NUL-terminated). On success *out owns the tree;
 * free it with pml_json_free. On failure *out is NULL and err says what and where. */
pml_status pml_json_parse(const char *text, size_t len, const char *name, size_t base, pml_json_doc **out,
                          pml_err *err);
/* The root value of a parsed document; valid until pml_json_free. */
const pml_json *pml_json_root(const pml_json_doc *doc);
/* Frees the document and every node in it. NULL is allowed. */
void pml_json_free(pml_json_doc *doc);

/* Reads the file at `path` (at most max_bytes: larger is PML_ERR_FORMAT) and parses it
 * as pml_json_parse does, naming it by its path; PML_ERR_IO when it cannot be read. */
pml_status pml_json_load(const char *path, size_t max_bytes, pml_json_doc **out, pml_err *err);

/* The value stored under `key` in an object, or NULL when absent (or not an object). */
const pml_json *pml_json_get(const pml_json *obj, const char *key);
/* "null", "boolean", "integer", "number", "string", "array" or "object". */
const char *pml_json_kind_name(pml_json_kind k);
/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int pml_json_utf8_valid(const char *s, size_t len);

/* A growable output buffer. Start with `pml_json_buf b = {0};`; appends never fail
 * loudly: an allocation failure sets `failed` and later appends do nothing, so a writer
 * checks once at the end. The caller owns `data` and frees it with pml_json_buf_free. */
typedef struct pml_json_buf {
    char *data; /* NUL-terminated while !failed */
    size_t len, cap;
    int failed;
} pml_json_buf;

void pml_json_buf_append(pml_json_buf *b, const char *s, size_t n);
void pml_json_buf_puts(pml_json_buf *b, const char *s);
void pml_json_buf_printf(pml_json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s[0..len) as a quoted JSON string: '"', '\\' and control characters are
 * escaped; other bytes (UTF-8) pass through. The caller checks UTF-8 validity first. */
void pml_json_buf_string(pml_json_buf *b, const char *s, size_t len);
void pml_json_buf_free(pml_json_buf *b);
/* Writes the buffer to `path` atomically (atomic_file.h) and frees it, whatever the
 * outcome; a buffer whose appends failed is PML_ERR_NOMEM and writes nothing. */
pml_status pml_json_buf_save(pml_json_buf *b, const char *path, pml_err *err);

#endif
