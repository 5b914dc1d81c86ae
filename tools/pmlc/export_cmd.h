/* export_cmd.h — `pmlc export` (export_cmd.c). */
#ifndef PMLC_EXPORT_CMD_H
#define PMLC_EXPORT_CMD_H

#include "pmlc.h"

/* Writes the model of `file` (a program or plan file) with the weights `weights` as an
 * ONNX model at `out`. Returns the exit status: 0 written, 1 otherwise. */
int pmlc_export_main(const char *file, const pmlc_options *opt, const char *weights, const char *out, int quiet);

#endif
