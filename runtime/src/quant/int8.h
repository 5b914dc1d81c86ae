/* int8.h — post-training int8 weights: symmetric per-output-channel quantization of a
 * model's linear-layer weights, the file that holds them, and reading it back.
 *
 * The file (README.md, "pmlc quantize"): a safetensors file whose metadata has
 * PML_QUANT_KEY = PML_QUANT_FORMAT. A quantized weight W [out, in] is stored as
 *   <name>        I8  [out, in]  q = round_half_even(W / s) clamped to [-127, 127]
 *   <name>.scale  F32 [out]      s[o] = max_i |W[o, i]| / 127 (1 for an all-zero row)
 * so W[o, i] ~= q[o, i] * s[o], off by at most s[o] / 2. Every other tensor is as in a
 * weights file (F32, the parameter's shape). -128 is never written, so the range is
 * symmetric and -q never overflows. A calibrated file (`pmlc quantize --calibrate`) also
 * holds, for every int8 weight, and has metadata PML_QUANT_ACT_KEY = PML_QUANT_ACT_STATIC,
 *   <name>.input_scale  F32 [1]  a = max |x| / 127 over every input x of the layer's
 *                                products in the f32 forward of the calibration rows
 * and its products quantize their input with that static scale, q(x) = round(x * (1 / a))
 * clamped to [-127, 127], instead of each row's own max|x_row| / 127 (written without
 * calibration: PML_QUANT_ACT_KEY = PML_QUANT_ACT_DYNAMIC; a file without the key, as
 * older writers made, is dynamic too).
 *
 * Which weights: a parameter is a linear layer's weight when it is rank 2 and a
 * forward matmul reads it transposed as its right operand (x @ transpose(W), the
 * stdlib's `linear`): its rows are the output channels. Embeddings (gathered), norms and
 * biases (rank 1) are never linear weights.
 *
 * Reading (pml_quant_load) checks the whole file before it writes any parameter: the
 * format key, every model parameter present, each I8 one a linear weight with its
 * shape and a .scale of [out] F32 values that are finite and > 0, each F32 one finite
 * with its shape; either no .input_scale or one for every I8 weight, each F32 [1],
 * finite and > 0, and none for a weight that is not I8; PML_QUANT_ACT_KEY absent or
 * matching what the file holds; nothing else in the file.
 * Errors are PML_ERR_FORMAT "PATH: tensor 'x': what is wrong". */
#ifndef PML_QUANT_INT8_H
#define PML_QUANT_INT8_H

#include <stdint.h>

#include "core/error.h"
#include "exec/pipeline.h"
#include "plan/plan.h"

#define PML_QUANT_KEY "pml_quantization"
#define PML_QUANT_FORMAT "int8-symmetric-per-output-channel"
#define PML_QUANT_SCALE_SUFFIX ".scale"
#define PML_QUANT_INPUT_SCALE_SUFFIX ".input_scale"
#define PML_QUANT_ACT_KEY "pml_activation_quantization"
#define PML_QUANT_ACT_STATIC "static-per-tensor-absmax"
#define PML_QUANT_ACT_DYNAMIC "dynamic-per-row-absmax"

/* Rows of w [rows, cols] to q (int8, same shape) and scale [rows], as the file above. */
void pml_quant_rows_i8(const float *w, int64_t rows, int64_t cols, int8_t *q, float *scale);
/* q * scale back to floats. */
void pml_quant_dequant_rows_i8(const int8_t *q, const float *scale, int64_t rows, int64_t cols, float *w);

/* is_linear[q] for every plan parameter (n_params entries): as defined above. */
void pml_quant_linear_weights(const pml_plan *plan, uint8_t *is_linear);

/* Whether the safetensors file at `path` (a file, not a folder) says it holds int8
 * weights; 0 for anything else, unreadable included (the ordinary reader then says
 * what is wrong with it). */
int pml_quant_is_quantized(const char *path);

/* A quantized file's int8 weights as read, per plan parameter (n entries): q[k] [out, in]
 * and scale[k] [out], each its own allocation, both NULL where parameter k is not int8.
 * What an inference session keeps for its ONNX export (plan/onnx.h). */
typedef struct pml_quant_i8 {
    int n;
    int8_t **q;
    float **scale;
    float *in_scale; /* n entries: the static activation scale, 0 where dynamic */
} pml_quant_i8;

/* Frees what `k` holds and zeroes it (a zeroed one is fine). */
void pml_quant_i8_free(pml_quant_i8 *k);

/* Checks the quantized file at `path` against `plan` and, only when all is well, writes
 * every model parameter of `p` (dequantized: what training and --init start from).
 * *n_int8: how many weights were int8. With `serve_int8` (an inference session), each
 * int8 weight is also handed to the backend to compute its products in int8
 * (pml_pipeline_param_int8), and *n_served (may be NULL) counts those it took: the
 * others are served in f32 from the dequantized values. With `keep` (may be NULL; zeroed
 * on entry), the int8 weights are also copied into it; on failure it is left empty. */
pml_status pml_quant_load(const pml_plan *plan, pml_pipeline *p, const char *path, int serve_int8, pml_quant_i8 *keep,
                          int *n_int8, int *n_served, pml_err *err);

/* Writes `out` from the weights at `weights` (what `pmlc infer --weights` takes): the
 * parameters select[] marks (linear weights only: others are PML_ERR_INVALID_ARG) as
 * int8, every other tensor copied as is; atomically. in_scale (NULL: dynamic
 * activations): per parameter, the static activation scale of each selected one (finite,
 * > 0), written as its .input_scale. *n_done: how many were quantized. */
pml_status pml_quant_write(const pml_plan *plan, const char *weights, const uint8_t *select, const float *in_scale,
                           const char *out, int *n_done, pml_err *err);

#endif
