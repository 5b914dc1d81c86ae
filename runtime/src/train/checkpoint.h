/* checkpoint.h — save a training run to a folder and resume it exactly.
 *
 * A checkpoint is a folder holding three files (one process writes them), four in a
 * distillation with match projections:
 *   model.safetensors      every plan parameter under its plan name, F32 master weights,
 *                          but a distillation teacher's (those stay in the teacher's file)
 *                          and parameters saved apart (below), so a student's checkpoint
 *                          is an ordinary model file of it;
 *                          metadata: format "pt", pml_step (steps taken), pml_model (the
 *                          plan's fingerprint, below).
 *   optimizer.safetensors  the optimizer state, F32: per parameter NAME trained at the
 *                          checkpoint's step (not frozen by then: a freeze is for good),
 *                          "NAME.exp_avg" and "NAME.exp_avg_sq" for AdamW, or
 *                          "NAME.momentum_buffer" for SGD with momentum (plain SGD keeps
 *                          none and the file holds no tensors); metadata: pml_optimizer
 *                          ("adamw", "sgd_momentum" or "sgd") and pml_step.
 *   distill.safetensors    only for a plan with parameters saved apart (plan.h: a
 *                          distillation's match projections, distill.matchI.proj.*):
 *                          their F32 weights, which are trained but are not part of the
 *                          student; their optimizer state is in optimizer.safetensors;
 *                          metadata: pml_model, pml_step. Sharded checkpoints keep it
 *                          whole, written by the rank that holds the loss's stage.
 *   trainer.json           {"format": "pml-checkpoint", "version": 2, "step": N,
 *                          "seed": S, "model": FINGERPRINT, "parameters": P,
 *                          "optimizer": NAME} and, for a model with `freeze auto`,
 *                          "auto_freeze": its state (ckpt_freeze.h), written with
 *                          formats/json.h. Version 1 (without auto_freeze) still loads.
 *
 * or, written by the ranks of a multi-process run, the same tensors in Hugging Face
 * shards (formats/st_shards.h): model-0000k-of-0000n.safetensors and
 * optimizer-0000k-of-0000n.safetensors, shard k holding the parameters of the stages
 * that rank k-1 of a pipeline of n ranks runs (ranks.h), each with the metadata above,
 * then model.safetensors.index.json and optimizer.safetensors.index.json (the same
 * metadata, plus total_size, and the weight map), and trainer.json. Readers take either
 * layout (a folder's index first), so any number of ranks or one process resumes any
 * checkpoint; every shard must be listed, present, at the checkpoint's step, and no
 * tensor may be in two. The folder must be visible to every rank that writes a shard
 * (a shared file system, as for any sharded checkpoint).
 *
 * The step is the whole trainer state: the data of micro-batch mb of step s, and the
 * dropout masks, are pure functions of (seed, step, row) (feed.h, pipeline.c), so the
 * seed and the step are the data cursor and the RNG state together; the learning rate
 * and the optimizer's step count (AdamW's bias correction) follow from the step too.
 * Resuming at step N with the same plan and seed therefore continues bit for bit as the
 * uninterrupted run would have; `freeze auto`'s state (the layers it froze, the gradient
 * norms of its last check; plan/phase.h) is in trainer.json, so its checks continue
 * too (a version-1 checkpoint has none: its checks start afresh).
 *
 * The fingerprint is FNV-1a (64 bits, 16 hex digits) over the name, rank and dims of
 * every parameter of model.safetensors in plan order (so a distilled student's
 * checkpoint is also one of the student alone, for `pmlc infer` and --init): a checkpoint of another model (or another shape of this one)
 * is refused before any tensor is read.
 *
 * Atomicity: every file is written atomically (atomic_file.h). Saving first removes
 * DIR/trainer.json (and the indexes, single files and shards of an older checkpoint
 * there),
 * then writes the tensor files (each rank its shards), and writes the indexes and
 * trainer.json LAST, on one process (rank 0, once every shard is in): trainer.json
 * commits the folder. A folder without trainer.json is an incomplete checkpoint (the
 * run stopped while writing it) and is refused; shards of an uncommitted save are
 * removed by the next, and readers ignore files no index names.
 *
 * Non-finite values: no save writes a tensor holding NaN or inf. pml_ckpt_save and
 * pml_ckpt_save_shard check every tensor they would write first (pml_ckpt_check_finite)
 * and, on one that is not finite, fail with PML_ERR_NONFINITE naming it before
 * touching the folder, so a checkpoint already there stays committed and loadable.
 * Loading refuses a non-finite tensor likewise (PML_ERR_NONFINITE, "PATH: tensor 'X' is
 * NaN at element i"), for --init, --resume and a teacher's weights alike.
 *
 * Loading validates everything before changing the pipeline: the files parse
 * (safetensors.h is strict), every plan parameter is present as F32 with its plan
 * shape (a mismatch names the tensor and both shapes), no tensor is unknown (the first
 * is named), the optimizer file holds exactly the state the plan's optimizer keeps for
 * the parameters trained at the checkpoint's step (state of parameters frozen by then is
 * ignored: a run resumed with a scheduled freeze made static, or re-cut, keeps none), and
 * the step counts of the three files agree. Errors are PML_ERR_FORMAT (PML_ERR_IO when a
 * file cannot be read) with "PATH: what is wrong".
 *
 * Ownership: nothing returned is owned by the caller. Thread safety: call between
 * steps, from the thread that drives the pipeline. */
#ifndef PML_TRAIN_CHECKPOINT_H
#define PML_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "plan/plan.h"
#include "train/pipeline.h"

#define PML_CKPT_VERSION 2 /* 2: auto_freeze state (ckpt_freeze.h); 1 still loads */

/* What trainer.json records. */
typedef struct pml_ckpt_info {
    int64_t step;  /* steps taken */
    uint64_t seed; /* initialisation and dropout seed of the run */
    int freeze_afresh; /* a version-1 checkpoint of a model with `freeze auto`: no saved state, so the
                        * resumed run's checks start afresh */
} pml_ckpt_info;

/* Writes the pipeline's weights, optimizer state and step to folder `dir` (created
 * when missing; its parent must exist). `seed` is the run's seed (pml_pipeline_opts). */
pml_status pml_ckpt_save(const pml_plan *plan, pml_pipeline *p, uint64_t seed, const char *dir, pml_err *err);

/* The sharded save, in three calls every writer makes in this order, the next only once
 * the previous succeeded everywhere: begin (one process: creates `dir` when missing,
 * uncommits it), save_shard (each of the `shards` writers: shard `shard`, 0-based, of
 * the weights and optimizer state as they are in `p`; `dir` may hold no other shards:
 * begin removed them), commit (one process: the two
 * indexes, then trainer.json; the committer's `p` supplies only the step and which
 * state the optimizer keeps, not tensor data). pml_ckpt_save is begin, one file each,
 * and commit with shards = 0 (no index). */
pml_status pml_ckpt_begin(const char *dir, pml_err *err);
/* The gate every save applies first: the tensors of shard `shard` of `shards` (all with
 * shards = 0) are finite, or PML_ERR_NONFINITE names the first that is not ("DIR: not
 * written: ..."). Ranks call it before begin, so a refused save uncommits nothing. */
pml_status pml_ckpt_check_finite(const pml_plan *plan, pml_pipeline *p, const char *dir, int shard, int shards,
                                 pml_err *err);
pml_status pml_ckpt_save_shard(const pml_plan *plan, pml_pipeline *p, const char *dir, int shard, int shards,
                               pml_err *err);
pml_status pml_ckpt_commit(const pml_plan *plan, pml_pipeline *p, uint64_t seed, const char *dir, int shards,
                           pml_err *err);

/* Reads and validates DIR/trainer.json against `plan`: the seed to create the pipeline
 * with, and the step to resume at. */
pml_status pml_ckpt_read_info(const pml_plan *plan, const char *dir, pml_ckpt_info *info, pml_err *err);

/* Restores weights, optimizer state and the step from `dir` into `p` (created with the
 * seed pml_ckpt_read_info returned). On failure `p` is unchanged. */
pml_status pml_ckpt_restore(const pml_plan *plan, pml_pipeline *p, const char *dir, pml_err *err);

/* Loads weights only (e.g. --init) from a safetensors file, a shard index, or a folder
 * holding either (a checkpoint): every plan parameter, F32, its plan shape, no unknown
 * tensors; metadata is ignored. On failure `p` is unchanged. */
pml_status pml_ckpt_load_weights(const pml_plan *plan, pml_pipeline *p, const char *path, pml_err *err);

/* Loads a distillation teacher's parameters (plan.h) from the plan's teacher_path, a
 * path as written in the distill block, so relative to the current folder: every
 * teacher parameter present under its name in the teacher's own model (without
 * "teacher."), F32, with its plan shape, and no other tensor; a mismatch names the
 * file, the tensor and both shapes. Does nothing for a plan without a teacher.
 * pml_pipeline_create calls it: a teacher is never initialised randomly. */
pml_status pml_ckpt_load_teacher(const pml_plan *plan, pml_pipeline *p, pml_err *err);

/* The plan's fingerprint as 16 hex digits and a NUL. */
void pml_ckpt_fingerprint(const pml_plan *plan, char out[17]);

#endif
