/* test_memplan.c — the runtime's memory planner (runtime/src/plan/memplan.h): values
 * alive at the same time never share a byte, a dead value's bytes are used again,
 * every offset keeps its value's alignment, what lives throughout is never shared, and
 * the slots a timetable needs are its most micro-batches in flight.
 * Usage: test_memplan NAME (one behaviour per ctest). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/check.h"
#include "plan/memplan.h"

/* Whether a and b (placed) take a byte in common. */
static int share_bytes(const pml_mem_value *a, const pml_mem_value *b)
{
    return a->bytes && b->bytes && a->offset < b->offset + b->bytes && b->offset < a->offset + a->bytes;
}

/* Whether a and b are alive at one tick (pass_end: where the backward ticks start). */
static int alive_together(const pml_mem_value *a, const pml_mem_value *b, int32_t pass_end)
{
    if (pml_mem_lives_throughout(a, pass_end) || pml_mem_lives_throughout(b, pass_end)) return 1;
    return !(a->last < b->first || b->last < a->first);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Many random stages: no two values alive together share a byte, each sits inside the
 * arena at a multiple of its alignment. */
static void values_alive_together_never_share_a_byte(void)
{
    for (int round = 0; round < 200; round++) {
        int n = 1 + (int)(next() % 60);
        int32_t ticks = 1 + (int32_t)(next() % 40), pass_end = (int32_t)(next() % (uint32_t)(ticks + 1));
        pml_mem_value v[64];
        for (int k = 0; k < n; k++) {
            v[k] = pml_mem_value_init(next() % 5000, (size_t)1 << (next() % 9));
            int32_t a = (int32_t)(next() % (uint32_t)ticks), b = a + (int32_t)(next() % 6);
            if (next() % 8 == 0) pml_mem_always(&v[k]);
            else if (next() % 16 != 0) /* else never used: lives throughout */
                pml_mem_live(&v[k], a), pml_mem_live(&v[k], b < ticks ? b : ticks - 1);
        }
        size_t arena = 0;
        CHECK(pml_mem_plan(v, n, pass_end, &arena, NULL) == PML_OK);
        for (int i = 0; i < n; i++) {
            CHECK(v[i].offset % v[i].align == 0);
            CHECK(v[i].offset + v[i].bytes <= arena);
            for (int j = 0; j < i; j++)
                if (alive_together(&v[i], &v[j], pass_end)) CHECK(!share_bytes(&v[i], &v[j]));
        }
    }
}

/* A chain of temporaries (each read by the next unit, as a pass makes them) needs two
 * values' room, not one per value; values of the forward and the backward pass share. */
static void dead_bytes_are_used_again(void)
{
    pml_mem_value v[10];
    for (int k = 0; k < 10; k++) {
        v[k] = pml_mem_value_init(1000, 64);
        pml_mem_live(&v[k], k), pml_mem_live(&v[k], k + 1); /* written at k, read at k + 1 */
    }
    size_t arena = 0;
    CHECK(pml_mem_plan(v, 10, 100, &arena, NULL) == PML_OK); /* all forward ticks */
    CHECK(arena == 1024 + 1000);
    for (int k = 2; k < 10; k++) CHECK(v[k].offset == v[k - 2].offset);
    /* One forward and one backward value, each of one pass: the same bytes. */
    pml_mem_value w[2] = {pml_mem_value_init(4096, 64), pml_mem_value_init(4096, 64)};
    pml_mem_live(&w[0], 0), pml_mem_live(&w[0], 2);
    pml_mem_live(&w[1], 3), pml_mem_live(&w[1], 4);
    CHECK(pml_mem_plan(w, 2, 3, &arena, NULL) == PML_OK);
    CHECK(arena == 4096 && w[0].offset == w[1].offset);
}

/* The smallest gap that fits is the one taken (best fit), not the first. */
static void the_smallest_fitting_gap_is_taken(void)
{
    /* Placed largest first: x1 (dies after tick 0) at 0, x2 above it, x3 (dies after
     * tick 0) above x2, x4 on top. y, alive at ticks 1-2, fits both the 1000-byte gap
     * x1 leaves and the 500-byte one x3 leaves, and takes the smaller. */
    size_t size[5] = {1000, 900, 500, 460, 450};
    int32_t life[5][2] = {{0, 0}, {0, 2}, {0, 0}, {0, 2}, {1, 2}};
    pml_mem_value v[5];
    for (int k = 0; k < 5; k++) {
        v[k] = pml_mem_value_init(size[k], 1);
        pml_mem_live(&v[k], life[k][0]), pml_mem_live(&v[k], life[k][1]);
    }
    size_t arena = 0;
    CHECK(pml_mem_plan(v, 5, 3, &arena, NULL) == PML_OK);
    CHECK(v[0].offset == 0 && v[1].offset == 1000 && v[2].offset == 1900 && v[3].offset == 2400);
    CHECK(v[4].offset == 1900);
    CHECK(arena == 2860);
}

/* Values that live throughout sit at the bottom, in the order given, and nothing else
 * shares their bytes; so does a value with ticks in both passes, or with none. */
static void what_lives_throughout_is_never_shared(void)
{
    pml_mem_value v[4] = {pml_mem_value_init(100, 64), pml_mem_value_init(100, 64), pml_mem_value_init(100, 64),
                          pml_mem_value_init(100, 64)};
    pml_mem_always(&v[0]);
    pml_mem_live(&v[1], 1), pml_mem_live(&v[1], 6); /* forward (ticks < 5) and backward */
    /* v[2] never used */
    pml_mem_live(&v[3], 2);
    size_t arena = 0;
    CHECK(pml_mem_plan(v, 4, 5, &arena, NULL) == PML_OK);
    CHECK(pml_mem_lives_throughout(&v[1], 5) && pml_mem_lives_throughout(&v[2], 5));
    CHECK(!pml_mem_lives_throughout(&v[3], 5));
    CHECK(v[0].offset == 0 && v[1].offset == 128 && v[2].offset == 256 && v[3].offset == 384);
    CHECK(arena == 484);
}

/* Slots for values kept from forward to backward: GPipe holds every micro-batch,
 * 1F1B as many as the stage has in flight. */
static void slots_are_the_micro_batches_in_flight(void)
{
    enum { F = PML_PLAN_I_FWD, B = PML_PLAN_I_BWD, L = PML_PLAN_I_LOAD };
    pml_plan_instr gpipe[] = {{L, 0, 0}, {F, 0, 0}, {L, 0, 1}, {F, 0, 1}, {L, 0, 2}, {F, 0, 2},
                              {L, 0, 3}, {F, 0, 3}, {B, 0, 3}, {B, 0, 2}, {B, 0, 1}, {B, 0, 0}};
    pml_plan_instr one_f_one_b[] = {{F, 1, 0}, {F, 1, 1}, {B, 1, 0}, {F, 1, 2},
                                    {B, 1, 1}, {F, 1, 3}, {B, 1, 2}, {B, 1, 3}};
    pml_plan_instr *instr[2] = {gpipe, one_f_one_b};
    int n_instr[2] = {12, 8};
    pml_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.conf.microbatches = 4;
    pl.n_stages = 2;
    pl.n_instr = n_instr;
    pl.instr = instr;
    CHECK(pml_mem_in_flight(&pl, 0) == 4);
    CHECK(pml_mem_in_flight(&pl, 1) == 2);
    n_instr[1] = 0; /* a stage with no passes still has a slot */
    CHECK(pml_mem_in_flight(&pl, 1) == 1);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*run)(void);
    } tests[] = {
        {"values_alive_together_never_share_a_byte", values_alive_together_never_share_a_byte},
        {"dead_bytes_are_used_again", dead_bytes_are_used_again},
        {"the_smallest_fitting_gap_is_taken", the_smallest_fitting_gap_is_taken},
        {"what_lives_throughout_is_never_shared", what_lives_throughout_is_never_shared},
        {"slots_are_the_micro_batches_in_flight", slots_are_the_micro_batches_in_flight},
    };
    for (size_t k = 0; k < sizeof tests / sizeof *tests; k++)
        if (argc < 2 || !strcmp(argv[1], tests[k].name)) tests[k].run();
    return check_summary("test_memplan");
}
