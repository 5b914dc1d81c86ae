/* pml.h — the one public header of libpml, the PML runtime.
 *
 * The runtime loads a plan made by pmlc and trains or serves it as a micro-batch
 * pipeline. This header grows with it; everything here is C99, sized integers and
 * opaque handles, with no CUDA types.
 *
 * Errors: every function that can fail returns a pml_status; PML_OK is 0. The library
 * never prints and never exits; a failing call that takes a context leaves a message
 * in it (pml_context_error).
 *
 * Arguments: every function checks its arguments and refuses a bad one with
 * PML_ERR_INVALID_ARG, never a crash: a NULL handle, pointer or out-pointer (unless its
 * comment calls it optional, as the metrics of pml_session_train_step), a negative count
 * or size, an index out of range, a buffer of the wrong size, a dtype or backend outside
 * its enum, or a call in the wrong order (a session's call from inside its own feeder or
 * metrics callback). The message, in the context of the handle when there is one, names
 * the call and the argument ("pml_session_read: dst is NULL"); a NULL context or handle
 * has no context to hold one. A handle's out-pointer is set to NULL on every failure, so
 * a call after a failed create is refused, not run on garbage. Functions that return a
 * pointer return NULL for a bad argument, those that return a count or an index -1 (the
 * sole exception, pml_plan_seed, returns 0); destroy and close functions accept NULL.
 * Other failures leave the object usable and as it was unless their comment says
 * otherwise.
 *
 * Thread safety: pml_version, pml_status_name, pml_dtype_size, pml_dtype_name and
 * pml_remove_partial_files may be called from any thread. A context, and the plans and sessions made with it, are used
 * by one thread at a time; separate contexts are independent, and the one exception is
 * pml_session_request_stop, which any thread or signal handler may call on a live
 * session while another thread runs it. A session runs its pipeline's stages on threads
 * of its own inside each call.
 *
 * Lifetimes: a session or inference handle holds the context and the plan it was made
 * with (a pml_infer made from a session, the session's plan and context) until it is
 * destroyed, so pml_plan_close and pml_context_destroy may come before or after the
 * handles made from them: each releases the caller's hold, and the object is freed
 * when the last holder goes. What a caller has closed it must not use again, but a
 * handle made from it stays usable (with its context destroyed, its statuses are all
 * there is to read: the messages go to a context the caller no longer has). Holds are
 * counted atomically: handles of one plan may be destroyed on different threads.
 *
 * Use:
 *   pml_context *ctx;  pml_context_create(&ctx);
 *   pml_plan *plan;    pml_plan_open(ctx, "model.plan", &plan);   (or pml_plan_open_memory)
 *   pml_session *s;    pml_session_create(ctx, plan, PML_BACKEND_CPU, seed, &s);
 *   for (...)          pml_session_train_step(s, &metrics);
 *                      pml_session_read(s, "fc1.weight", buf, n);
 *   pml_session_destroy(s); pml_plan_close(plan); pml_context_destroy(ctx);
 *
 * Exports: libpml is built with hidden visibility, so a function is part of libpml.so's
 * interface only when its declaration here starts with PML_API. Every function this
 * header declares must carry it, and nothing else is exported: the test
 * install.the_shared_libraries_export_exactly_the_public_api compares libpml.so's
 * dynamic symbol table with the functions declared here. */
#ifndef PML_H
#define PML_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a function exported from libpml.so (see "Exports" above). */
#if defined(__GNUC__) || defined(__clang__)
#define PML_API __attribute__((visibility("default")))
#else
#define PML_API
#endif

#define PML_VERSION_MAJOR 0
#define PML_VERSION_MINOR 1
#define PML_VERSION_PATCH 0

/* The version of the library linked, as "MAJOR.MINOR.PATCH". */
PML_API const char *pml_version(void);

typedef enum pml_status {
    PML_OK = 0,
    PML_ERR_INVALID_ARG, /* a caller's mistake: a bad argument or call order */
    PML_ERR_IO,          /* a file could not be read or written */
    PML_ERR_FORMAT,      /* a file's contents are malformed or hostile */
    PML_ERR_NOMEM,       /* an allocation failed */
    PML_ERR_UNSUPPORTED, /* valid, but not supported by this build or backend */
    PML_ERR_DEVICE,      /* a device failed or is missing */
    PML_ERR_INTERNAL,    /* a bug in PML */
    PML_ERR_NONFINITE,   /* a value is NaN or infinite: computed (a diverging run) or read from a file */
    PML_ERR_PEER         /* another rank of the run failed and said why there (the message repeats it) */
} pml_status;

/* A short constant name for a status: "ok", "invalid argument", ... */
PML_API const char *pml_status_name(pml_status s);

/* Element types. The first four are the ones PML computes in; the others appear in
 * data files (.npy) and are converted on load. */
typedef enum pml_dtype { PML_F32, PML_BF16, PML_F16, PML_I32, PML_F64, PML_I64, PML_U8, PML_I8, PML_DTYPE_COUNT } pml_dtype;

/* Bytes per element, 0 for an unknown dtype. */
PML_API size_t pml_dtype_size(pml_dtype t);
/* "f32", "bf16", ...; "?" for an unknown dtype. */
PML_API const char *pml_dtype_name(pml_dtype t);

/* ---- contexts ------------------------------------------------------------------ */

typedef struct pml_context pml_context;

PML_API pml_status pml_context_create(pml_context **out);
PML_API void pml_context_destroy(pml_context *ctx);
/* The message of the last call on `ctx` that failed ("" when none); owned by ctx. */
PML_API const char *pml_context_error(const pml_context *ctx);

/* ---- plans ------------------------------------------------------------------------ */

/* A compiled model: what `pmlc build` writes. Immutable once opened. */
typedef struct pml_plan pml_plan;

PML_API pml_status pml_plan_open(pml_context *ctx, const char *path, pml_plan **out);
/* From plan-file bytes in memory (copied; `name` labels messages). */
PML_API pml_status pml_plan_open_memory(pml_context *ctx, const void *bytes, size_t len, const char *name,
                                        pml_plan **out);
PML_API void pml_plan_close(pml_plan *plan);
/* The model's parameters, -1 for a NULL plan. A weight tied across stages is one
 * parameter here as in checkpoints (docs/language.md); pml_session_write sets every
 * stage's copy of it. */
PML_API int pml_plan_param_count(const pml_plan *plan);
/* Parameter `i`'s name (as in checkpoints: "blocks.3.attn.qkv.weight") and element count;
 * NULL and -1 for an index out of range. */
PML_API const char *pml_plan_param_name(const pml_plan *plan, int i);
PML_API int64_t pml_plan_param_numel(const pml_plan *plan, int i);

/* ---- sessions ----------------------------------------------------------------------- */

typedef enum pml_backend { PML_BACKEND_CPU, PML_BACKEND_CUDA, PML_BACKEND_AUTO } pml_backend;

/* A backend by the name pmlc's --backend takes ("cpu", "cuda", "auto"): PML_OK and *out
 * set, or PML_ERR_INVALID_ARG for another name (*out untouched). */
PML_API pml_status pml_backend_parse(const char *name, pml_backend *out);

/* The backend that runs `plan` when `want` is asked for, as pml_session_create resolves
 * it (PML_BACKEND_CPU or PML_BACKEND_CUDA into *got), with the context's GPU remap
 * (pml_context_set_devices). CPU runs any plan. AUTO follows the plan's stage -> device
 * map (the train block's `place`): the CPU for cpu devices, CUDA for cuda devices, never
 * the CPU instead of a GPU; a plan older than the map (format < 15) gets CUDA when a GPU
 * is usable and the plan has GPU code, else the CPU. CUDA (asked, or chosen by AUTO)
 * needs a usable GPU and every GPU the map names (after the remap): otherwise
 * PML_ERR_UNSUPPORTED naming the map and the reason (and, with no GPU, --backend cpu);
 * a remap that does not fit the plan or the machine is PML_ERR_INVALID_ARG. */
PML_API pml_status pml_backend_choose(pml_context *ctx, const pml_plan *plan, pml_backend want, pml_backend *got);
/* Which of this machine's GPUs a plan's cuda:N devices run on, for every backend choice,
 * session and inference handle made with `ctx` from now on (`pmlc train/infer
 * --devices`): cuda:N on GPU gpus[N]. n is one more than the largest N the plan names
 * (checked, with the machine's GPU count, when the backend is chosen); several may name
 * one GPU (--devices 0,0,0,0 runs a four-GPU plan on one). n 0 (gpus may be NULL): no
 * remap, cuda:N on GPU N. PML_ERR_INVALID_ARG for n outside 0..1024 or a negative GPU,
 * the previous remap kept. */
PML_API pml_status pml_context_set_devices(pml_context *ctx, const int *gpus, int n);
/* One GPU for every stage device of this process, whatever the plan's cuda:N: the GPU
 * numbered by the launcher's local rank (OMPI_COMM_WORLD_LOCAL_RANK from mpirun,
 * SLURM_LOCALID from srun, LOCAL_RANK from torchrun; torchrun's before Slurm's when
 * MASTER_ADDR is set), torchrun's one GPU per process (`pmlc train/infer --devices
 * local`). Read now, for every backend choice, session and inference handle made with
 * `ctx` from now on, in place of any pml_context_set_devices remap (which in turn
 * replaces this). A CPU run refuses it, as it does a remap; a local rank at or past the
 * machine's GPU count is refused when the backend is chosen. PML_ERR_INVALID_ARG when no
 * launcher set a local rank or it is not a number from 0, the previous setting kept. */
PML_API pml_status pml_context_set_devices_local(pml_context *ctx);
/* The GPU target of this machine's device 0 ("sm_90" into buf, cap bytes), for compiling
 * a model's kernels for it (pmlc.h); PML_ERR_DEVICE when there is no usable device. */
PML_API pml_status pml_gpu_arch(char *buf, size_t cap);

/* A plan made ready to train: parameters initialised from `seed`, data source opened.
 * The backend is resolved as pml_backend_choose says (AUTO follows the plan's `place`
 * map; a GPU-placed plan without a usable GPU is PML_ERR_UNSUPPORTED with the reason in
 * pml_context_error); a plan lacking code for the GPU is refused naming the `pmlc build
 * --arch` that makes it. The CPU kernels share the machine's CPUs among the stages,
 * as pml_session_open's `threads` 0 does (which sets another count). The session
 * holds its plan and context (see "Lifetimes" above). */
typedef struct pml_session pml_session;

PML_API pml_status pml_session_create(pml_context *ctx, const pml_plan *plan, pml_backend backend, uint64_t seed,
                                      pml_session **out);
PML_API void pml_session_destroy(pml_session *s);

/* What one step did. It grows only at its end (ABI policy: a field is never moved or
 * removed; before 1.0 a minor version may append fields, and a program that allocates
 * one is rebuilt against the pml.h of the library it runs with). */
typedef struct pml_step_metrics {
    int64_t step;     /* steps done after this one */
    double loss;      /* mean over the global batch */
    double grad_norm; /* before clipping */
    double lr;
    double seconds;      /* wall time of the step's pipeline work (forward, backward, update) */
    double feed_seconds; /* wall time getting the batch: the feeder, checking and converting caller rows */
    int64_t samples;     /* rows in the global batch */
    /* precision = f16's dynamic loss scaling (1 and 0 otherwise): the scale the step ran
     * with, and whether its gradients overflowed so that it updated nothing (its
     * grad_norm is then not finite, and the scale backs off for the next step) */
    double loss_scale;
    int skipped;
} pml_step_metrics;

/* One optimizer step on the next global batch: from the feeder when one is set
 * (pml_session_set_feeder), else from the plan's data source (PML_ERR_INVALID_ARG when
 * the plan names none). `metrics` is optional. */
PML_API pml_status pml_session_train_step(pml_session *s, pml_step_metrics *metrics);
/* Copies parameter `name`'s f32 values out of / into the session (count must equal its
 * element count). */
PML_API pml_status pml_session_read(pml_session *s, const char *name, float *dst, int64_t count);
PML_API pml_status pml_session_write(pml_session *s, const char *name, const float *src, int64_t count);

/* ---- caller data: tensors, training and evaluation on caller buffers ----------------
 *
 * Thread safety: as their session's (one thread at a time); callbacks run on the thread
 * that made the call, never on the session's stage threads, and must not call back into
 * the same session. */

#define PML_MAX_RANK 8

/* A tensor of the model: its name, element type and shape. */
typedef struct pml_tensor_info {
    const char *name; /* owned by the plan ("x", "labels", "fc1.weight") */
    pml_dtype dtype;
    int rank;
    int64_t dims[PML_MAX_RANK];
} pml_tensor_info;

/* Rows the caller owns: dims[0] rows of dims[1..], packed row-major, of `dtype`. The
 * library reads `data` during the call only. A model's f32 input takes f32, f64, i32,
 * i64 or u8 rows, an i32 input (and class labels) i32, i64 (each value within i32) or
 * u8, as `pmlc train` converts .npy files; values must be finite and class labels lie
 * in [0, classes). */
typedef struct pml_buffer {
    const void *data;
    pml_dtype dtype;
    int rank;
    int64_t dims[PML_MAX_RANK];
    const char *source; /* where the rows come from (a file's path), starting messages about them; NULL: the call */
} pml_buffer;

/* The global batch a step takes and the micro-batch it is cut into (rows); either
 * out-pointer is optional, and a NULL plan gives 0 and 0. */
PML_API void pml_plan_batch(const pml_plan *plan, int64_t *batch, int64_t *microbatch);
/* -1 for a NULL plan. */
PML_API int pml_plan_input_count(const pml_plan *plan);
/* Model input `i`, the labels, the output: dims[0] is the global batch (what a train
 * step takes; inference takes any number of rows of dims[1..]); the dtype is the one
 * the model computes in (f32 or i32), which the feeder writes. PML_ERR_INVALID_ARG for
 * an index out of range, PML_ERR_UNSUPPORTED for a model without labels. */
PML_API pml_status pml_plan_input_info(const pml_plan *plan, int i, pml_tensor_info *out);
PML_API pml_status pml_plan_labels_info(const pml_plan *plan, pml_tensor_info *out);
PML_API pml_status pml_plan_output_info(const pml_plan *plan, pml_tensor_info *out);
/* Parameter `i`: its name, its shape, and f32 (the master weights pml_session_read and
 * pml_session_write copy). pml_plan_param_find: its index by name, -1 when none. */
PML_API pml_status pml_plan_param_info(const pml_plan *plan, int i, pml_tensor_info *out);
PML_API int pml_plan_param_find(const pml_plan *plan, const char *name);

/* One optimizer step on the caller's global batch: inputs[k] is model input k (all
 * pml_plan_input_count of them), with dims[0] the global batch and dims[1..] the
 * input's; labels likewise. Micro-batch m gets rows m·microbatch.. in order, the cut
 * `pmlc train` makes of the rows it draws for a step, so a step on the rows
 * pml_session_batch gives equals pml_session_train_step's, bit for bit. A buffer that
 * does not fit is PML_ERR_INVALID_ARG (a dtype that cannot convert:
 * PML_ERR_UNSUPPORTED, a NaN: PML_ERR_NONFINITE) naming the input and both shapes;
 * nothing is trained then. */
PML_API pml_status pml_session_train_batch(pml_session *s, const pml_buffer *inputs, int n_inputs,
                                           const pml_buffer *labels, pml_step_metrics *metrics);

/* The library asks for each step's batch: called by pml_session_train_step (and
 * pml_session_train) with the step's 0-based number; it fills inputs[k] (pml_plan_input_info's
 * shape and dtype, the global batch) and labels likewise, in buffers the session owns.
 * Returns 0, or non-zero to fail the step (PML_ERR_INVALID_ARG naming the step and the
 * value; nothing is trained). The rows are checked as pml_session_train_batch's. */
typedef int (*pml_feeder_fn)(void *user, int64_t step, void *const *inputs, void *labels);
/* Sets the feeder (NULL: back to the plan's data source; `user` is the caller's, any value). */
PML_API pml_status pml_session_set_feeder(pml_session *s, pml_feeder_fn fn, void *user);

/* Called after every step taken (train_step, train_batch, train) with its metrics,
 * owned by the library for the call. A non-zero return stops pml_session_train after
 * this step; other calls ignore it. NULL: none. */
typedef int (*pml_metrics_fn)(void *user, const pml_step_metrics *m);
PML_API pml_status pml_session_set_metrics(pml_session *s, pml_metrics_fn fn, void *user);

/* Up to `steps` steps as pml_session_train_step, stopping early when the metrics
 * callback asks; *done (may be NULL) receives the steps taken, also on failure. */
PML_API pml_status pml_session_train(pml_session *s, int64_t steps, int64_t *done);

/* The rows of the plan's data source that step `step` trains on (what
 * pml_session_train_step feeds it), into caller buffers laid out as the feeder's. */
PML_API pml_status pml_session_batch(pml_session *s, int64_t step, void *const *inputs, void *labels);

/* Evaluation of the current weights on caller rows, as `pmlc train`'s eval records: the
 * model forward with dropout off, the loss averaged over micro-batches, and for class
 * labels the share of rows whose largest output is the label (NaN otherwise). The rows
 * (dims[0], the same in every buffer) are a whole number of global batches, cut as
 * pml_session_train_batch cuts one. Weights, optimizer state and step are unchanged. */
typedef struct pml_eval_result {
    int64_t rows;
    double loss;
    double accuracy;
} pml_eval_result;
PML_API pml_status pml_session_evaluate(pml_session *s, const pml_buffer *inputs, int n_inputs,
                                        const pml_buffer *labels, pml_eval_result *out);

/* ---- inference: the model forward on caller rows ------------------------------------
 *
 * A pml_infer holds a model's weights and buffers for one micro-batch; each run cuts the
 * caller's N rows (any N >= 0) into micro-batches of the plan's size, pads the last with
 * zeros and drops its extra outputs, as `pmlc infer` does (which calls it). Dropout is
 * off; only the nodes the output needs run. Thread safety: one thread at a time per
 * pml_infer (its context too); separate ones, also of one plan, are independent. */
typedef struct pml_infer pml_infer;

/* The most CPU threads a call takes (more is PML_ERR_INVALID_ARG). */
#define PML_MAX_THREADS 4096

/* `weights`: whatever `pmlc infer --weights` takes (a model.safetensors, a shard index,
 * a checkpoint folder or a folder of plain weights); NULL: the plan's initialisers from
 * its seed. threads: CPU threads per stage, 0 every CPU, at most PML_MAX_THREADS. It
 * holds its plan and context (see "Lifetimes" above). */
PML_API pml_status pml_infer_create(pml_context *ctx, const pml_plan *plan, pml_backend backend, int threads,
                                    const char *weights, pml_infer **out);
/* With a training session's current weights, copied (later steps do not change them),
 * on the session's backend and context. */
PML_API pml_status pml_infer_create_from_session(pml_session *s, int threads, pml_infer **out);
PML_API void pml_infer_destroy(pml_infer *inf);
/* How many weights the handle read as int8 (a `pmlc quantize` file), and how many of
 * those it computes with in int8: each forward linear product (x @ W^T of f32 x) on such
 * a weight quantizes x's rows on the fly (symmetric, max|row| / 127; or, from a
 * calibrated file, with its static scale, clamped to +-127), sums in int32
 * (oneDNN's gemm_s8s8s32, VNNI where the CPU has it) and scales back, on the CPU
 * backend. The rest (another backend's, or weights no f32 linear product reads) are
 * served in f32, dequantized (q * scale) once at load. pml_infer_int8_note: one line
 * saying so (NULL without int8 weights), owned by the handle. */
PML_API int pml_infer_int8_weights(const pml_infer *inf);
PML_API int pml_infer_int8_served(const pml_infer *inf);
PML_API const char *pml_infer_int8_note(const pml_infer *inf);
/* The output of `rows` rows: dims[0] = rows, then the model output's; f32 for a float
 * output, i32 for an i32 one. */
PML_API pml_status pml_infer_output(pml_infer *inf, int64_t rows, pml_tensor_info *out);
/* The model forward on inputs[k]'s rows (dims[0] = N in every buffer, dims[1..] the
 * input's): the N output rows into `out`, which holds out_bytes (at least the
 * pml_infer_output size). Buffers are checked as pml_session_train_batch's. */
PML_API pml_status pml_infer_run(pml_infer *inf, const pml_buffer *inputs, int n_inputs, void *out, size_t out_bytes);
/* A Chrome trace (chrome://tracing, Perfetto; the format of pml_run_options.trace) of
 * the next `forwards` micro-batch forwards of pml_infer_run (one per micro-batch of a
 * call's rows, numbered 1, 2, ... as the spans' "step"): one "op" span per op or fused
 * kernel run, on the stage's thread, with the CPU time that thread spent in it
 * (args.cpu_us), and one "op_thread" span per pool thread that took part in it, with its
 * own CPU time. `path` is checked here (a path that cannot be written fails before any
 * work) and written by pml_infer_trace_save, atomically. One trace per handle; CPU
 * backend only (PML_ERR_UNSUPPORTED otherwise). A traced forward reads the clocks around
 * each op (about a microsecond per op and thread); the others read none. */
PML_API pml_status pml_infer_trace(pml_infer *inf, const char *path, int64_t forwards);
PML_API pml_status pml_infer_trace_save(pml_infer *inf);
/* The model the handle serves, with its weights, as an ONNX model file at `path` (the
 * output rule below: atomically replaced), for ONNX Runtime, TensorRT or a browser:
 * ONNX IR 8, opset 17; the inputs under the plan's input names, the output as `output`
 * (f32, or i32 for an i32 output, as pml_infer_run gives it); dropout is off. Shapes are
 * the plan's, so the batch dimension is its micro-batch size. An op with no ONNX form is
 * PML_ERR_UNSUPPORTED naming it, as is a model past protobuf's 2 GiB. A handle serving
 * int8 weights (`pmlc quantize`) exports them as INT8 initializers with their scales and
 * each linear product as the int8 arithmetic it computes (per-row int8 activations, or a
 * calibrated file's static scales as initializers, MatMulInteger, the two scales);
 * PML_ERR_UNSUPPORTED, naming the weight, where an int8 weight is read other than as
 * x @ transpose(W), or served in f32 by this handle. */
PML_API pml_status pml_infer_export_onnx(pml_infer *inf, const char *path);

/* ---- post-training int8 weights (`pmlc quantize`; the file: README.md) --------
 * Writes `out` (atomically) from `weights` (what pml_infer_create takes): the linear
 * layers' weights (rank 2, read transposed by a matmul) that a pattern selects as int8
 * with one f32 scale per output channel, everything else copied as is. `match(pattern,
 * name)` decides whether a pattern selects a parameter (pmlc passes pmlc_name_match,
 * freeze's rule); n_patterns 0: every linear weight. A pattern that selects no linear
 * weight is PML_ERR_INVALID_ARG naming it. *n_quantized (may be NULL): how many. */
typedef int (*pml_name_match_fn)(const char *pattern, const char *name);
PML_API pml_status pml_quantize_weights(pml_context *ctx, const pml_plan *plan, const char *weights,
                                        const char *const *patterns, int n_patterns, pml_name_match_fn match,
                                        const char *out, int *n_quantized);
/* The same with static activation scales from calibration rows: the f32 model (`weights`,
 * on the CPU backend, dropout off) runs forward over every row of the .npy file
 * `calibrate`, whose shape past its first dimension and whose dtype are the model input's
 * (one input; at least one row; finite), and each selected weight's products record the
 * largest |x| of their input; that / 127 is stored as `<name>.input_scale` (F32 [1]), and
 * serving the file quantizes those inputs with it (clamped to +-127) instead of per row.
 * A partial last micro-batch is filled with copies of calibration rows, never zeros, so
 * only the data sets the scales. Refused naming the file: a wrong shape, dtype, no rows,
 * a non-finite value; naming the weight: an input that is zero on every row, or not
 * finite, or a weight no f32 linear product reads. calibrate NULL: pml_quantize_weights. */
PML_API pml_status pml_quantize_weights_calibrated(pml_context *ctx, const pml_plan *plan, const char *weights,
                                                   const char *const *patterns, int n_patterns,
                                                   pml_name_match_fn match, const char *calibrate, const char *out,
                                                   int *n_quantized);

/* ---- checkpoints ---------------------------------------------------------------------
 * The files `pmlc train --out DIR` writes and --init / --resume read: a folder holding
 * model.safetensors (the weights, by plan name), optimizer.safetensors (the optimizer's
 * state) and trainer.json (step, seed, the model's fingerprint), or the same tensors as
 * Hugging Face shards with their indexes (what ranks write). Every reader takes either
 * layout. A save follows the commit protocol of docs/design.md: at every instant the
 * folder holds one complete checkpoint, the one before the save or the new one, so a
 * kill or a full disk at any moment, even in a save into the folder resumed from, loses
 * nothing. Resuming at step N with the same plan and seed continues bit for bit as the
 * run that never stopped: the seed and the step are the data cursor and the RNG state.
 *
 * Resume in three calls: pml_checkpoint_read_info for the seed, pml_session_create with
 * it, pml_session_resume. Errors name the path and what is wrong ("DIR/model.safetensors:
 * tensor 'fc1.weight' has shape [4, 8], the plan's is [8, 8]"). */

typedef struct pml_checkpoint_info {
    int64_t step;      /* steps taken */
    uint64_t seed;     /* the run's seed: the session that resumes it is created with it */
    int freeze_afresh; /* 1: a checkpoint from before `freeze auto` state was saved; its checks start afresh */
} pml_checkpoint_info;

/* Reads and checks DIR/trainer.json against `plan` (a checkpoint of another model is
 * refused before any tensor is read). */
PML_API pml_status pml_checkpoint_read_info(pml_context *ctx, const pml_plan *plan, const char *dir,
                                            pml_checkpoint_info *info);
/* The early check of a folder that will receive checkpoints, before a run's first step:
 * creates `dir` as mkdir -p, checks that it takes a write and that no checkpoint file
 * name in it is a folder or a special file. */
PML_API pml_status pml_checkpoint_check_folder(pml_context *ctx, const char *dir);

/* Writes the session's weights, optimizer state, seed and step to `dir` (created as
 * mkdir -p) by the commit protocol. A tensor that is not finite is refused
 * (PML_ERR_NONFINITE, naming it) before the folder is touched. */
PML_API pml_status pml_session_save(pml_session *s, const char *dir);
/* Continues the checkpoint in `dir`: weights, optimizer state and step. The session
 * must have been created with the checkpoint's seed (pml_checkpoint_read_info), else
 * PML_ERR_INVALID_ARG says both. On failure the session is unchanged. */
PML_API pml_status pml_session_resume(pml_session *s, const char *dir);
/* Replaces the initial weights with those of `path` (pmlc's --init and infer --weights):
 * a .safetensors file, a shard index (.safetensors.index.json) or a folder holding
 * either (a checkpoint, or plain weights); every parameter present by plan name, f32,
 * its plan shape, no tensor the plan lacks. On failure the session is unchanged. */
PML_API pml_status pml_session_load_weights(pml_session *s, const char *path);
/* Steps taken: 0 for a new session, the checkpoint's step after a resume; -1 for NULL. */
PML_API int64_t pml_session_steps_done(const pml_session *s);
/* The train block's seed: what pmlc trains with when --seed is not given (0 for NULL). */
PML_API uint64_t pml_plan_seed(const pml_plan *plan);

/* ---- output files and .npy arrays: what pmlc build and pmlc infer write and read -------
 * Every output libpml writes follows one rule, by what PATH is: missing or a regular
 * file is replaced atomically (written to "PATH.tmp.HOST.PID" beside it, renamed over
 * PATH: readers see the old file or the whole new one, and pml_remove_partial_files
 * removes the temporary file); a symbolic link is followed to its target; a character
 * device, a fifo or a descriptor (/dev/stdout) is written in place; a block device, a
 * socket, a folder or a dangling link is refused. Messages start with the path. */

/* The early check of an output: its kind is one the rule accepts and, when it is to be
 * replaced, its folder exists and takes a write (tested by writing a probe file). Writes
 * nothing to `path`; a command calls it before its long work, not after. */
PML_API pml_status pml_output_check(pml_context *ctx, const char *path);
/* Writes `len` bytes as the whole of `path` by the rule above (a plan file, say). */
PML_API pml_status pml_output_write(pml_context *ctx, const char *path, const void *bytes, size_t len);

/* A NumPy .npy file opened for reading: its rows as a pml_buffer (dims[0] rows; f32,
 * f64, i32, i64 or u8; source: `path` itself, so messages about the rows name the
 * file), mapped read-only, valid until pml_array_close. Malformed files are PML_ERR_FORMAT, valid ones PML does not read
 * (big-endian, Fortran order, other dtypes, more than PML_MAX_RANK dimensions)
 * PML_ERR_UNSUPPORTED. Thread safety: an open array is read-only; any thread may read
 * its rows. */
typedef struct pml_array pml_array;

PML_API pml_status pml_array_open(pml_context *ctx, const char *path, pml_buffer *rows, pml_array **out);
PML_API void pml_array_close(pml_array *a);
/* Writes `rows` (f32, f64, i32, i64 or u8; rank at most PML_MAX_RANK) as a version 1.0
 * .npy file laid out as numpy writes it, by the output rule above. */
PML_API pml_status pml_array_save(pml_context *ctx, const char *path, const pml_buffer *rows);

/* ---- ending the process on a signal --------------------------------------------------
 * Every file libpml replaces (outputs, checkpoint files, plans) is written to a temporary
 * file beside it, "PATH.tmp.HOST.PID", and renamed over PATH when complete.
 * pml_remove_partial_files removes the temporary files of the writes in progress in
 * this process, so that a signal handler that then ends the process with _exit leaves
 * every such PATH as it was or complete, and no temporary file. Async-signal-safe, takes
 * no lock, any thread (`pmlc infer` calls it on SIGINT, SIGTERM and SIGUSR1). A
 * checkpoint save's staging folder is not removed: the next save into that folder does. */
PML_API void pml_remove_partial_files(void);

/* ---- the training driver: what `pmlc train` runs ---------------------------------------
 * A run is `pmlc train` as a call: steps on the session's data (the plan's source or the
 * feeder), checkpoints every checkpoint_every steps and at the end, evaluation every
 * eval_every steps and at the end, a JSONL metrics log, a Chrome trace, a re-cut of the
 * stages at each scheduled freeze, ranks. `pmlc train` is this call and a printer of its
 * events, so a program gets the same checkpoint files bit for bit.
 *
 * Set-up in two calls: pml_session_open (what is fixed when the pipeline is made:
 * backend, seed, threads, ranks, the weights it starts from, a resume) and
 * pml_session_run (what the run does). The library never prints: what `pmlc train`
 * prints arrives as events (pml_run_event), errors as the status and the context's
 * message. Thread safety: as the session's; callbacks run on the calling thread.
 *
 * Signals: libpml installs no handler and changes no disposition. A log written in
 * place to a pipe whose reader has left (metrics to /dev/stdout) fails with EPIPE, said
 * as any failed write, only where the program ignores SIGPIPE, as pmlc does; SIGPIPE's
 * default action ends the process. Stopping on a signal: pml_session_request_stop. */

/* The other processes of a multi-process run (ranks). libpml links no communication
 * library: a handle comes from one that does (the pml_mpi library, pml_mpi.h), is
 * passed in pml_session_options.dist, and stays the caller's. Every rank makes the
 * same calls with the same options; rank 0 alone reads --init/--resume files (and
 * sends each rank its part), writes the metrics and the trace, evaluates, and gets the
 * events other than PML_RUN_ERROR. After a failed open or run the ranks were told to
 * stop (the handle can only be destroyed). */
typedef struct pml_dist pml_dist;

/* A session as pml_session_create makes it, with more said. Zero-initialise, set seed
 * (-1 for the train block's), then what differs. Grows only at its end. */
typedef struct pml_session_options {
    pml_backend backend; /* as pml_session_create's (0: PML_BACKEND_CPU) */
    int64_t seed;        /* -1: the train block's, or with `resume` the checkpoint's (another is refused) */
    int threads;         /* CPU threads in all, shared by the stages; 0: the machine's, shared by the ranks on
                          * it; at most PML_MAX_THREADS (pmlc train --threads) */
    int trace;           /* record every stage's timeline (pml_run_options.trace needs it) */
    int check_numerics;  /* check every op's output and stop at the first non-finite (CPU backend) */
    /* With check_numerics: where each plan node was made ("file:line:col", as
     * pmlc_session_node_where gives), NULL-terminated; copied. NULL: none. */
    const char *const *node_where;
    pml_dist *dist;     /* ranks (see above); NULL: one process */
    const char *init;   /* weights to start from (as pml_session_load_weights), or NULL */
    const char *resume; /* a checkpoint folder to continue (weights, optimizer state, step, seed), or NULL */
} pml_session_options;

/* A session made as `opts` says (NULL: all defaults). Errors name what failed ("cannot
 * resume: DIR/trainer.json: ..."). */
PML_API pml_status pml_session_open(pml_context *ctx, const pml_plan *plan, const pml_session_options *opts,
                                    pml_session **out);

/* The train block's steps (-1 when it gives none). */
PML_API int64_t pml_plan_steps(const pml_plan *plan);

/* What a run tells its caller, in the order it happens. */
typedef enum pml_run_event_kind {
    PML_RUN_START, /* before the first step: what will run (start below) */
    PML_RUN_STEP,  /* after each step: metrics, elapsed */
    PML_RUN_EVAL,  /* an evaluation: at_step (-1: the one after training) and eval below */
    PML_RUN_RECUT, /* at_step a freeze started and the stages were re-cut; text: "stage 0: a..b, stage 1: ..." */
    PML_RUN_NOTE,  /* text: something worth knowing that is not an error */
    PML_RUN_TRACE, /* text: the timeline's summary (measured and analytic bubble, the file) */
    PML_RUN_ERROR, /* text: an error said where it happened while the run goes on or the ranks decide; on every rank */
    PML_RUN_STOP   /* a stop request is acted on: at_step the step the run stops at, text the out folder its
                    * checkpoint is being written to (NULL: none); pml_run_result says the rest */
} pml_run_event_kind;

/* What an evaluation drew from. */
typedef enum pml_eval_source {
    PML_EVAL_FRESH,    /* a generator's samples past every training step */
    PML_EVAL_FILES,    /* eval_data (and eval_labels) */
    PML_EVAL_HOLDOUT,  /* the rows or tokens held out of the training file */
    PML_EVAL_TRAINING, /* nothing is held out: training rows (or windows of the training tokens) */
    PML_EVAL_CALLER    /* the session has no data source of its own (a feeder) */
} pml_eval_source;

typedef struct pml_run_event {
    pml_run_event_kind kind;
    int64_t steps;   /* the run's last step (its total) */
    int64_t at_step; /* STEP: steps done; EVAL: after which step (-1: after training); RECUT: the step */
    const char *text;
    const pml_step_metrics *metrics; /* STEP */
    double elapsed;                  /* STEP: seconds of step work in this run so far */
    struct {                         /* START */
        pml_backend backend;
        int stages, world, replicas; /* stages: stage devices (under interleaved 1F1B each runs several chunks) */
        int64_t microbatches, microbatch, first_step;
        double best_loss; /* the data's entropy, the best loss possible; NaN when unknown */
        const char *precision; /* how the backend runs 16-bit (mixed-precision) work; NULL: the run has none */
    } start;
    struct { /* EVAL */
        pml_eval_result result;
        pml_eval_source source;
        int64_t source_rows;     /* distinct rows it draws from (0: endless, or token windows) */
        const char *source_path; /* the file it reads, NULL for a generator */
        double best_loss;        /* as start's */
    } eval;
    /* START: where the stages run when the plan's `place` map says more than "the CPU":
     * "stage devices on GPUs 0, 0 (place [cuda:0, cuda:1])" (and how they hand over when
     * a test switch forces copies), or on the CPU "the CPU as asked, not the plan's
     * place [cuda:0, cuda:1]"; NULL otherwise. */
    const char *placed;
} pml_run_event;
typedef void (*pml_run_event_fn)(void *user, const pml_run_event *ev);

/* Asked when a scheduled freeze starts at `step` in a run of more than one stage on one
 * process: the model planned again as that phase (pmlc_options.freeze_from = step, for
 * `backend`), so that the stages balance the work left. *plan (the session owns it from
 * then on) and, with check_numerics, *node_where (copied) as pml_session_options';
 * return non-zero to fail the run (having said why). Not set: the cut of step 0 stays. */
typedef int (*pml_replan_fn)(void *user, int64_t step, pml_backend backend, pml_plan **plan,
                             const char *const **node_where);

typedef struct pml_run_options {
    int64_t steps;       /* the step to train to, counted from 0 (a resume continues to it); -1: the train block's */
    const char *out;     /* the final checkpoint, and every checkpoint_every steps OUT/step-NNNNNN; NULL: none */
    int64_t eval;        /* batches evaluated after training (0: none), and by each eval_every evaluation (0: enough
                          * to cover the held-out rows once, else 1) */
    const char *metrics; /* a JSONL file: one record per step, evaluation and re-cut; NULL: none */
    const char *trace;   /* a Chrome trace of every stage (and rank) on one clock; NULL: none */
    pml_run_event_fn on_event;
    void *event_user;
    pml_replan_fn replan;
    void *replan_user;
    /* An SVG picture of one measured step: a row per stage device (replica 0's, with
     * ranks), its forward, backward and update spans where they ran, the step of median
     * length after the first, its bubble and the measured and analytic ones in the
     * caption; drawn as `pmlc plan --timeline` draws the simulated timetable. Needs
     * pml_session_options.trace, as `trace` does; a bad path fails before step 1.
     * NULL: none. (Appended: the struct grows only at its end.) */
    const char *timeline;
} pml_run_options;

/* How a run ended. It grows only at its end (as pml_step_metrics). */
typedef struct pml_run_result {
    int64_t steps_done; /* in this run */
    int failed_in_step; /* the failure was a training step's: nothing of that step was applied or saved */
    int log_incomplete; /* a log (the metrics, the trace) could not be written whole: said at once by a PML_RUN_ERROR
                         * event naming the file and the system's reason; the run itself went on */
    /* A stop request (pml_session_request_stop) ended the run before its last step: */
    int stopped;        /* 1: it stopped at stop_step (the status says whether its checkpoint was written) */
    int64_t stop_step;  /* steps taken in all (counting a resume's), the step the checkpoint holds */
    int stop_signal;    /* the request's signo (0: a request without a signal) */
    int stop_rank;      /* the rank whose request it was (the lowest when several asked; 0 for one process) */
    int stop_saved;     /* 1: the checkpoint of stop_step is in opts->out; 0: the run has no out folder, nothing was
                         * saved */
    int64_t periodic_step; /* the step of the last periodic checkpoint this run committed, opts->out/step-NNNNNN
                            * (checkpoint_every); 0: none. What a failed run resumes from. */
} pml_run_result;

/* Trains the session to opts->steps as `pmlc train` does, checking every output path
 * before the first step. Every output is written as a whole or not at all (checkpoints
 * by their commit protocol); a failure leaves the last checkpoint written intact.
 * result may be NULL. A stop request ends it early with PML_OK (see below). */
PML_API pml_status pml_session_run(pml_session *s, const pml_run_options *opts, pml_run_result *result);

/* Asks the session's run to stop: what a program's SIGINT, SIGTERM or SIGUSR1 handler
 * calls (`signo` the signal, kept for pml_run_result.stop_signal; 0 for a request
 * without one). Async-signal-safe (one lock-free atomic store, no lock, no allocation,
 * no message), callable from any thread, from a signal handler and from the run's own
 * callbacks; PML_ERR_INVALID_ARG for a NULL session or a negative signo, recorded
 * nowhere. The first request's signo is kept; a request stays until a run acts on it,
 * so one made before pml_session_run stops that run before its first step. Only
 * pml_session_run acts on it (pml_session_train stops through its metrics callback).
 *
 * What pml_session_run then does: at the next step boundary (the step in progress
 * finishes; none is cut short) it stops, writes the checkpoint of the last completed
 * step into opts->out by the commit protocol of every save (periodic checkpoints
 * already in OUT/step-NNNNNN stay), writes the trace, skips the final evaluation, and
 * returns PML_OK with result->stopped, stop_step, stop_signal, stop_rank and
 * stop_saved (0 when opts->out is NULL). Resuming opts->out then continues bit for bit
 * as if the run had never stopped. A request that arrives after the last step changes
 * nothing; a run ends with no request pending.
 *
 * Ranks: a request made on any rank stops every rank at one agreed step, and the
 * checkpoint is one sharded save, as periodic ones are. The request travels with the
 * gradient-norm sum every step already makes (no exchange of its own), so the ranks
 * stop after the step in which the request reached that sum: the step in progress, or
 * the one after it.
 *
 * Time bound: one process stops within the rest of the step in progress plus one
 * checkpoint write (and the trace's); ranks within one more step. A step that cannot
 * finish because a peer is dead fails after the peer timeout (pml_dist), which bounds
 * the wait: the run then returns that failure, and nothing is saved. */
PML_API pml_status pml_session_request_stop(pml_session *s, int signo);

/* ---- ranks: the processes of a multi-process run --------------------------------------
 * The layout of a run (who this process is, how many pipelines the ranks form, which
 * stages each runs) is decided before any communication, the same way on every rank;
 * the handle comes from pml_tcp_create below or a communication library (pml_mpi.h).
 * What a program compares across ranks before step 1 (its options, the plan it built)
 * goes through pml_ranks_agree, so that ranks started differently are refused with the
 * difference named. Every rank makes the same calls in the same order; each call that
 * waits for another rank gives up after the handle's peer timeout, naming it. Thread
 * safety: a pml_dist is used by one thread at a time outside a session's calls. */

typedef struct pml_ranks_layout {
    int rank, world;    /* this process, of how many */
    int replicas;       /* data-parallel pipelines the ranks form (1: one pipeline) */
    const char *source; /* where rank and world came from: "the caller", the launcher's variables
                         * ("OMPI_COMM_WORLD_*", "SLURM_*", "RANK/WORLD_SIZE"), or "default" (one process);
                         * a constant */
} pml_ranks_layout;

/* The layout of a run of `plan`. rank and world: the caller's (both given: 0 <= rank <
 * world), or -1 and 0 for the launcher's environment (Open MPI's mpirun, Slurm's srun,
 * RANK/WORLD_SIZE; else one process). replicas: the caller's, or 0 for the plan's
 * place = auto(..., replicas = R) with more than one process, 1 with one. Refused
 * (PML_ERR_INVALID_ARG, saying why) when a variable is not a number in range, the rank
 * is outside the world, or the stages cannot be placed on the ranks (the world is not
 * a multiple of the replicas, or a pipeline has more ranks than stages; with chunks,
 * than stage devices, since a rank runs every chunk of its devices). */
PML_API pml_status pml_ranks_resolve(pml_context *ctx, const pml_plan *plan, int rank, int world, int replicas,
                                     pml_ranks_layout *out);

/* Rank 0's `bytes` at `buf` into every rank's `buf`. */
PML_API pml_status pml_ranks_share(pml_context *ctx, pml_dist *d, void *buf, size_t bytes);
/* Returns once every rank has called it. */
PML_API pml_status pml_ranks_barrier(pml_context *ctx, pml_dist *d);

/* A fact a rank states about how it was started: `value` is compared byte for byte
 * (NULL: not given); `shown` is how a message writes it ("--seed 7"; NULL: the key and
 * the value, or "without KEY"); `hint`, or NULL, is added to a message after this fact
 * differs (why the two must agree). */
typedef struct pml_rank_fact {
    const char *key; /* unique within a rank's facts, e.g. "--seed" */
    const char *value;
    const char *shown;
    const char *hint;
} pml_rank_fact;

/* PML_OK when every rank's facts equal rank 0's; else PML_ERR_INVALID_ARG on every rank,
 * each with the same message naming the first difference in rank 0's order ("rank 1 was
 * started with --seed 7, rank 0 with --seed 3", and how many other ranks differ). Keys
 * are looked up, not matched by position; a key a rank lacks is its absent value. */
PML_API pml_status pml_ranks_agree(pml_context *ctx, pml_dist *d, const pml_rank_fact *facts, int n);

/* Joins the other ranks of a run of `plan` laid out as `layout` over TCP, for processes
 * started without MPI (torchrun and its convention: RANK, WORLD_SIZE, MASTER_ADDR,
 * MASTER_PORT). Rank 0 listens on master_port, the others connect to master_addr there,
 * learn each other's addresses from it and connect to each other; `timeout_s` (<= 0:
 * 60) bounds that start-up, naming the ranks that did not come, and is the silence after
 * which a rank counts as gone, as over MPI (pml_mpi.h: heartbeat, goodbyes). A rank
 * whose connection closes without a goodbye (killed, crashed) is named at once.
 * master_addr NULL: the MASTER_ADDR variable; master_port 0: MASTER_PORT, or the port
 * after it under torchrun's agent (TORCHELASTIC_USE_AGENT_STORE=True), whose own store
 * holds MASTER_PORT. Refused
 * (PML_ERR_INVALID_ARG, saying why) as pml_mpi_create refuses, and for a missing
 * address or a port outside 1..65535; a port rank 0 cannot listen on, or a rank that
 * answers for another run (another world size, the same rank twice), fails start-up
 * with the reason on every rank that reached rank 0. */
PML_API pml_status pml_tcp_create(pml_context *ctx, const pml_plan *plan, const pml_ranks_layout *layout,
                                  const char *master_addr, int master_port, double timeout_s, pml_dist **out);

/* Leaves the run: the other ranks are told (unless a failed open or run already told
 * them this rank failed: then nothing waits for them). NULL-safe. */
PML_API void pml_dist_destroy(pml_dist *d);

#ifdef __cplusplus
}
#endif
#endif
