/* onnx.h — a plan's model forward as an ONNX model, so that a model PML trained can be
 * served by ONNX Runtime, TensorRT or a browser (pml.h's pml_infer_export_onnx, `pmlc
 * export`).
 *
 * What is written: the nodes the plan's output depends on in the forward pass (not the
 * loss, the labels or a distillation teacher's), each primitive op as the ONNX
 * operators that compute it, in the plan's node order (already topological); the
 * parameters as f32 initializers under their plan names (cast where the plan stores
 * them in 16 bits), or, for `pmlc quantize`'s int8 linear weights, as INT8 initializers
 * with their `<name>.scale` and each x @ transpose(W) as the CPU backend's int8 product
 * (MatMulInteger; onnx.c, "int8 weights"); the plan's inputs as graph inputs under their
 * names and the output as `output` — f32 for a float model, as `pmlc infer` gives it.
 * An int8 weight read any other way is PML_ERR_UNSUPPORTED naming it. Dropout is the
 * identity, as in every PML inference. Shapes are the plan's, so the batch dimension is
 * the plan's micro-batch size (a serving engineer builds the plan with the batch
 * wanted: `--set batch=N --set microbatches=1`).
 *
 * The format: ONNX IR version 8 with the default domain at opset 17, which ONNX
 * Runtime 1.14 and later, TensorRT 8.6 and onnxruntime-web run. An op with no ONNX form
 * (a pad with a step, a loss) is PML_ERR_UNSUPPORTED naming the op and the value it
 * makes. A model whose file would pass protobuf's 2 GiB limit is refused (the external
 * data form is not written). */
#ifndef PML_PLAN_ONNX_H
#define PML_PLAN_ONNX_H

#include "core/error.h"
#include "formats/protobuf.h"
#include "plan/plan.h"

/* Writes the model into `out` (empty, owned by the caller). params[q] holds plan
 * parameter q's values, f32 in its shape. q8 and q8_scale (both NULL for an f32 model):
 * where q8[q] is not NULL, parameter q is an int8 linear weight (quant/int8.h: q8[q]
 * [out, in], q8_scale[q] [out]) and params[q] is not read; q8_in_scale (may be NULL) its
 * static activation scale, 0 where dynamic; see onnx.c's "int8 weights". */
pml_status pml_onnx_model(const pml_plan *plan, const float *const *params, const int8_t *const *q8,
                          const float *const *q8_scale, const float *q8_in_scale, pml_pb *out, pml_err *err);

#endif
