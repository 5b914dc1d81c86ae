/* train_cmd.h — `pmlc train` (train_cmd.c). */
#ifndef PMLC_TRAIN_CMD_H
#define PMLC_TRAIN_CMD_H

#include <stdint.h>

#include "pmlc.h"
#include "pml.h"

typedef struct pmlc_train_args {
    const char *file;     /* the program */
    pmlc_options compile; /* -I, --set, --model, diagnostics */
    int64_t steps;        /* -1: the train block's */
    int64_t seed;         /* -1: the train block's */
    int threads;          /* 0: every CPU */
    pml_backend backend;  /* --backend (PML_BACKEND_AUTO unless asked) */
    const int *gpus;      /* --devices: the GPU of the plan's cuda:N is gpus[N] (pml_context_set_devices) */
    int n_gpus;           /* 0: not given */
    int devices_local;    /* --devices local: every stage device on the local rank's GPU */
    const char *out;      /* folder for model.safetensors, or NULL */
    const char *metrics;  /* JSONL file, or NULL */
    const char *trace;    /* Chrome trace JSON file, or NULL */
    const char *timeline; /* SVG picture of one measured step, or NULL */
    int64_t eval;         /* held-out batches evaluated after training (0: none) */
    const char *init;     /* weights to start from (safetensors), or NULL */
    const char *resume;   /* checkpoint folder to continue from, or NULL */
    int quiet;
    int rank, world;     /* --rank, --world (-1: the launcher's environment; see train_ranks.h) */
    double peer_timeout; /* --peer-timeout: seconds of silence before a rank counts as gone (0: 60) */
    int replicas;        /* --replicas: data-parallel pipelines the ranks form (0: 1) */
    int check_numerics;  /* --check-numerics: every op's output checked (CPU backend) */
    int argc;            /* the command line as typed: a stopped run's resume line repeats it */
    char *const *argv;
} pmlc_train_args;

/* Returns the exit status: 0 trained (and wrote what was asked); 128 + the signal's
 * number when SIGINT, SIGTERM or SIGUSR1 stopped the run (its step saved into --out,
 * cli_signal.h); 3 trained and saved, but a log (--metrics, --trace, the progress on
 * stderr) could not be written whole (said when it happened); 1 otherwise. */
int pmlc_train_main(const pmlc_train_args *a);

#endif
