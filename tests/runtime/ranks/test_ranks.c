/* test_ranks.c — ranks.h without any process of its own: the stage split is
 * contiguous, covers every stage once and pml_ranks_owner inverts it; rank and world
 * come from the first launcher's variables present, and bad values are errors naming
 * the variable. */
#define _DEFAULT_SOURCE /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/ranks.h"

static int failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

static void split(void)
{
    for (int S = 1; S <= 17; S++)
        for (int W = 1; W <= S; W++) {
            int next = 0;
            for (int r = 0; r < W; r++) {
                int first, last;
                pml_err err = {0};
                CHECK(!pml_ranks_stages(S, W, r, &first, &last, &err), "S=%d W=%d r=%d: %s", S, W, r, err.msg);
                CHECK(first == next && last > first, "S=%d W=%d r=%d: [%d, %d) after %d", S, W, r, first, last, next);
                CHECK(last - first == S / W || last - first == S / W + 1, "S=%d W=%d r=%d: unbalanced", S, W, r);
                for (int s = first; s < last; s++)
                    CHECK(pml_ranks_owner(S, W, s) == r, "S=%d W=%d: stage %d's owner is %d, not %d", S, W, s,
                          pml_ranks_owner(S, W, s), r);
                next = last;
            }
            CHECK(next == S, "S=%d W=%d: the split ends at %d", S, W, next);
        }
    int first, last;
    pml_err err = {0};
    CHECK(pml_ranks_stages(2, 3, 0, &first, &last, &err) == PML_ERR_INVALID_ARG &&
              strstr(err.msg, "3 ranks but the plan has 2 stages"),
          "more ranks than stages: %s", err.msg);
    CHECK(pml_ranks_stages(4, 2, 2, &first, &last, &err) == PML_ERR_INVALID_ARG, "a rank past the world");
}

static void clear(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS",
                                       "RANK", "WORLD_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

static void env(void)
{
    pml_ranks r;
    pml_err err = {0};
    clear();
    CHECK(!pml_ranks_from_env(&r, &err) && r.rank == 0 && r.world == 1, "no launcher: rank 0 of 1");
    setenv("RANK", "3", 1), setenv("WORLD_SIZE", "4", 1);
    CHECK(!pml_ranks_from_env(&r, &err) && r.rank == 3 && r.world == 4 && !strcmp(r.source, "RANK/WORLD_SIZE"),
          "torchrun style: %d of %d", r.rank, r.world);
    setenv("SLURM_PROCID", "1", 1), setenv("SLURM_NTASKS", "2", 1);
    CHECK(!pml_ranks_from_env(&r, &err) && r.rank == 1 && r.world == 2, "Slurm before torchrun");
    setenv("OMPI_COMM_WORLD_RANK", "0", 1), setenv("OMPI_COMM_WORLD_SIZE", "8", 1);
    CHECK(!pml_ranks_from_env(&r, &err) && r.rank == 0 && r.world == 8, "Open MPI first");
    clear();
    setenv("RANK", "x", 1), setenv("WORLD_SIZE", "2", 1);
    CHECK(pml_ranks_from_env(&r, &err) == PML_ERR_INVALID_ARG && strstr(err.msg, "RANK is 'x'"), "%s", err.msg);
    setenv("RANK", "2", 1);
    CHECK(pml_ranks_from_env(&r, &err) == PML_ERR_INVALID_ARG && strstr(err.msg, "not below WORLD_SIZE"), "%s",
          err.msg);
    unsetenv("WORLD_SIZE");
    CHECK(pml_ranks_from_env(&r, &err) == PML_ERR_INVALID_ARG && strstr(err.msg, "RANK is set but WORLD_SIZE is not"),
          "%s", err.msg);
    setenv("RANK", "0", 1), setenv("WORLD_SIZE", "0", 1);
    CHECK(pml_ranks_from_env(&r, &err) == PML_ERR_INVALID_ARG, "a world of 0");
    clear();
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "split"))
        split();
    else if (!strcmp(what, "env"))
        env();
    else
        return printf("usage: test_ranks split|env\n"), 2;
    if (!failures) printf("ok\n");
    return failures != 0;
}
