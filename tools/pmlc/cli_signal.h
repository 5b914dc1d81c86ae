/* cli_signal.h — how a pmlc command with nothing to save ends on a stop signal.
 *
 * `pmlc infer` (and any command like it: its work is lost anyway, and redoing it is the
 * only recovery) ends at once on SIGINT, SIGTERM or SIGUSR1 with exit status 128 + the
 * signal's number, as a shell reports a process the signal killed, after removing the
 * temporary files of the writes in progress (pml_remove_partial_files): an output being
 * replaced stays as it was, never half-written, and no PATH.tmp.* is left. An output
 * written in place (a device, a fifo, stdout) has nothing to remove: what reached it
 * stays. */
#ifndef PMLC_CLI_SIGNAL_H
#define PMLC_CLI_SIGNAL_H

/* Installs the handlers of SIGINT, SIGTERM and SIGUSR1 for the rest of the process;
 * returns 0, or -1 when sigaction fails (errno set). */
int pmlc_signal_end_at_once(void);

#endif
