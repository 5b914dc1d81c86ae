/* protobuf.h — writing Protocol Buffers wire format: the few encodings an ONNX model
 * file needs (onnx.h), not a general protobuf library.
 *
 * A pml_pb is a growable byte buffer a message is written into, field by field, in
 * any order (a reader takes fields in whatever order they come, and collects repeated
 * ones). A nested message is written into a buffer of its own and appended with
 * pml_pb_message, which prefixes its length. Integers are varints (int64 and enums as
 * their two's-complement u64, so a negative takes ten bytes, as protobuf's int64
 * does); floats are fixed32 little-endian.
 *
 * Out of memory is sticky: the first failed growth sets `oom`, later writes do
 * nothing, and the caller checks `oom` once at the end. Not thread-safe per buffer. */
#ifndef PML_FORMATS_PROTOBUF_H
#define PML_FORMATS_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct pml_pb {
    unsigned char *bytes;
    size_t len, cap;
    int oom;
} pml_pb;

void pml_pb_varint(pml_pb *b, int field, uint64_t v);
void pml_pb_float(pml_pb *b, int field, float v);
void pml_pb_bytes(pml_pb *b, int field, const void *data, size_t n);
void pml_pb_string(pml_pb *b, int field, const char *s);
/* `msg`'s bytes as field `field` (a nested message). */
void pml_pb_message(pml_pb *b, int field, const pml_pb *msg);
/* Empties `b` for reuse, keeping its memory. */
void pml_pb_reset(pml_pb *b);
void pml_pb_free(pml_pb *b);

#endif
