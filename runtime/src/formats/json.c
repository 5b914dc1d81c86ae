/* json.c — see json.h. A recursive-descent parser over a byte range. Children of an
 * array or object are collected on a scratch stack and copied into the arena when the
 * container closes, so every container's items are one contiguous, final array. */
#include "formats/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/atomic_file.h"
#include "formats/input_file.h"

/* ---- the arena: a list of blocks, freed together -------------------------------- */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

struct pml_json_doc {
    arena_block *blocks;
    pml_json root;
};

static void *arena_alloc(pml_json_doc *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block *b = d->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = d->blocks;
        d->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void pml_json_free(pml_json_doc *doc)
{
    if (!doc) return;
    for (arena_block *b = doc->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(doc);
}

const pml_json *pml_json_root(const pml_json_doc *doc) { return &doc->root; }

/* ---- UTF-8 ------------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0; /* no overlongs */
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* <= U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

int pml_json_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(u + i, len - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- the parser --------------------------------------------------------------------- */

typedef struct parser {
    const unsigned char *s;
    size_t len, pos, base;
    const char *name;
    pml_err *err;
    pml_json_doc *doc;
    pml_json *stack; /* scratch: children of the open containers */
    size_t sp, scap;
    int depth;
    size_t values;   /* parsed so far, against PML_JSON_MAX_VALUES */
} parser;

static pml_status fail(parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static pml_status fail(parser *p, size_t at, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return pml_err_set(p->err, PML_ERR_FORMAT, "%s: byte %zu: %s", p->name, p->base + at, what);
}

/* "unexpected end of input" or "unexpected character 'x'" for the byte at p->pos. */
static pml_status fail_here(parser *p, const char *expected)
{
    if (p->pos >= p->len) return fail(p, p->pos, "expected %s but the input ends", expected);
    unsigned c = p->s[p->pos];
    if (c > 0x20 && c < 0x7F) return fail(p, p->pos, "expected %s but found '%c'", expected, (char)c);
    return fail(p, p->pos, "expected %s but found byte 0x%02X", expected, c);
}

static pml_status nomem(parser *p)
{
    return pml_err_set(p->err, PML_ERR_NOMEM, "%s: out of memory parsing JSON", p->name);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static pml_status push(parser *p, const pml_json *v)
{
    if (p->sp == p->scap) {
        size_t cap = p->scap ? p->scap * 2 : 64;
        pml_json *s = realloc(p->stack, cap * sizeof *s);
        if (!s) return nomem(p);
        p->stack = s;
        p->scap = cap;
    }
    p->stack[p->sp++] = *v;
    return PML_OK;
}

static int hex4(const unsigned char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

static pml_status parse_string(parser *p, pml_json *out)
{
    size_t start = p->pos++; /* the opening quote */
    size_t end = p->pos;     /* find the closing quote to size the output */
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return fail(p, start, "unterminated string");
    char *buf = arena_alloc(p->doc, end - p->pos + 1);
    if (!buf) return nomem(p);
    size_t n = 0;
    while (p->pos < end) {
        const unsigned char *c = p->s + p->pos;
        if (*c < 0x20) return fail(p, p->pos, "control character 0x%02X in a string must be escaped", *c);
        if (*c >= 0x80) {
            size_t k = utf8_seq(c, end - p->pos);
            if (!k) return fail(p, p->pos, "invalid UTF-8 in a string");
            memcpy(buf + n, c, k);
            n += k;
            p->pos += k;
            continue;
        }
        if (*c != '\\') {
            buf[n++] = (char)*c;
            p->pos++;
            continue;
        }
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *e = c[1] ? strchr(from, c[1]) : NULL;
        if (e) {
            buf[n++] = to[e - from];
            p->pos += 2;
            continue;
        }
        uint32_t cp;
        if (c[1] != 'u')
            return fail(p, p->pos, "invalid escape in a string (valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
        if (end - p->pos < 6 || !hex4(c + 2, &cp)) return fail(p, p->pos, "\\u must be followed by four hex digits");
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p, p->pos, "lone low surrogate \\u%04X", (unsigned)cp);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (end - p->pos < 12 || c[6] != '\\' || c[7] != 'u' || !hex4(c + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                return fail(p, p->pos, "high surrogate \\u%04X is not followed by a low surrogate", (unsigned)cp);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p->pos += 6;
        }
        n += utf8_put(buf + n, cp);
        p->pos += 6;
    }
    p->pos = end + 1;
    buf[n] = 0;
    out->kind = PML_JSON_STRING;
    out->u.str.s = buf;
    out->u.str.len = n;
    return PML_OK;
}

static int is_digit(parser *p) { return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9'; }

static pml_status parse_number(parser *p, pml_json *out)
{
    size_t start = p->pos;
    int neg = p->s[p->pos] == '-';
    if (neg) p->pos++;
    if (!is_digit(p)) return fail_here(p, "a digit");
    uint64_t mag = 0;
    int overflow = 0;
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (is_digit(p)) return fail(p, start, "numbers must not have leading zeros");
    } else {
        while (is_digit(p)) {
            unsigned d = p->s[p->pos++] - '0';
            if (mag > (UINT64_MAX - d) / 10)
                overflow = 1;
            else
                mag = mag * 10 + d;
        }
    }
    int integer = 1;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integer = 0;
        p->pos++;
        if (!is_digit(p)) return fail_here(p, "a digit after '.'");
        while (is_digit(p)) p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integer = 0;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (!is_digit(p)) return fail_here(p, "a digit in the exponent");
        while (is_digit(p)) p->pos++;
    }
    size_t n = p->pos - start;
    if (integer) {
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (overflow || mag > limit)
            return fail(p, start, "integer %.*s is out of the int64 range", n > 40 ? 40 : (int)n,
                        (const char *)p->s + start);
        out->kind = PML_JSON_INT;
        out->u.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        return PML_OK;
    }
    char tmp[512];
    if (n >= sizeof tmp) return fail(p, start, "number of %zu characters is too long", n);
    memcpy(tmp, p->s + start, n);
    tmp[n] = 0;
    errno = 0;
    double d = strtod(tmp, NULL);
    if (errno == ERANGE && (d > 1.0 || d < -1.0)) return fail(p, start, "number %s is out of the double range", tmp);
    out->kind = PML_JSON_DOUBLE;
    out->u.d = d;
    return PML_OK;
}

static int key_cmp(const void *a, const void *b)
{
    const pml_json *x = *(const pml_json *const *)a, *y = *(const pml_json *const *)b;
    size_t n = x->u.str.len < y->u.str.len ? x->u.str.len : y->u.str.len;
    int c = memcmp(x->u.str.s, y->u.str.s, n);
    if (c) return c;
    return (x->u.str.len > y->u.str.len) - (x->u.str.len < y->u.str.len);
}

/* Refuses a repeated key, naming the later one; sorting keeps this O(n log n). */
static pml_status check_duplicates(parser *p, const pml_json *keys, size_t n)
{
    if (n < 2) return PML_OK;
    const pml_json **idx = malloc(n * sizeof *idx);
    if (!idx) return nomem(p);
    for (size_t i = 0; i < n; i++) idx[i] = &keys[i];
    qsort(idx, n, sizeof *idx, key_cmp);
    pml_status st = PML_OK;
    for (size_t i = 1; i < n && !st; i++) {
        if (key_cmp(&idx[i - 1], &idx[i]) == 0) {
            const pml_json *later = idx[i]->offset > idx[i - 1]->offset ? idx[i] : idx[i - 1];
            st = fail(p, later->offset - p->base, "duplicate object key \"%.*s\"",
                      later->u.str.len > 200 ? 200 : (int)later->u.str.len, later->u.str.s);
        }
    }
    free(idx);
    return st;
}

static pml_status parse_value(parser *p, pml_json *out);

/* Arrays and objects: children go on the scratch stack, then into the arena. */
static pml_status parse_container(parser *p, pml_json *out)
{
    int object = p->s[p->pos] == '{';
    char close = object ? '}' : ']';
    if (++p->depth > PML_JSON_MAX_DEPTH) return fail(p, p->pos, "nesting deeper than %d levels", PML_JSON_MAX_DEPTH);
    p->pos++;
    size_t first = p->sp;
    pml_status st;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            pml_json v;
            skip_ws(p);
            if (object) {
                if (p->pos >= p->len || p->s[p->pos] != '"') return fail_here(p, "a string key");
                v.offset = p->base + p->pos;
                if ((st = parse_string(p, &v)) || (st = push(p, &v))) return st;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') return fail_here(p, "':' after an object key");
                p->pos++;
            }
            if ((st = parse_value(p, &v)) || (st = push(p, &v))) return st;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            return fail_here(p, object ? "',' or '}'" : "',' or ']'");
        }
    }
    size_t count = p->sp - first, n = object ? count / 2 : count;
    pml_json *items = count ? arena_alloc(p->doc, count * sizeof *items) : NULL;
    if (count && !items) return nomem(p);
    if (object) { /* the stack holds key, value, key, value ... */
        for (size_t i = 0; i < n; i++) {
            items[i] = p->stack[first + 2 * i];
            items[n + i] = p->stack[first + 2 * i + 1];
        }
        out->kind = PML_JSON_OBJECT;
        out->u.obj.keys = items;
        out->u.obj.values = items ? items + n : NULL;
        out->u.obj.n = n;
        if ((st = check_duplicates(p, items, n))) return st;
    } else {
        if (count) memcpy(items, p->stack + first, count * sizeof *items);
        out->kind = PML_JSON_ARRAY;
        out->u.arr.items = items;
        out->u.arr.n = n;
    }
    p->sp = first;
    p->depth--;
    return PML_OK;
}

static pml_status parse_value(parser *p, pml_json *out)
{
    /* A value costs about 40 bytes: the count bounds memory whatever the input's shape. */
    if (++p->values > PML_JSON_MAX_VALUES)
        return fail(p, p->pos, "more than %d values", PML_JSON_MAX_VALUES);
    skip_ws(p);
    memset(out, 0, sizeof *out);
    out->offset = p->base + p->pos;
    if (p->pos >= p->len) return fail_here(p, "a value");
    static const struct {
        const char *word;
        pml_json_kind kind;
        int b;
    } words[] = {{"true", PML_JSON_BOOL, 1}, {"false", PML_JSON_BOOL, 0}, {"null", PML_JSON_NULL, 0}};
    unsigned char c = p->s[p->pos];
    switch (c) {
    case '{':
    case '[':
        return parse_container(p, out);
    case '"':
        return parse_string(p, out);
    case 't':
    case 'f':
    case 'n':
        for (size_t i = 0; i < 3; i++) {
            size_t n = strlen(words[i].word);
            if (p->len - p->pos >= n && memcmp(p->s + p->pos, words[i].word, n) == 0) {
                p->pos += n;
                out->kind = words[i].kind;
                out->u.b = words[i].b;
                return PML_OK;
            }
        }
        return fail(p, p->pos, "invalid literal (expected true, false or null)");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, out);
        return fail_here(p, "a value");
    }
}

pml_status pml_json_parse(const char *text, size_t len, const char *name, size_t base, pml_json_doc **out, pml_err *err)
{
    *out = NULL;
    if (!name) name = "JSON";
    if (len > PML_JSON_MAX_INPUT)
        return pml_err_set(err, PML_ERR_FORMAT, "%s: JSON text of %zu bytes exceeds the limit of %zu bytes", name, len,
                           PML_JSON_MAX_INPUT);
    if (len && !text) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: NULL JSON text", name);
    parser p = {.s = (const unsigned char *)text, .len = len, .base = base, .name = name, .err = err};
    p.doc = calloc(1, sizeof *p.doc);
    if (!p.doc) return nomem(&p);
    pml_status st = parse_value(&p, &p.doc->root);
    if (!st) {
        skip_ws(&p);
        if (p.pos < p.len) st = fail_here(&p, "the end of the input after the JSON value");
    }
    free(p.stack);
    if (st) {
        pml_json_free(p.doc);
        return st;
    }
    *out = p.doc;
    return PML_OK;
}

const pml_json *pml_json_get(const pml_json *obj, const char *key)
{
    if (!obj || obj->kind != PML_JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->u.obj.n; i++)
        if (obj->u.obj.keys[i].u.str.len == n && memcmp(obj->u.obj.keys[i].u.str.s, key, n) == 0)
            return &obj->u.obj.values[i];
    return NULL;
}

const char *pml_json_kind_name(pml_json_kind k)
{
    static const char *const names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

/* ---- the writer buffer -------------------------------------------------------------- */

void pml_json_buf_append(pml_json_buf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void pml_json_buf_puts(pml_json_buf *b, const char *s) { pml_json_buf_append(b, s, strlen(s)); }

void pml_json_buf_printf(pml_json_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof tmp)
        pml_json_buf_append(b, tmp, (size_t)n);
    else if (n < 0)
        b->failed = 1;
    else { /* longer than the stack buffer (a long name from the source): on the heap */
        char *big = malloc((size_t)n + 1);
        if (big && vsnprintf(big, (size_t)n + 1, fmt, again) == n)
            pml_json_buf_append(b, big, (size_t)n);
        else
            b->failed = 1;
        free(big);
    }
    va_end(again);
}

void pml_json_buf_string(pml_json_buf *b, const char *s, size_t len)
{
    pml_json_buf_append(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed in runs */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        pml_json_buf_append(b, s + run, i - run);
        run = i + 1;
        if (c == '"')
            pml_json_buf_puts(b, "\\\"");
        else if (c == '\\')
            pml_json_buf_puts(b, "\\\\");
        else if (c == '\n')
            pml_json_buf_puts(b, "\\n");
        else if (c == '\t')
            pml_json_buf_puts(b, "\\t");
        else if (c == '\r')
            pml_json_buf_puts(b, "\\r");
        else
            pml_json_buf_printf(b, "\\u%04x", c);
    }
    pml_json_buf_append(b, s + run, len - run);
    pml_json_buf_append(b, "\"", 1);
}

void pml_json_buf_free(pml_json_buf *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

pml_status pml_json_load(const char *path, size_t max_bytes, pml_json_doc **out, pml_err *err)
{
    *out = NULL;
    unsigned char *buf;
    size_t n;
    pml_status st = pml_input_read(path, max_bytes, &buf, &n, err);
    if (!st) st = pml_json_parse((const char *)buf, n, path, 0, out, err);
    free(buf);
    return st;
}

pml_status pml_json_buf_save(pml_json_buf *b, const char *path, pml_err *err)
{
    pml_status st = b->failed ? pml_err_set(err, PML_ERR_NOMEM, "out of memory") : PML_OK;
    if (!st) st = pml_atomic_write_file(path, b->data, b->len, err);
    pml_json_buf_free(b);
    return st;
}
