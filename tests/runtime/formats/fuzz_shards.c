/* fuzz_shards.c — libFuzzer target for a tensor set on disk (st_shards.h): the input is
 * unpacked into a folder (tests/fuzz/fuzz_files.h: an index, shards, a single file, in
 * any mix), and the folder is opened as `--init DIR` opens it, pml_sts_open(DIR, "model").
 *
 * When the set is accepted, every tensor's bytes are read (AddressSanitizer sees a range
 * outside its file), each name is found again and has a file, the metadata and every
 * shard's metadata are looked up. Refusals must be PML_ERR_FORMAT, PML_ERR_UNSUPPORTED
 * or PML_ERR_IO, naming the folder (every path the reader names lies in it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../fuzz/fuzz_files.h"
#include "formats/st_shards.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_files_unpack(data, size);
    pml_sts *s = NULL;
    pml_err err;
    if (pml_sts_open(dir, "model", &s, &err) != PML_OK) {
        if ((err.code != PML_ERR_FORMAT && err.code != PML_ERR_UNSUPPORTED && err.code != PML_ERR_IO) ||
            strncmp(err.msg, dir, strlen(dir)) != 0)
            abort();
        return 0;
    }
    volatile unsigned sum = 0;
    for (size_t i = 0; i < pml_sts_count(s); i++) {
        const pml_st_tensor *t = pml_sts_tensor_at(s, i);
        if (pml_sts_find(s, t->name) != t || !pml_sts_where(s, t->name) || t->rank > PML_ST_MAX_RANK) abort();
        const unsigned char *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sum += p[k];
    }
    if (strncmp(pml_sts_path(s), dir, strlen(dir)) != 0) abort();
    (void)pml_sts_metadata(s, "format");
    for (size_t i = 0; i < pml_sts_shards(s); i++) {
        const char *path = NULL;
        const pml_st_file *f = pml_sts_shard(s, i, &path);
        if (!f || !path) abort();
        for (size_t m = 0; m < pml_st_metadata_count(f); m++) {
            const pml_st_meta *meta = pml_st_metadata_at(f, m);
            if (pml_st_metadata(f, meta->key) != meta->value) abort();
        }
    }
    (void)sum;
    pml_sts_close(s);
    return 0;
}
