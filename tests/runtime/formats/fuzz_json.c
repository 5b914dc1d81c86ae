/* fuzz_json.c — libFuzzer target for the strict JSON parser (formats/json.h).
 *
 * Each input is parsed; when it parses, every string in the tree is written back with
 * pml_json_buf_string and parsed again, and must come back byte-identical (the writer
 * and the parser agree). Crashes, leaks, sanitizer reports and that property failing
 * are findings; malformed input is not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip_strings(const pml_json *v)
{
    if (v->kind == PML_JSON_STRING) {
        pml_json_buf b = {0};
        pml_json_buf_string(&b, v->u.str.s, v->u.str.len);
        pml_json_doc *d = NULL;
        if (b.failed || pml_json_parse(b.data, b.len, "round-trip", 0, &d, NULL) != PML_OK) abort();
        const pml_json *r = pml_json_root(d);
        if (r->kind != PML_JSON_STRING || r->u.str.len != v->u.str.len || memcmp(r->u.str.s, v->u.str.s, v->u.str.len))
            abort();
        pml_json_free(d);
        pml_json_buf_free(&b);
    } else if (v->kind == PML_JSON_ARRAY) {
        for (size_t i = 0; i < v->u.arr.n; i++) round_trip_strings(&v->u.arr.items[i]);
    } else if (v->kind == PML_JSON_OBJECT) {
        for (size_t i = 0; i < v->u.obj.n; i++) {
            round_trip_strings(&v->u.obj.keys[i]);
            round_trip_strings(&v->u.obj.values[i]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pml_json_doc *d = NULL;
    pml_err err;
    if (pml_json_parse((const char *)data, size, "fuzz.json", 0, &d, &err) == PML_OK) {
        round_trip_strings(pml_json_root(d));
        pml_json_free(d);
    } else if (err.code != PML_ERR_FORMAT || strncmp(err.msg, "fuzz.json: ", 11) != 0) {
        abort(); /* every refusal is a format error naming the input */
    }
    return 0;
}
