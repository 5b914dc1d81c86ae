/* onnx.h — a plan's model forward as an ONNX model, so that a model PML trained can be
 * served by ONNX Runtime, TensorRT or a browser (pml.h's pml_infer_export_onnx, `pmlc
 * export`).
 *
 * What is written: the nodes the plan's output depends on in the forward pass (not the
 * loss, the labels or a distillation teacher's), each primitive op as the ONNX
 * operators that compute it, in the plan's node order (already topological); the
 * parameters as f32 initializers under their plan names (cast where the plan stores
 * them in 16 bits); the plan's inputs as graph inputs under their names and the output
 * as `output` — f32 for a float model, as `pmlc infer` gives it. Dropout is the
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
 * parameter q's values, f32 in its shape. */
pml_status pml_onnx_model(const pml_plan *plan, const float *const *params, pml_pb *out, pml_err *err);

#endif
