/* cli_signal.c — see cli_signal.h. The handler does only async-signal-safe things:
 * atomic loads and stores (inside pml_session_request_stop too), unlink (inside
 * pml_remove_partial_files) and _exit. */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include "cli_signal.h"

#include "cli_util.h"

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int caught;                /* the first stop signal (0: none yet) */
static _Atomic(pml_session *) watched;   /* the session a first signal stops (NULL: none) */
static atomic_int handling;              /* handlers between reading `watched` and done with it */

/* Not instrumented by ASan: before a call that does not return (_exit) it unpoisons the
 * stack it believes the thread is on, and a signal that lands in oneDNN's JIT code finds
 * it elsewhere: a false report, in a handler that touches no memory of its own. */
__attribute__((no_sanitize_address)) static void end_at_once(int sig)
{
    pml_remove_partial_files();
    _exit(128 + sig);
}

__attribute__((no_sanitize_address)) static void on_stop(int sig)
{
    int none = 0;
    if (!atomic_compare_exchange_strong(&caught, &none, sig)) end_at_once(sig); /* the second signal */
    atomic_fetch_add(&handling, 1);
    pml_session *s = atomic_load(&watched);
    if (s) pml_session_request_stop(s, sig);
    atomic_fetch_sub(&handling, 1);
    if (!s) end_at_once(sig); /* nothing to save */
}

int pmlc_signal_end_at_once(void)
{
    static const int stops[] = {SIGINT, SIGTERM, SIGUSR1};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART; /* a first signal returns to the run: its reads and writes go on, not fail with EINTR */
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++)
        if (sigaction(stops[i], &sa, NULL) != 0) return -1;
    return 0;
}

void pmlc_signal_watch(pml_session *s)
{
    atomic_store(&watched, s);
    /* A handler that read the old session before the store is done with it once this
     * count is 0; one that starts later reads the new value (both are sequentially
     * consistent). A handler on this very thread has returned before we go on. */
    while (atomic_load(&handling)) sched_yield();
}

/* The name of a stop signal pmlc handles ("signal N" for another, as another rank's
 * program could have asked with any). */
static void signal_name(int sig, char *buf, size_t cap)
{
    const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1" : NULL;
    if (name)
        snprintf(buf, cap, "%s", name);
    else if (sig)
        snprintf(buf, cap, "signal %d", sig);
    else
        snprintf(buf, cap, "a stop request");
}

void pmlc_signal_say_stopped(const pml_run_result *r, int argc, char *const *argv, const char *out, int world)
{
    char name[32], where[48] = "";
    signal_name(r->stop_signal, name, sizeof name);
    if (world > 1) snprintf(where, sizeof where, " on rank %d (all %d ranks stopped there)", r->stop_rank, world);
    fprintf(stderr, "pmlc: stopped at step %lld by %s%s; ", (long long)r->stop_step, name, where);
    if (!r->stop_saved || !out) {
        fputs("nothing was saved (no --out)\n", stderr);
        return;
    }
    pmlc_cli_say_resume(argc, argv, out, world);
}
