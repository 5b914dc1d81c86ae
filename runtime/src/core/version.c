/* version.c — the runtime's version, status names and dtype facts (pml.h). */
#include "pml.h"

const char *pml_version(void) { return PML_VERSION_STRING; }

const char *pml_status_name(pml_status s)
{
    static const char *const names[] = {"ok",           "invalid argument", "I/O error", "malformed input",
                                        "out of memory", "unsupported",      "device error", "internal error",
                                        "non-finite value", "another rank failed"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "unknown status";
}

size_t pml_dtype_size(pml_dtype t)
{
    static const size_t sizes[PML_DTYPE_COUNT] = {4, 2, 2, 4, 8, 8, 1, 1};
    return (unsigned)t < PML_DTYPE_COUNT ? sizes[t] : 0;
}

const char *pml_dtype_name(pml_dtype t)
{
    static const char *const names[PML_DTYPE_COUNT] = {"f32", "bf16", "f16", "i32", "f64", "i64", "u8", "i8"};
    return (unsigned)t < PML_DTYPE_COUNT ? names[t] : "?";
}
