/* quantize_cmd.h — `pmlc quantize FILE|PLAN --weights W [--layers P,...] [--calibrate X.npy]
 * -o Q.safetensors`. */
#ifndef PMLC_QUANTIZE_CMD_H
#define PMLC_QUANTIZE_CMD_H

#include "pmlc.h"

/* Writes int8 weights of `file`'s model from `weights` to `out`, the linear weights the
 * comma-separated `layers` patterns select (NULL: all), with static activation scales
 * from the rows of `calibrate` (NULL: per-row dynamic ones). Returns the exit status. */
int pmlc_quantize_main(const char *file, const pmlc_options *opt, const char *weights, const char *layers,
                       const char *calibrate, const char *out, int quiet);

#endif
