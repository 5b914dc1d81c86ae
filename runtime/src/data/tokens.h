/* tokens.h — a token file, the text corpus of a language model: `data = tokens("train.bin")`.
 *
 * Two layouts, the ones nanoGPT and llm.c users already have:
 *   - flat: little-endian uint16 token ids and nothing else (nanoGPT's train.bin and
 *     val.bin, written with np.array(ids, dtype=np.uint16).tofile(path));
 *   - headered: llm.c's .bin (dev/data/data_common.py): 256 little-endian int32s, of
 *     which [0] is the magic, [1] the version and [2] the token count, then the tokens:
 *     magic 20240520 version 1 holds uint16 tokens (GPT-2), magic 20240801 version 7
 *     uint32 tokens (Llama 3).
 * A file whose first int32 is one of the two magics is headered; any other is flat. So a
 * flat file whose first two tokens spell a magic (61656 then 308) is read as headered
 * and refused: such a file must be written with a header.
 *
 * pml_tokens_open maps the file read-only (formats/mapped_file.h: regular files only)
 * and checks it once, whole: the header (magic, version, count), the count against the
 * file's real size (exact: truncated and trailing bytes are both refused), an odd-sized
 * flat file, and every token against the vocabulary — the first token >= vocab is
 * named by its index and byte offset. Every message starts with the path. A window is
 * then a copy of tokens into i32, with no further check.
 *
 * Ownership: an opened pml_tokens owns its mapping until pml_tokens_close; path is the
 * caller's and must outlive it. Thread safety: an opened file is read-only. */
#ifndef PML_DATA_TOKENS_H
#define PML_DATA_TOKENS_H

#include <stdint.h>

#include "core/error.h"
#include "formats/mapped_file.h"

#define PML_TOKENS_MAGIC_U16 20240520 /* llm.c's GPT-2 token files, version 1 */
#define PML_TOKENS_MAGIC_U32 20240801 /* llm.c's Llama 3 token files, version 7 */
#define PML_TOKENS_HEADER_BYTES (256 * 4)

typedef struct pml_tokens {
    const char *path;
    pml_mapped_file map;
    const void *tok; /* the first token */
    int width;       /* bytes per token: 2 or 4 */
    int headered;    /* 1: llm.c's header */
    uint64_t n;      /* tokens */
} pml_tokens;

/* Opens and checks `path`; every token must be below `vocab` (>= 1). On failure nothing
 * is left open. */
pml_status pml_tokens_open(const char *path, int64_t vocab, pml_tokens *t, pml_err *err);
/* Unmaps; a zeroed or closed pml_tokens is allowed. */
void pml_tokens_close(pml_tokens *t);

/* Copies tokens [at, at + n) into dst as i32; at + n <= t->n. */
void pml_tokens_copy(const pml_tokens *t, uint64_t at, int64_t n, int32_t *dst);

#endif
