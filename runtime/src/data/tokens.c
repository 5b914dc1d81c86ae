/* tokens.c — see tokens.h: opening and checking a token file, and copying windows. */
#include "data/tokens.h"

#include <string.h>

#include "data/bounds.h"

/* The layout: llm.c's header when the magic is there, else flat uint16. */
static pml_status read_layout(pml_tokens *t, pml_err *err)
{
    const char *path = t->path;
    size_t len = t->map.len;
    int32_t h[3] = {0, 0, 0};
    if (len >= sizeof h) memcpy(h, t->map.data, sizeof h);
    if (len < 4 || (h[0] != PML_TOKENS_MAGIC_U16 && h[0] != PML_TOKENS_MAGIC_U32)) {
        if (len % 2)
            return pml_err_set(err, PML_ERR_FORMAT,
                               "%s: has %zu bytes, an odd count: a flat token file holds uint16 tokens, 2 bytes each "
                               "(or it lacks llm.c's header, whose magic is %d)",
                               path, len, PML_TOKENS_MAGIC_U16);
        t->tok = t->map.data;
        t->width = 2;
        t->n = len / 2;
        return PML_OK;
    }
    t->headered = 1;
    int want_version = h[0] == PML_TOKENS_MAGIC_U16 ? 1 : 7;
    if (len < PML_TOKENS_HEADER_BYTES)
        return pml_err_set(err, PML_ERR_FORMAT,
                           "%s: has llm.c's magic %d but only %zu bytes: the header alone is %d bytes", path, h[0], len,
                           PML_TOKENS_HEADER_BYTES);
    if (h[1] != want_version)
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "%s: llm.c token file of version %d; magic %d goes with version %d (%s tokens)", path, h[1],
                           h[0], want_version, want_version == 1 ? "uint16" : "uint32");
    t->width = want_version == 1 ? 2 : 4;
    uint64_t have = (uint64_t)(len - PML_TOKENS_HEADER_BYTES) / (uint64_t)t->width;
    if (h[2] < 0 || (uint64_t)h[2] != have || (len - PML_TOKENS_HEADER_BYTES) % (size_t)t->width)
        return pml_err_set(err, PML_ERR_FORMAT,
                           "%s: the header claims %d tokens (%lld bytes after it), but the file holds %zu bytes after "
                           "its header",
                           path, h[2], (long long)h[2] * t->width, len - PML_TOKENS_HEADER_BYTES);
    t->tok = (const char *)t->map.data + PML_TOKENS_HEADER_BYTES;
    t->n = have;
    return PML_OK;
}

pml_status pml_tokens_open(const char *path, int64_t vocab, pml_tokens *t, pml_err *err)
{
    memset(t, 0, sizeof *t);
    t->path = path;
    pml_status st = pml_map_file(path, &t->map, err);
    if (st) return st;
    st = read_layout(t, err);
    if (!st && !t->n) st = pml_err_set(err, PML_ERR_INVALID_ARG, "%s: holds no tokens", path);
    if (!st) {
        uint64_t bad = t->width == 2 ? pml_first_outside_u16(t->tok, t->n, (uint64_t)vocab)
                                     : pml_first_outside_u32(t->tok, t->n, (uint64_t)vocab);
        if (bad < t->n) {
            uint64_t v = t->width == 2 ? ((const uint16_t *)t->tok)[bad] : ((const uint32_t *)t->tok)[bad];
            st = pml_err_set(
                err, PML_ERR_INVALID_ARG,
                "%s: token %llu (at byte offset %llu) is %llu, outside the model's vocabulary [0, %lld)", path,
                (unsigned long long)bad,
                (unsigned long long)(bad * (uint64_t)t->width + (t->headered ? PML_TOKENS_HEADER_BYTES : 0)),
                (unsigned long long)v, (long long)vocab);
        }
    }
    if (st) pml_tokens_close(t);
    return st;
}

void pml_tokens_close(pml_tokens *t)
{
    pml_unmap_file(&t->map);
    t->tok = NULL;
    t->n = 0;
}

void pml_tokens_copy(const pml_tokens *t, uint64_t at, int64_t n, int32_t *dst)
{
    if (t->width == 2) {
        const uint16_t *v = (const uint16_t *)t->tok + at;
        for (int64_t i = 0; i < n; i++) dst[i] = v[i];
    } else {
        const uint32_t *v = (const uint32_t *)t->tok + at;
        for (int64_t i = 0; i < n; i++) dst[i] = (int32_t)v[i];
    }
}
