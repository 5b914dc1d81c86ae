/* cli_signal.c — see cli_signal.h. The handler does only async-signal-safe things:
 * unlink (inside pml_remove_partial_files) and _exit. */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include "cli_signal.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "pml.h"

/* Not instrumented by ASan: before a call that does not return (_exit) it unpoisons the
 * stack it believes the thread is on, and a signal that lands in oneDNN's JIT code finds
 * it elsewhere: a false report, in a handler that touches no memory of its own. */
__attribute__((no_sanitize_address)) static void end_at_once(int sig)
{
    pml_remove_partial_files();
    _exit(128 + sig);
}

int pmlc_signal_end_at_once(void)
{
    static const int stops[] = {SIGINT, SIGTERM, SIGUSR1};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = end_at_once;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++)
        if (sigaction(stops[i], &sa, NULL) != 0) return -1;
    return 0;
}
