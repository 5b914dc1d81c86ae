/* test_ranks.c — ranks.h and liveness.h without any process of their own: the stage
 * split is contiguous, covers every stage once and pml_ranks_owner inverts it; with
 * chunks every chunk goes to the rank of its stage device; rank
 * and world come from the first launcher's variables present, and bad values are
 * errors naming the variable; the heartbeat's blame rule on made-up timelines names a
 * peer that stops after the timeout, and an observer whose own listener stalled (not
 * scheduled, the process held up) blames nobody for the stall; a clock offset estimated
 * from ping-pongs with uneven delays holds the true offset within its bound, and the
 * shortest round trip gives it; a peer that said goodbye is never taken for dead: one
 * that ended its run is blamed by no wait on another, one that failed ends every wait
 * at once with its reason. */
#define _DEFAULT_SOURCE /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/dist_clock.h"
#include "exec/liveness.h"
#include "exec/ranks.h"
#include "pml/plan_format.h"

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

/* With chunks the ranks split the stage devices: every chunk lands on the rank of its
 * device (pml_plan_chunk_device), so a rank runs whole devices; under the V the first
 * rank holds the model's first and last chunks (inputs and loss). Without chunks
 * (devices = stages) the owner is pml_ranks_owner's. */
static void chunks_follow_their_device(void)
{
    static const int schedules[] = {2 /* interleaved 1F1B */, PML_PLAN_SCHEDULE_ZERO_BUBBLE_V,
                                    PML_PLAN_SCHEDULE_DUALPIPE_V};
    for (int D = 1; D <= 9; D++)
        for (int W = 1; W <= D; W++)
            for (size_t k = 0; k < sizeof schedules / sizeof *schedules; k++) {
                int sched = schedules[k], V = pml_plan_schedule_vee(sched) ? 2 : 3;
                for (int c = 0; c < D * V; c++) {
                    int dev = pml_plan_chunk_device(c, D, sched), r = pml_ranks_chunk_owner(D, sched, W, c), first,
                        last;
                    pml_err err = {0};
                    CHECK(!pml_ranks_stages(D, W, r, &first, &last, &err) && dev >= first && dev < last,
                          "D=%d W=%d schedule %d: chunk %d of device %d given to rank %d, which runs [%d, %d)", D, W,
                          sched, c, dev, r, first, last);
                }
                if (pml_plan_schedule_vee(sched))
                    CHECK(pml_ranks_chunk_owner(D, sched, W, 0) == 0 && pml_ranks_chunk_owner(D, sched, W, 2 * D - 1) == 0,
                          "D=%d W=%d: the V's first and last chunks on rank 0", D, W);
                for (int s = 0; s < D; s++)
                    CHECK(pml_ranks_chunk_owner(D, sched, W, s) == pml_ranks_owner(D, W, s),
                          "D=%d W=%d: device %d's first chunk is stage %d's owner", D, W, s, s);
            }
}

static void clear(void)
{
    static const char *const vars[] = {
        "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "RANK",
        "WORLD_SIZE",           "MASTER_ADDR"};
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
    setenv("MASTER_ADDR", "node7", 1); /* torchrun inside a batch job, which set SLURM_* */
    CHECK(!pml_ranks_from_env(&r, &err) && r.rank == 3 && r.world == 4 && !strcmp(r.source, "RANK/WORLD_SIZE"),
          "with MASTER_ADDR, torchrun before Slurm: %d of %d", r.rank, r.world);
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

/* ---- the blame rule (liveness.h) ------------------------------------------------------ */

enum { WORLD = 4, SELF = 0, STOPPED = 2 };
static const double TIMEOUT = 6, GAP = 0.5, TURN = 0.05; /* as the MPI dist with --peer-timeout 6 */

/* The listener turns every TURN seconds over [from, to), hearing every peer but
 * `quiet` (-1: none) at each turn. */
static void listen(pml_live *l, double from, double to, int quiet)
{
    for (double t = from; t < to; t += TURN) {
        for (int r = 0; r < WORLD; r++)
            if (r != SELF && r != quiet) pml_live_heard(l, r, t);
        pml_live_look(l, t);
    }
}

static void start(pml_live *l)
{
    pml_err err = {0};
    CHECK(!pml_live_init(l, WORLD, SELF, TIMEOUT, GAP, 0, &err), "init: %s", err.msg);
}

/* The observer stops hearing rank 2 at t = 1: nobody is gone before t = 1 + timeout,
 * and rank 2, only rank 2, is gone after it. */
static void a_silent_peer_is_named_after_the_timeout(void)
{
    pml_live l;
    double secs = 0;
    start(&l);
    listen(&l, 0, 1, -1);
    listen(&l, 1, 1 + TIMEOUT - 0.2, STOPPED);
    CHECK(pml_live_silent(&l, 1 + TIMEOUT - 0.2, &secs) < 0, "nobody is gone before the timeout");
    listen(&l, 1 + TIMEOUT - 0.2, 1 + TIMEOUT + 0.2, STOPPED);
    int r = pml_live_silent(&l, 1 + TIMEOUT + 0.2, &secs);
    CHECK(r == STOPPED && secs > TIMEOUT && secs < TIMEOUT + 0.5, "rank 2 is gone after %.2f s (got rank %d)", secs,
          r);
    pml_live_free(&l);
}

/* The observer's listener is not scheduled from t = 1 to t = 20 while every peer keeps
 * beating: a stage thread that checks at t = 20, before the listener takes the beats
 * in, blames nobody, and nobody once it has. */
static void a_stalled_observer_blames_nobody_for_its_own_stall(void)
{
    pml_live l;
    double secs = 0;
    start(&l);
    listen(&l, 0, 1, -1);
    int r = pml_live_silent(&l, 20, &secs);
    CHECK(r < 0, "a 19 s stall of the observer is not rank %d's silence (%.1f s)", r, secs);
    listen(&l, 20, 21, -1);
    CHECK(pml_live_silent(&l, 21, &secs) < 0, "every peer is heard again");
    pml_live_free(&l);
}

/* Rank 2 stops at t = 1, the observer stalls from t = 3 to t = 30: the stall counts
 * one gap, so rank 2 is gone a timeout of observed time later — still rank 2 alone,
 * never a live peer whose beats waited in the stall. */
static void a_stalled_observer_still_names_the_stopped_peer_and_only_it(void)
{
    pml_live l;
    double secs = 0;
    start(&l);
    listen(&l, 0, 1, -1);
    listen(&l, 1, 3, STOPPED);
    int r = pml_live_silent(&l, 30, &secs);
    CHECK(r < 0, "2 s of silence and a stall are not yet the timeout (rank %d, %.1f s)", r, secs);
    /* The listener wakes and takes in the live peers' beats one by one: rank 2 is not
     * gone between two of them, nor are the peers still waiting to be taken in. */
    pml_live_heard(&l, 1, 30);
    CHECK(pml_live_silent(&l, 30, &secs) < 0, "no blame halfway through taking the beats in");
    pml_live_heard(&l, 3, 30);
    double gone_at = 30 + TIMEOUT - (2 + GAP);
    listen(&l, 30, gone_at - 0.2, STOPPED);
    CHECK(pml_live_silent(&l, gone_at - 0.2, &secs) < 0, "not before the observed timeout");
    listen(&l, gone_at - 0.2, gone_at + 0.2, STOPPED);
    r = pml_live_silent(&l, gone_at + 0.2, &secs);
    CHECK(r == STOPPED, "rank 2 is named once observed for the timeout (got %d)", r);
    pml_live_free(&l);
}

/* A loaded listener that turns every 0.4 s (under the gap) loses no time: a silent peer
 * is still named after the timeout in wall time. */
static void a_slow_but_running_listener_keeps_wall_time(void)
{
    pml_live l;
    double secs = 0, t = 0;
    start(&l);
    for (; t < TIMEOUT + 0.5; t += 0.4) {
        pml_live_heard(&l, 1, t), pml_live_heard(&l, 3, t);
        pml_live_look(&l, t);
    }
    int r = pml_live_silent(&l, t, &secs);
    CHECK(r == STOPPED && secs > TIMEOUT, "rank 2 is gone after %.1f s of wall time (got %d, %.2f s)", t, r, secs);
    pml_live_free(&l);
}

/* Rank 2 says it ended its run at t = 1 and goes silent: no wait on another peer ever
 * gives up for it, however long; a wait on rank 2 (or on no peer in particular) gives
 * up a timeout after the goodbye, with rank 2's reason, never as "silent". */
static void a_peer_that_ended_is_never_taken_for_dead(void)
{
    pml_live l;
    double secs = 0;
    start(&l);
    listen(&l, 0, 1, -1);
    pml_live_left(&l, STOPPED, 0, "it ended its run", 1);
    listen(&l, 1, 1 + 3 * TIMEOUT, STOPPED);
    double t = 1 + 3 * TIMEOUT;
    CHECK(pml_live_silent(&l, t, &secs) < 0, "an ended peer is not silent");
    CHECK(pml_live_gone(&l, 1, t, &secs) < 0, "a wait on rank 1 does not give up for rank 2");
    int r = pml_live_gone(&l, STOPPED, t, &secs);
    CHECK(r == STOPPED && l.state[r] == PML_LIVE_ENDED && !strcmp(l.why[r], "it ended its run"),
          "a wait on rank 2 gives up naming why it left (got %d)", r);
    CHECK(pml_live_gone(&l, -1, t, &secs) == STOPPED, "so does a wait on no peer in particular");
    pml_live_free(&l);
    start(&l);
    listen(&l, 0, 1, -1);
    pml_live_left(&l, STOPPED, 0, "it ended its run", 1);
    listen(&l, 1, 1 + TIMEOUT - 0.2, STOPPED);
    CHECK(pml_live_gone(&l, STOPPED, 1 + TIMEOUT - 0.2, &secs) < 0, "not before a timeout after the goodbye");
    pml_live_free(&l);
}

/* Rank 2 says it failed at t = 1: every wait gives up at once, naming its reason. */
static void a_peer_that_failed_is_gone_at_once_with_its_reason(void)
{
    pml_live l;
    double secs = 1;
    start(&l);
    listen(&l, 0, 1, -1);
    pml_live_left(&l, STOPPED, 1, "training failed on rank 2: disk full", 1);
    int r = pml_live_gone(&l, 1, 1.01, &secs);
    CHECK(r == STOPPED && secs == 0 && l.state[r] == PML_LIVE_FAILED &&
              !strcmp(l.why[r], "training failed on rank 2: disk full"),
          "a wait on rank 1 gives up for failed rank 2 at once (got %d, '%s')", r, r >= 0 ? l.why[r] : "");
    pml_live_left(&l, SELF, 1, "not a peer", 1); /* a goodbye from itself changes nothing */
    CHECK(l.state[SELF] == PML_LIVE_HERE, "this rank's own state stays");
    pml_live_free(&l);
}

/* A peer whose clock reads rank 0's + 1234.5 s, behind one-way delays that differ
 * each way and each round (as a busy machine's do): the estimate comes from the round
 * with the shortest trip, and the true offset lies within its bound. */
static void clock_offset_within_its_bound(void)
{
    const double skew = 1234.5;
    static const double out[] = {3e-3, 40e-6, 700e-6, 12e-6, 90e-6}, back[] = {1e-3, 300e-6, 5e-6, 80e-6, 2e-3};
    pml_clock_sample s[5];
    double t = 100;
    for (int i = 0; i < 5; i++) {
        s[i].sent = t;
        s[i].peer = t + out[i] + skew; /* when the ping arrived, on the peer's clock */
        s[i].back = t + out[i] + back[i];
        t += 0.01;
    }
    double offset, bound;
    pml_clock_best(s, 5, &offset, &bound);
    CHECK(fabs(bound - 0.5 * (12e-6 + 80e-6)) < 1e-12, "the bound is half the shortest round trip: %g", bound);
    CHECK(offset - bound <= skew && skew <= offset + bound, "%.9f +- %g holds %.9f", offset, bound, skew);
    for (int n = 1; n <= 5; n++) { /* whichever rounds it has, the bound holds */
        pml_clock_best(s, n, &offset, &bound);
        CHECK(offset - bound <= skew + 1e-9 && skew <= offset + bound + 1e-9, "%d rounds: %.9f +- %g", n, offset,
              bound);
    }
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*run)(void);
    } tests[] = {
        {"split", split},
        {"chunks", chunks_follow_their_device},
        {"env", env},
        {"silent_peer", a_silent_peer_is_named_after_the_timeout},
        {"stalled_observer", a_stalled_observer_blames_nobody_for_its_own_stall},
        {"stalled_observer_and_stopped_peer", a_stalled_observer_still_names_the_stopped_peer_and_only_it},
        {"slow_listener", a_slow_but_running_listener_keeps_wall_time},
        {"clock_offset", clock_offset_within_its_bound},
        {"ended_peer", a_peer_that_ended_is_never_taken_for_dead},
        {"failed_peer", a_peer_that_failed_is_gone_at_once_with_its_reason},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (argc > 1 && !strcmp(argv[1], tests[i].name)) {
            tests[i].run();
            if (!failures) printf("ok\n");
            return failures != 0;
        }
    printf("usage: test_ranks NAME\n");
    return 2;
}
