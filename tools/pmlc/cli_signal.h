/* cli_signal.h — how a pmlc command ends on a stop signal (SIGINT, SIGTERM, SIGUSR1).
 *
 * Ending at once: `pmlc infer` (and any command like it: its work is lost anyway, and
 * redoing it is the only recovery) ends at once with exit status 128 + the signal's
 * number, as a shell reports a process the signal killed, after removing the temporary
 * files of the writes in progress (pml_remove_partial_files): an output being replaced
 * stays as it was, never half-written, and no PATH.tmp.* is left. An output written in
 * place (a device, a fifo, stdout) has nothing to remove: what reached it stays.
 *
 * Stopping a run: `pmlc train` has work to keep. While a session is watched
 * (pmlc_signal_watch), the first stop signal asks its run to stop
 * (pml_session_request_stop: the run finishes its step, saves it into --out by the
 * commit protocol and returns), and a second one ends at once as above: the folder
 * then holds the checkpoint before that save or the saved one. With no session
 * watched (compiling, loading, or after the run) there is nothing to save, and the
 * first signal ends at once. */
#ifndef PMLC_CLI_SIGNAL_H
#define PMLC_CLI_SIGNAL_H

#include "pml.h"

/* Installs the handlers of SIGINT, SIGTERM and SIGUSR1 for the rest of the process;
 * returns 0, or -1 when sigaction fails (errno set). */
int pmlc_signal_end_at_once(void);

/* The session whose run a first signal stops, from now on; NULL: none. Once it returns
 * no handler touches the session watched before, which may then be destroyed. Call
 * from the main thread, after pmlc_signal_end_at_once. */
void pmlc_signal_watch(pml_session *s);

/* A stopped run's last word, on stderr: "stopped at step N by SIGTERM; resume with:
 * COMMAND" (COMMAND: argv as typed, without --resume and --init, with --resume OUT),
 * or that nothing was saved without --out. `world` > 1 says the ranks stopped together. */
void pmlc_signal_say_stopped(const pml_run_result *r, int argc, char *const *argv, const char *out, int world);

#endif
