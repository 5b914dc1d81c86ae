/* test_hash.c — the shared hash (include/pml/hash.h) keeps the values files were made
 * with: parameter initialisation, checkpoint fingerprints, CUDA function names and
 * kernel-cache entries derive from PML_FNV1A_SEED, so a "fixed" seed or a changed byte
 * order would change every initial weight and refuse every saved checkpoint. The
 * expected values were computed by the inline loops the helper replaced. */
#include <string.h>

#include "check.h"
#include "pml/hash.h"

int main(void)
{
    CHECK(PML_FNV1A_SEED == UINT64_C(1469598103934665603));
    CHECK(pml_fnv1a_str(PML_FNV1A_SEED, "") == PML_FNV1A_SEED);
    CHECK(pml_fnv1a_str(PML_FNV1A_SEED, "fc1.w") == UINT64_C(0xd5aef30f286994bc));
    CHECK(pml_fnv1a_str(PML_FNV1A_SEED, "layers.0.attn.q.w") == UINT64_C(0x752b30de4dfb1052));
    /* Pieces continue one hash: the bytes, the string and a byte at a time agree. */
    const char *s = "layers.0.attn.q.w";
    uint64_t h = PML_FNV1A_SEED;
    for (const char *c = s; *c; c++) h = pml_fnv1a_byte(h, (uint8_t)*c);
    CHECK(h == pml_fnv1a_str(PML_FNV1A_SEED, s));
    CHECK(pml_fnv1a(pml_fnv1a(PML_FNV1A_SEED, s, 7), s + 7, strlen(s) - 7) == h);
    /* From FNV's own offset basis the published vector: the algorithm is FNV-1a. */
    CHECK(PML_FNV1A_OFFSET_BASIS == UINT64_C(14695981039346656037));
    CHECK(pml_fnv1a_str(PML_FNV1A_OFFSET_BASIS, "a") == UINT64_C(0xaf63dc4c8601ec8c));
    return check_summary("hash");
}
