/* protobuf.c — the wire format's encodings (protobuf.h). */
#include "protobuf.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

static int grow(pml_pb *b, size_t more)
{
    if (b->oom) return 1;
    if (more <= b->cap - b->len) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return 1;
        }
        cap *= 2;
    }
    unsigned char *p = realloc(b->bytes, cap);
    if (!p) {
        b->oom = 1;
        return 1;
    }
    b->bytes = p;
    b->cap = cap;
    return 0;
}

static void raw_varint(pml_pb *b, uint64_t v)
{
    if (grow(b, 10)) return;
    do {
        unsigned char c = (unsigned char)(v & 0x7f);
        v >>= 7;
        b->bytes[b->len++] = (unsigned char)(c | (v ? 0x80 : 0));
    } while (v);
}

static void tag(pml_pb *b, int field, int wire) { raw_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

void pml_pb_varint(pml_pb *b, int field, uint64_t v)
{
    tag(b, field, WIRE_VARINT);
    raw_varint(b, v);
}

void pml_pb_float(pml_pb *b, int field, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    tag(b, field, WIRE_FIXED32);
    if (grow(b, 4)) return;
    for (int k = 0; k < 4; k++) b->bytes[b->len++] = (unsigned char)(u >> (8 * k)); /* little-endian on any host */
}

void pml_pb_bytes(pml_pb *b, int field, const void *data, size_t n)
{
    tag(b, field, WIRE_LEN);
    raw_varint(b, n);
    if (n == 0 || grow(b, n)) return;
    memcpy(b->bytes + b->len, data, n);
    b->len += n;
}

void pml_pb_string(pml_pb *b, int field, const char *s) { pml_pb_bytes(b, field, s, strlen(s)); }

void pml_pb_message(pml_pb *b, int field, const pml_pb *msg)
{
    if (msg->oom) b->oom = 1;
    pml_pb_bytes(b, field, msg->bytes, msg->len);
}

void pml_pb_reset(pml_pb *b)
{
    b->len = 0;
    b->oom = 0;
}

void pml_pb_free(pml_pb *b)
{
    free(b->bytes);
    *b = (pml_pb){0};
}
