/* pml/plan_format.h — the plan file: what `pmlc build` writes and libpml loads.
 *
 * Shared by the writer (compiler/src/plan/write.c) and the reader
 * (runtime/src/plan/plan_read.c); this comment is the format's specification.
 * All integers are little-endian; floats are IEEE-754 binary64.
 *
 *   header   "PMLPLAN\0" (8 bytes), u32 version, u32 section count
 *   sections each: u32 tag, u32 zero, u64 payload length, payload
 *
 * Sections, each present exactly once, in this order:
 *   STRS  string table: u32 count, then per string u32 length and its bytes (no NUL);
 *         other sections refer to strings by index
 *   CONF  training configuration: the fields of pml_plan_config in order, each an
 *         i64 or f64 as its type says (see plan.h in the runtime); freeze_every and
 *         freeze_threshold are `freeze auto(every, threshold)`'s (every 0: none, and
 *         then threshold 0), the criterion the runtime applies (runtime/src/plan/phase.h);
 *         replicas is `place = auto(..., replicas = R)`'s R (1 when not given), and
 *         divides microbatches; eval_data_path and eval_labels_path are the held-out
 *         set's files (strings, -1: none; a token source has no labels file), holdout the
 *         fraction of a file source's rows (or of a token file's tokens) kept out of
 *         training (0: none, else in (0, 1), and never with an eval file), eval_every the
 *         steps between evaluations during training (0: none)
 *   NODE  the graph, forward then backward, in execution order:
 *         u32 count, then per node: u16 op (pml/ops.def order), u8 dtype, u8 rank,
 *         u8 pass, u8 pad, u16 n_in, i32 stage, i32 label (string or -1),
 *         u16 n_attr, u16 pad, i64 dims[rank], i32 in[n_in], i64 attr[n_attr], f64 fval
 *   PARM  parameters: u32 count, then per parameter: i32 name, i32 layer, i32 node,
 *         i32 grad node (-1: none), i32 init kind, i32 teacher, f64 init a, f64 init b,
 *         i64 frozen from step (-1: never). teacher is 1 for a distillation teacher's
 *         parameter (named "teacher." and its name in the teacher's own model): it has no
 *         gradient node, is frozen from step 0, and is loaded from CONF's teacher_path,
 *         never initialised, updated or saved with the student; 2 for a parameter trained
 *         with the model but saved apart from its model file (a distillation's match
 *         projection, "distill.matchI.proj.*"); otherwise 0. A plan has teacher
 *         parameters exactly when teacher_path is a string, and apart ones only then.
 *         Version 16 on, each parameter ends with i32 tie: -1, or for a weight tied
 *         across stages, the parameter this one is a copy of on another stage (its
 *         root: no copy itself, of the same name, shape, dtype, initializer, freeze
 *         and kind), which the runtime keeps equal to it
 *   INPT  model inputs: u32 count, then per input i32 name, i32 node; then i32 output
 *         node, i32 labels node, i32 loss node (-1 when absent)
 *   TIME  timetable: u32 stage count (the stage devices: CONF's stages / chunks), then per
 *         stage: u32 instruction count and per instruction u8 kind, u8 pad, u16 chunk,
 *         i32 micro-batch. The chunk is the model stage (NODE's stage) the instruction
 *         runs: the list's own index except with chunks > 1, where list d runs the chunks
 *         pml_plan_chunk_device names (interleaved 1F1B: d, d + D, d + 2D, ... of D
 *         lists; zero_bubble_v and dualpipe_v: d and 2D − 1 − d); a step's chunk is
 *         its list's index.
 *         Before version 13 the chunk bytes are padding and the chunk is the list's index
 *   KERN  fusion (compiler/src/ir/fuse.h): u32 kernel count, then per kernel, in the order
 *         they run: u8 kind, u8 pass, u16 pad, i32 stage, u32 node count, i32 nodes[count]
 *         ascending; then u32 node count (as NODE's) and per node u8 flags, bit 0 set when
 *         its value is materialised (written to memory: read by another kernel, the
 *         output, the loss or a parameter's gradient); a reshape's memory is its input's.
 *         Every node is in exactly one kernel, of its own stage and pass; a kernel of
 *         kind none holds exactly one source (input, param, const, arange) or reshape, and
 *         every source and reshape is in one. Kernels run in file order, which is also the
 *         order of their last nodes, and no kernel reads a kernel after it.
 *   (MEMO  version 9 had a memory layout here, the compiler's, which no backend used:
 *         each backend places its own values with the runtime's planner,
 *         runtime/src/plan/memplan.h. A version-9 file is still read, its MEMO skipped.)
 *   CUBN  GPU code (compiler/src/gpu/cuda_codegen.h; counts 0 for a plan built without it):
 *         u32 image count, per image i32 target (string: "sm_NN" a CUBIN, "compute_NN" PTX),
 *         u32 pad, i64 size, the bytes, zero padding to a multiple of 8; u32 function
 *         count, per function i32 name (string); u32 launch count, per launch (ascending
 *         kernels; kernels of kind none have none): i32 kernel (KERN index), i32 function
 *         (-1: a matmul, run by cuBLAS), i32 matmul node (-1 otherwise), u32 threads per
 *         block, i64 threads in all, u8 flags (bit 0 takes the seed, bit 1 the index-error
 *         flag, bit 2 zero the output first), u8 pad[3], u32 argument count, per argument
 *         i32 node (a materialised value, never a view), u32 1 when written.
 *         Every image holds every function; the launch contract is cuda_codegen.h's.
 *   DEVS  (version 15 on) the stage -> device map, the train block's `place` list: u32
 *         count (the stage devices: CONF's stages / chunks), then per stage device u8
 *         kind (0 cpu, 1 cuda), u8 pad[3] (zero), i32 index: cuda:N's N (0 to
 *         PML_PLAN_MAX_GPU_INDEX), cpu:N's N or -1 for a plain `cpu`. Every entry is of
 *         one kind. A program without a `place` list (no place, `place = cpu`, or
 *         automatic placement without one) has cpu, -1 for every stage device. Before
 *         version 15 a plan has no map: its devices are unknown (runtime/src/exec/backend.h
 *         says what the runtime then chooses).
 *
 * Enumerations are stored as integers: dtype as in pml_dtype (f32 0, bf16 1, f16 2,
 * i32 3); schedule gpipe 0, 1f1b 1, interleaved_1f1b 2, zero_bubble 3, zero_bubble_v 4, dualpipe_v 5
 * (version 14 on); optimizer sgd 0,
 * adamw 1; lr_schedule constant 0, warmup_cosine 1; data none 0, file 1, classes 2,
 * markov 3, tokens 4; init zeros 0, ones 1, normal 2, uniform 3, kaiming_uniform 4,
 * xavier_uniform 5; pass forward 0, input-gradient 1, weight-gradient 2; timetable
 * kinds load 0, recv_act 1, fwd 2, send_act 3, recv_grad 4, bwd 5, send_grad 6, step 7,
 * bwd_input 8, bwd_weight 9 (a backward's input-gradient and weight-gradient halves,
 * version 11 on: the nodes of pass input-gradient run in the first, weight-gradient in
 * the second, except weight-gradient work that input-gradient work or another stage
 * reads, which runs in the first);
 * kernel kinds as in pml_plan_kernel_kind.
 *
 * Every index is checked by the reader (strings, nodes before their users, stages
 * below the stage count); a file that fails any check is refused with its path and
 * what is wrong, and a version mismatch says which pmlc made the file. */
#ifndef PML_PLAN_FORMAT_H
#define PML_PLAN_FORMAT_H

#define PML_PLAN_MAGIC "PMLPLAN" /* 8 bytes with its NUL */
#define PML_PLAN_VERSION 16u
/* The oldest version still read: 9, the same sections with MEMO, which is skipped (10
 * lacks the split backward kinds, 10 and 11 the loss-scale settings, 9 to 12 the chunks,
 * 9 to 13 schedules zero_bubble_v and dualpipe_v, 9 to 14 the device map, DEVS, 9 to 15
 * the tied parameters' field). */
#define PML_PLAN_VERSION_OLDEST 9u

#define PML_PLAN_TAG(a, b, c, d) ((unsigned)(a) | (unsigned)(b) << 8 | (unsigned)(c) << 16 | (unsigned)(d) << 24)
#define PML_PLAN_STRS PML_PLAN_TAG('S', 'T', 'R', 'S')
#define PML_PLAN_CONF PML_PLAN_TAG('C', 'O', 'N', 'F')
#define PML_PLAN_NODE PML_PLAN_TAG('N', 'O', 'D', 'E')
#define PML_PLAN_PARM PML_PLAN_TAG('P', 'A', 'R', 'M')
#define PML_PLAN_INPT PML_PLAN_TAG('I', 'N', 'P', 'T')
#define PML_PLAN_TIME PML_PLAN_TAG('T', 'I', 'M', 'E')
#define PML_PLAN_KERN PML_PLAN_TAG('K', 'E', 'R', 'N')

/* What a kernel of the KERN section runs. */
typedef enum pml_plan_kernel_kind {
    PML_PLAN_KERNEL_NONE,     /* a source or a view: no code */
    PML_PLAN_KERNEL_ELEMWISE, /* element-wise ops over one iteration space */
    PML_PLAN_KERNEL_ROW,      /* last-axis reductions and the element-wise work around them */
    PML_PLAN_KERNEL_SINGLE    /* one op: matmul, gather, permute, other reductions, ... */
} pml_plan_kernel_kind;

#define PML_PLAN_MEMO PML_PLAN_TAG('M', 'E', 'M', 'O') /* version 9 only */
#define PML_PLAN_CUBN PML_PLAN_TAG('C', 'U', 'B', 'N')
#define PML_PLAN_DEVS PML_PLAN_TAG('D', 'E', 'V', 'S') /* version 15 on */

/* DEVS's device kinds, and the largest N of a cuda:N or cpu:N it holds (the compiler's
 * bound on a `place` list's length; an index is a number, not a count of anything). */
enum { PML_PLAN_DEVICE_CPU = 0, PML_PLAN_DEVICE_CUDA = 1 };
#define PML_PLAN_MAX_GPU_INDEX 1023

/* CUBN launch flags. */
#define PML_PLAN_GPU_SEED 1u
#define PML_PLAN_GPU_INDEX_CHECK 2u
#define PML_PLAN_GPU_ZERO_OUTPUT 4u

/* KERN's per-node flags. */
#define PML_PLAN_MATERIALISED 1u

/* The CONF section: one entry per line, in order, i = i64 and f = f64. Adding an entry
 * at the end bumps PML_PLAN_VERSION. */
#define PML_PLAN_CONF_FIELDS(I, F)                                                                                 \
    I(stages)                                                                                                      \
    I(batch)                                                                                                       \
    I(microbatches) I(microbatch) I(schedule) I(precision) I(optimizer) F(lr) F(momentum) I(nesterov) F(beta1)     \
        F(beta2) F(eps) F(weight_decay) I(lr_schedule) I(warmup) F(min_lr) F(grad_clip) I(steps) I(epochs) I(seed) \
            I(checkpoint_every) I(recompute) I(data) I(data_path) I(labels_path) I(features) I(classes) I(vocab)   \
                I(order) I(data_seed) I(seq_len) I(teacher_path) I(freeze_every) F(freeze_threshold) I(replicas)   \
                    I(eval_data_path) I(eval_labels_path) F(holdout) I(eval_every)
/* Then, version 12 on: f16's dynamic loss scaling (a version 9-11 file has no f16
 * training to scale; the reader gives these the train block's defaults). */
#define PML_PLAN_CONF_FIELDS_12(I, F) F(loss_scale) I(loss_scale_interval) F(loss_scale_backoff)
/* Then, version 13 on: model chunks per stage device (place = auto(..., chunks = V)),
 * which divide `stages` (NODE's stages are the chunks); 1 before. */
#define PML_PLAN_CONF_FIELDS_13(I, F) I(chunks)
/* Then, version 14 on: the train block's memory limit per stage device in bytes (0:
 * none), which the run checks what its backend allocates against (0 before). */
#define PML_PLAN_CONF_FIELDS_14(I, F) I(memory)

/* CONF's schedule numbers that place chunks differently (the enumeration above). */
#define PML_PLAN_SCHEDULE_ZERO_BUBBLE_V 4
#define PML_PLAN_SCHEDULE_DUALPIPE_V 5

/* CONF's schedule number as the language writes it ("?" out of range). */
static inline const char *pml_plan_schedule_name(int schedule)
{
    static const char *const names[] = {"gpipe",       "1f1b",          "interleaved_1f1b",
                                        "zero_bubble", "zero_bubble_v", "dualpipe_v"};
    return schedule >= 0 && schedule < (int)(sizeof names / sizeof *names) ? names[schedule] : "?";
}

/* Whether `schedule` places its two chunks per device in a V (ZB-V, DualPipeV). */
static inline int pml_plan_schedule_vee(int schedule)
{
    return schedule == PML_PLAN_SCHEDULE_ZERO_BUBBLE_V || schedule == PML_PLAN_SCHEDULE_DUALPIPE_V;
}

/* The stage device (timetable list, of D) that runs model chunk c, under `schedule`
 * with chunks > 1; the compiler and the runtime both place chunks with this. Under
 * zero_bubble_v the two chunks of each device make a V: chunk c < D on device c, chunk
 * c >= D on device 2D − 1 − c, so the last device turns a micro-batch round on itself
 * and the first holds the model's first and last chunks (inputs and loss). Otherwise
 * (interleaved 1F1B) chunk c on device c mod D. DualPipeV places its chunks as ZB-V. */
static inline int pml_plan_chunk_device(int c, int D, int schedule)
{
    if (pml_plan_schedule_vee(schedule)) return c < D ? c : 2 * D - 1 - c;
    return c % D;
}

#endif
