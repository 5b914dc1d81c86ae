/* fuzz_npy.c — libFuzzer target for the .npy reader, from memory
 * (pml_npy_open_memory, which pml_npy_open calls after mapping a file).
 *
 * When an input is accepted, all of its data is read (so AddressSanitizer sees any
 * range outside the input) and the size must match the shape. Refusals must be
 * PML_ERR_FORMAT or PML_ERR_UNSUPPORTED naming the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pml_npy_array a;
    pml_err err;
    if (pml_npy_open_memory(data, size, "fuzz.npy", &a, &err) != PML_OK) {
        if ((err.code != PML_ERR_FORMAT && err.code != PML_ERR_UNSUPPORTED) || strncmp(err.msg, "fuzz.npy: ", 10) != 0)
            abort();
        return 0;
    }
    size_t n = pml_dtype_size(a.dtype);
    for (int i = 0; i < a.rank; i++) n *= (size_t)a.shape[i];
    if (n != a.nbytes || a.nbytes > size || ((uintptr_t)a.data % pml_dtype_size(a.dtype)) != 0) abort();
    volatile unsigned sum = 0;
    for (size_t k = 0; k < a.nbytes; k++) sum += ((const unsigned char *)a.data)[k];
    (void)sum;
    pml_npy_close(&a);
    return 0;
}
