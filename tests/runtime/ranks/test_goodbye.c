/* test_goodbye.c — goodbyes between real ranks (liveness.h), over MPI
 * (exec/mpi/dist_mpi.h; ranks_test.py launches 3 processes under mpirun) or, with a
 * second argument "tcp", over TCP (exec/tcp/dist_tcp.h; tcp_ranks_test.py launches
 * them torchrun-style), with a short peer timeout:
 *
 *   ended   rank 1 ends its run at once. Rank 2 answers rank 0 only after three
 *           timeouts, and rank 0's wait on it succeeds: the silence of rank 1, which
 *           ended, is nobody's death. Then rank 0 waits on rank 1 itself, and gives up
 *           naming it as a rank that ended, never "has not answered".
 *   failed  rank 1 fails ("disk full on rank 1") and stays alive a while, silent; rank 2
 *           is alive but never sends: rank 0's wait on rank 2, with a long timeout,
 *           ends at once naming rank 1's reason.
 *
 * Rank 0 prints "RESULT ok" or "RESULT FAIL: ..."; the runner reads that line (the job
 * itself ends non-zero, since a rank that gave up does not finalize MPI). */
#define _DEFAULT_SOURCE /* usleep */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef PML_HAVE_MPI
#include "exec/mpi/dist_mpi.h"
#endif
#include "exec/ranks.h"
#include "exec/tcp/dist_tcp.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Leaves as a rank of pmlc that failed does: says so, stops its heartbeat, does not
 * finalize MPI (mpirun ends the job) or wait for the peers to close. */
static int leave(pml_dist *d, int rc)
{
    fflush(stdout);
    d->abandon(d, "the test is over");
    pml_dist_destroy(d);
    return rc;
}

int main(int argc, char **argv)
{
    int failed_mode = argc > 1 && !strcmp(argv[1], "failed"), tcp = argc > 2 && !strcmp(argv[2], "tcp");
    double timeout = failed_mode ? 60 : 2;
    pml_ranks env;
    pml_err err = {0};
    pml_dist *d = NULL;
    if (pml_ranks_from_env(&env, &err) || env.world != 3) {
        printf("RESULT FAIL: run me as 3 ranks (%s)\n", err.msg);
        return 1;
    }
    pml_status st = PML_ERR_UNSUPPORTED;
    if (tcp) {
        const char *port = getenv("MASTER_PORT");
        pml_dist_tcp_conf conf = {.devices = 3,
                                  .rank = env.rank,
                                  .world = 3,
                                  .replicas = 1,
                                  .master_addr = getenv("MASTER_ADDR"),
                                  .master_port = port ? atoi(port) : 0,
                                  .timeout_s = timeout};
        st = pml_dist_tcp_create(&conf, &d, &err);
    } else {
#ifdef PML_HAVE_MPI
        pml_dist_mpi_conf conf = {.devices = 3, .rank = env.rank, .world = 3, .replicas = 1, .timeout_s = timeout};
        st = pml_dist_mpi_create(&conf, &d, &err);
#else
        snprintf(err.msg, sizeof err.msg, "built without MPI");
#endif
    }
    if (st) {
        printf("RESULT FAIL: rank %d cannot start: %s\n", env.rank, err.msg);
        return 1;
    }
    double x = 1;
    if (d->sum(d, &x, 1, &err)) { /* every rank is up before rank 1 leaves */
        printf("RESULT FAIL: rank %d: %s\n", env.rank, err.msg);
        return 1;
    }
    int64_t word = 42;
    if (env.rank == 1) {
        if (failed_mode) {
            d->abandon(d, "disk full on rank 1");
            sleep(20); /* alive and silent: only the goodbye can tell rank 0 */
            return leave(d, 1);
        }
        pml_dist_destroy(d); /* ended its run: goodbye, then MPI_Finalize or the sockets closed */
        return 0;
    }
    if (env.rank == 2) { /* failed: beats, but never sends */
        if (!failed_mode) usleep((useconds_t)(3 * timeout * 1e6));
        if (!failed_mode && d->move(d, 2, 0, &word, sizeof word, &err)) printf("rank 2: %s\n", err.msg);
        sleep(failed_mode ? 20 : 3); /* until rank 0 has judged */
        return leave(d, 0);
    }
    double t0 = now();
    int64_t got = 0;
    st = d->move(d, 2, 0, &got, sizeof got, &err);
    double took = now() - t0;
    if (failed_mode) {
        if (!st || !strstr(err.msg, "rank 1 stopped: disk full on rank 1") || took > 10)
            printf("RESULT FAIL: the wait on rank 2 must end at once naming rank 1's failure (%.1f s): %s\n", took,
                   st ? err.msg : "it succeeded");
        else
            printf("RESULT ok (%.1f s): %s\n", took, err.msg);
        return leave(d, 0);
    }
    if (st || got != 42) {
        printf("RESULT FAIL: the wait on rank 2 gave up after %.1f s while rank 1 had only ended: %s\n", took,
               err.msg);
        return leave(d, 1);
    }
    st = d->move(d, 1, 0, &got, sizeof got, &err);
    if (!st || !strstr(err.msg, "rank 1 stopped: it ended its run") || strstr(err.msg, "has not answered"))
        printf("RESULT FAIL: a wait on rank 1, which ended, must name it as ended: %s\n", st ? err.msg : "succeeded");
    else
        printf("RESULT ok (rank 2 answered after %.1f s): %s\n", took, err.msg);
    return leave(d, 0);
}
