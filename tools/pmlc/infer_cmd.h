/* infer_cmd.h — `pmlc infer` (infer_cmd.c). */
#ifndef PMLC_INFER_CMD_H
#define PMLC_INFER_CMD_H

#include "pmlc.h"
#include "pml.h"

typedef struct pmlc_infer_args {
    const char *file;     /* the program or plan file */
    pmlc_options compile; /* -I, --set, --model, diagnostics */
    const char *weights;  /* model.safetensors, or a checkpoint folder */
    const char *input;    /* X.npy: N rows of the model input */
    const char *output;   /* Y.npy to write, or NULL (only with bench) */
    int bench;            /* time repeated passes over the input */
    const char *trace;    /* a Chrome trace of the timed forwards, or NULL */
    int threads;          /* 0: every CPU */
    pml_backend backend;  /* --backend (PML_BACKEND_AUTO unless asked) */
    const int *gpus;      /* --devices, as train's */
    int n_gpus;
    int devices_local; /* --devices local, as train's */
    int quiet;
} pmlc_infer_args;

/* Returns the exit status: 0 done, 1 otherwise. */
int pmlc_infer_main(const pmlc_infer_args *a);

#endif
