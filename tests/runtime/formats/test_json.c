/* test_json.c — the strict JSON parser and writer (runtime/src/formats/json.h). */
#include <math.h>

#include "formats/json.h"
#include "harness.h"

static pml_json_doc *parse_ok(const char *text)
{
    pml_json_doc *d = NULL;
    pml_err err = {0};
    pml_status st = pml_json_parse(text, strlen(text), "t.json", 0, &d, &err);
    CHECK(st == PML_OK && d);
    if (st) fprintf(stderr, "  unexpected error: %s\n", err.msg);
    return d;
}

/* Parsing `text` fails with PML_ERR_FORMAT and a message containing `part`. */
static void refused(const char *text, size_t len, const char *part)
{
    pml_json_doc *d = (pml_json_doc *)1;
    pml_err err = {0};
    CHECK_ERR(pml_json_parse(text, len, "t.json", 0, &d, &err), err, PML_ERR_FORMAT, part);
    CHECK(d == NULL);
    CHECK(strncmp(err.msg, "t.json: byte ", 13) == 0);
}
#define REFUSED(lit, part) refused(lit, sizeof lit - 1, part)

static void json_valid_documents_give_their_values(void)
{
    pml_json_doc *d = parse_ok(" {\"a\": [1, -2, 0, 9223372036854775807, -9223372036854775808],\n"
                               "\"b\": {\"x\": true, \"y\": false, \"z\": null}, \"c\": 1.5e3, \"d\": -0.25,"
                               "\"e\": \"hi\", \"f\": [], \"g\": {}, \"h\": 1E-2, \"i\": -0} ");
    if (!d) return;
    const pml_json *r = pml_json_root(d), *a = pml_json_get(r, "a"), *b = pml_json_get(r, "b");
    CHECK(r->kind == PML_JSON_OBJECT && r->u.obj.n == 9);
    CHECK(r->offset == 1);
    CHECK(a && a->kind == PML_JSON_ARRAY && a->u.arr.n == 5);
    CHECK(a->u.arr.items[0].u.i == 1 && a->u.arr.items[1].u.i == -2 && a->u.arr.items[2].u.i == 0);
    CHECK(a->u.arr.items[3].kind == PML_JSON_INT && a->u.arr.items[3].u.i == INT64_MAX);
    CHECK(a->u.arr.items[4].kind == PML_JSON_INT && a->u.arr.items[4].u.i == INT64_MIN);
    CHECK(pml_json_get(b, "x")->kind == PML_JSON_BOOL && pml_json_get(b, "x")->u.b == 1);
    CHECK(pml_json_get(b, "y")->kind == PML_JSON_BOOL && pml_json_get(b, "y")->u.b == 0);
    CHECK(pml_json_get(b, "z")->kind == PML_JSON_NULL);
    CHECK(pml_json_get(r, "c")->kind == PML_JSON_DOUBLE && pml_json_get(r, "c")->u.d == 1500.0);
    CHECK(pml_json_get(r, "d")->u.d == -0.25);
    CHECK(pml_json_get(r, "h")->kind == PML_JSON_DOUBLE && fabs(pml_json_get(r, "h")->u.d - 0.01) < 1e-15);
    CHECK(pml_json_get(r, "i")->kind == PML_JSON_INT && pml_json_get(r, "i")->u.i == 0);
    CHECK(strcmp(pml_json_get(r, "e")->u.str.s, "hi") == 0 && pml_json_get(r, "e")->u.str.len == 2);
    CHECK(pml_json_get(r, "f")->u.arr.n == 0 && pml_json_get(r, "g")->u.obj.n == 0);
    CHECK(pml_json_get(r, "missing") == NULL);
    pml_json_free(d);

    const char *scalars[] = {"0", "\"\"", "true", "null", "[[[]]]", "3.25"};
    for (size_t i = 0; i < sizeof scalars / sizeof *scalars; i++) pml_json_free(parse_ok(scalars[i]));
}

static void json_invalid_input_is_refused_with_its_offset(void)
{
    REFUSED("", "byte 0: expected a value but the input ends");
    REFUSED("   ", "byte 3: expected a value");
    REFUSED("{\"a\":1,}", "byte 7: expected a string key but found '}'");
    REFUSED("[1,]", "byte 3: expected a value but found ']'");
    REFUSED("[1 2]", "byte 3: expected ',' or ']'");
    REFUSED("{\"a\" 1}", "byte 5: expected ':'");
    REFUSED("{a:1}", "byte 1: expected a string key");
    REFUSED("[1] x", "byte 4: expected the end of the input");
    REFUSED("01", "byte 0: numbers must not have leading zeros");
    REFUSED("-", "byte 1: expected a digit");
    REFUSED("1.", "byte 2: expected a digit after '.'");
    REFUSED("1e+", "byte 3: expected a digit in the exponent");
    REFUSED("+1", "byte 0: expected a value but found '+'");
    REFUSED(".5", "byte 0");
    REFUSED("NaN", "byte 0");
    REFUSED("tru", "byte 0: invalid literal");
    REFUSED("nul", "byte 0: invalid literal");
    REFUSED("\"abc", "byte 0: unterminated string");
    REFUSED("\"a\\", "byte 0: unterminated string");
    REFUSED("\"a\tb\"", "byte 2: control character 0x09");
    REFUSED("\"\\x\"", "byte 1: invalid escape");
    REFUSED("\"\\u12\"", "byte 1: \\u must be followed by four hex digits");
    REFUSED("\"\\u12G4\"", "byte 1: \\u must be followed");
    REFUSED("[1e999]", "byte 1: number 1e999 is out of the double range");
    REFUSED("9223372036854775808", "byte 0: integer 9223372036854775808 is out of the int64 range");
    REFUSED("-9223372036854775809", "out of the int64 range");
    REFUSED("99999999999999999999999", "out of the int64 range");
    REFUSED("[1]\0", "byte 3: expected the end of the input after the JSON value but found byte 0x00");
    REFUSED("{\"a\":1}}", "byte 7");
    REFUSED("'a'", "byte 0");
}

static void json_nesting_deeper_than_64_is_refused(void)
{
    char deep[200];
    for (int depth = 63; depth <= 66; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        pml_json_doc *d = NULL;
        pml_err err = {0};
        pml_status st = pml_json_parse(deep, 2 * (size_t)depth, "t.json", 0, &d, &err);
        if (depth <= PML_JSON_MAX_DEPTH) {
            CHECK(st == PML_OK);
        } else {
            CHECK(st == PML_ERR_FORMAT);
            CHECK(strstr(err.msg, "byte 64: nesting deeper than 64 levels") != NULL);
        }
        pml_json_free(d);
    }
    REFUSED("{\"a\":[{\"b\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "nesting deeper");
}

static void json_duplicate_object_keys_are_refused(void)
{
    REFUSED("{\"a\":1,\"b\":2,\"a\":3}", "byte 13: duplicate object key \"a\"");
    REFUSED("{\"x\":{\"k\":1,\"k\":1}}", "byte 12: duplicate object key \"k\"");
    REFUSED("{\"\\u0061\":1,\"a\":2}", "duplicate object key \"a\""); /* equal once decoded */
    pml_json_free(parse_ok("{\"a\":1,\"ab\":2,\"b\":{\"a\":1}}"));
}

static void json_escapes_and_surrogates_decode_to_utf8(void)
{
    pml_json_doc *d = parse_ok("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\", \"\\ud83d\\ude00\", \"a\\u0000b\","
                               "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]");
    if (!d) return;
    const pml_json *a = pml_json_root(d);
    CHECK(strcmp(a->u.arr.items[0].u.str.s, "\"\\/\b\f\n\r\t") == 0);
    CHECK(strcmp(a->u.arr.items[1].u.str.s, "\xc3\xa9\xe2\x82\xac") == 0);
    CHECK(strcmp(a->u.arr.items[2].u.str.s, "\xf0\x9f\x98\x80") == 0);
    CHECK(a->u.arr.items[3].u.str.len == 3 && memcmp(a->u.arr.items[3].u.str.s, "a\0b", 4) == 0);
    CHECK(strcmp(a->u.arr.items[4].u.str.s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") == 0);
    pml_json_free(d);

    REFUSED("\"\\ud83d\"", "byte 1: high surrogate \\uD83D is not followed by a low surrogate");
    REFUSED("\"\\ud83d\\u0041\"", "high surrogate");
    REFUSED("\"\\ude00\"", "byte 1: lone low surrogate \\uDE00");
    REFUSED("\"\xc3\"", "byte 1: invalid UTF-8");
    REFUSED("\"\xc0\xaf\"", "invalid UTF-8");         /* overlong '/' */
    REFUSED("\"\xed\xa0\x80\"", "invalid UTF-8");     /* an encoded surrogate */
    REFUSED("\"\xf4\x90\x80\x80\"", "invalid UTF-8"); /* above U+10FFFF */
    REFUSED("\"\xff\"", "invalid UTF-8");
    REFUSED("\xef\xbb\xbf{}", "byte 0"); /* a byte-order mark is not JSON */
}

static void json_offsets_count_from_the_callers_base(void)
{
    pml_json_doc *d = NULL;
    pml_err err = {0};
    CHECK_ERR(pml_json_parse("{\"a\":}", 6, "m.safetensors", 8, &d, &err), err, PML_ERR_FORMAT,
              "m.safetensors: byte 13: expected a value but found '}'");
}

static void json_writer_escapes_strings_that_parse_back(void)
{
    const char s[] = "q\"b\\s/\n\t\r\x01\x1f caf\xc3\xa9 \xf0\x9f\x98\x80";
    pml_json_buf b = {0};
    pml_json_buf_puts(&b, "[");
    pml_json_buf_string(&b, s, sizeof s - 1);
    pml_json_buf_printf(&b, ",%d]", 42);
    CHECK(!b.failed);
    CHECK(strstr(b.data, "\\u0001") && strstr(b.data, "\\u001f") && strstr(b.data, "\\\"") && strstr(b.data, "\\n"));
    pml_json_doc *d = b.failed ? NULL : parse_ok(b.data);
    if (d) {
        const pml_json *r = pml_json_root(d);
        CHECK(r->u.arr.items[0].u.str.len == sizeof s - 1 && memcmp(r->u.arr.items[0].u.str.s, s, sizeof s) == 0);
        CHECK(r->u.arr.items[1].u.i == 42);
    }
    pml_json_free(d);
    pml_json_buf_free(&b);
    CHECK(pml_json_utf8_valid(s, sizeof s - 1));
    CHECK(!pml_json_utf8_valid("\xe2\x82", 2));
}

/* printf output of any length is written whole: a span named by a 256-byte identifier
 * made the trace writer fail ("out of memory") when its event passed 256 bytes. */
static void json_writer_printf_writes_output_of_any_length(void)
{
    char name[1001];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = 0;
    for (size_t n = 250; n <= 1000; n += 375) {
        pml_json_buf b = {0};
        pml_json_buf_printf(&b, "{\"name\": \"%.*s\", \"n\": %zu}", (int)n, name, n);
        CHECK(!b.failed && b.len == n + 19 + (n >= 1000 ? 4 : 3)); /* the braces, keys and digits */
        pml_json_doc *d = b.failed ? NULL : parse_ok(b.data);
        if (d) {
            const pml_json *r = pml_json_root(d), *nm = pml_json_get(r, "name");
            CHECK(nm && nm->u.str.len == n && pml_json_get(r, "n")->u.i == (int64_t)n);
        }
        pml_json_free(d);
        pml_json_buf_free(&b);
    }
}

#define T(fn)   \
    {           \
#fn, fn \
    }
static const test_case cases[] = {
    T(json_valid_documents_give_their_values),      T(json_invalid_input_is_refused_with_its_offset),
    T(json_nesting_deeper_than_64_is_refused),      T(json_duplicate_object_keys_are_refused),
    T(json_escapes_and_surrogates_decode_to_utf8),  T(json_offsets_count_from_the_callers_base),
    T(json_writer_escapes_strings_that_parse_back), T(json_writer_printf_writes_output_of_any_length),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, sizeof cases / sizeof *cases); }
