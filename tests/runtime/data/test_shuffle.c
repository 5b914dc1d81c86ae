/* test_shuffle.c — pml_shuffle_index: a true permutation of [0, n) for every n (checked
 * exhaustively), different between epochs and seeds, in O(1) memory for any n. */
#include <stdint.h>
#include <stdlib.h>

#include "data/shuffle.h"
#include "data_test.h"

/* Every i in [0, n) maps into [0, n) and no two to the same place. */
static int is_permutation(uint64_t seed, uint64_t epoch, uint64_t n)
{
    unsigned char *seen = calloc(n, 1);
    int ok = 1;
    for (uint64_t i = 0; i < n && ok; i++) {
        uint64_t j = pml_shuffle_index(seed, epoch, n, i);
        ok = j < n && !seen[j];
        if (ok) seen[j] = 1;
    }
    free(seen);
    return ok;
}

static void every_size_is_a_permutation(void)
{
    const uint64_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 1000, 1024, 1025, 65536 + 3};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (uint64_t seed = 0; seed < 3; seed++)
            for (uint64_t epoch = 0; epoch < 3; epoch++) CHECK(is_permutation(seed, epoch, sizes[k]));
}

/* The number of positions where two permutations of [0, n) agree. */
static uint64_t agreements(uint64_t seed_a, uint64_t epoch_a, uint64_t seed_b, uint64_t epoch_b, uint64_t n)
{
    uint64_t same = 0;
    for (uint64_t i = 0; i < n; i++)
        same += pml_shuffle_index(seed_a, epoch_a, n, i) == pml_shuffle_index(seed_b, epoch_b, n, i);
    return same;
}

/* Epochs and seeds give unrelated orders (random permutations agree in about one
 * place), and an order is not the identity. */
static void epochs_and_seeds_differ(void)
{
    const uint64_t n = 1000;
    CHECK(agreements(1, 0, 1, 1, n) < 10);
    CHECK(agreements(1, 0, 2, 0, n) < 10);
    CHECK(agreements(1, 0, 1, 0, n) == n);
    uint64_t fixed = 0;
    for (uint64_t i = 0; i < n; i++) fixed += pml_shuffle_index(1, 0, n, i) == i;
    CHECK(fixed < 10);
    CHECK(pml_shuffle_index(1, 0, 2, 0) != pml_shuffle_index(1, 0, 2, 1));
}

/* Huge datasets need no memory: distinct positions of a 2^64 - 1 permutation differ
 * and stay in range; a position past the end maps to itself. */
static void huge_sizes_and_out_of_range(void)
{
    const uint64_t n = UINT64_MAX;
    uint64_t a = pml_shuffle_index(3, 1, n, 0), b = pml_shuffle_index(3, 1, n, 1);
    uint64_t c = pml_shuffle_index(3, 1, n, n - 1);
    CHECK(a < n && b < n && c < n && a != b && b != c && a != c);
    CHECK(pml_shuffle_index(3, 1, (1ull << 40) + 1, 12345) < (1ull << 40) + 1);
    CHECK(pml_shuffle_index(3, 1, 10, 10) == 10);
    CHECK(pml_shuffle_index(3, 1, 0, 0) == 0);
    CHECK(pml_shuffle_index(3, 1, 1, 0) == 0);
}

/* Each value lands in each half of [0, n) about equally often over epochs. */
static void positions_are_spread(void)
{
    const uint64_t n = 100, epochs = 4000;
    int low = 0;
    for (uint64_t e = 0; e < epochs; e++) low += pml_shuffle_index(9, e, n, 0) < n / 2;
    CHECK(low > 1800 && low < 2200);
}

int main(int argc, char **argv)
{
    static const data_test tests[] = {
        {"every_size_is_a_permutation", every_size_is_a_permutation},
        {"epochs_and_seeds_differ", epochs_and_seeds_differ},
        {"huge_sizes_and_out_of_range", huge_sizes_and_out_of_range},
        {"positions_are_spread", positions_are_spread},
    };
    return data_test_main(argc, argv, tests, (int)(sizeof tests / sizeof tests[0]));
}
