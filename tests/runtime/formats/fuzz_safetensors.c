/* fuzz_safetensors.c — libFuzzer target for the safetensors reader, from memory
 * (pml_st_open_memory, which pml_st_open calls after mapping a file).
 *
 * When an input is accepted, every tensor's bytes are read (so AddressSanitizer sees
 * any range outside the input), each name must be found again, and metadata looked up.
 * Refusals must be PML_ERR_FORMAT or PML_ERR_UNSUPPORTED naming the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pml_st_file *f = NULL;
    pml_err err;
    if (pml_st_open_memory(data, size, "fuzz.safetensors", &f, &err) != PML_OK) {
        if ((err.code != PML_ERR_FORMAT && err.code != PML_ERR_UNSUPPORTED) ||
            strncmp(err.msg, "fuzz.safetensors: ", 18) != 0)
            abort();
        return 0;
    }
    volatile unsigned sum = 0;
    for (size_t i = 0; i < pml_st_count(f); i++) {
        const pml_st_tensor *t = pml_st_tensor_at(f, i);
        const unsigned char *p = t->data;
        if (p < data || p + t->nbytes > data + size || pml_st_find(f, t->name) != t || t->rank > PML_ST_MAX_RANK)
            abort();
        for (size_t k = 0; k < t->nbytes; k++) sum += p[k];
    }
    for (size_t i = 0; i < pml_st_metadata_count(f); i++) {
        const pml_st_meta *m = pml_st_metadata_at(f, i);
        if (pml_st_metadata(f, m->key) != m->value) abort();
    }
    (void)sum;
    pml_st_close(f);
    return 0;
}
