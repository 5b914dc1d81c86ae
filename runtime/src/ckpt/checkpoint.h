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
 * checkpoint is also one of the student alone, for `pmlc infer` and --init): a checkpoint of another model (or another
 * shape of this one) is refused before any tensor is read.
 *
 * Commit protocol: at every instant DIR holds one complete checkpoint — the one before
 * the save, or the new one — so a kill or a full disk at any moment, even in a save into
 * the folder the run resumed from, loses nothing. Every file is written atomically
 * (atomic_file.h) and the save goes, in this order:
 *   1. begin (one process): DIR is created (as mkdir -p) and must take a write; a
 *      commit that a crash interrupted (DIR/latest exists) is finished (step 4);
 *      stage folders of dead writers (DIR/ckpt.tmp.HOST.PID, out_path.h) are removed;
 *      a fresh stage folder DIR/ckpt.tmp.HOST.PID is made. DIR's files are untouched.
 *   2. every writer (each rank its shards) writes its tensor files into the stage.
 *   3. commit (one process, once every writer succeeded): the indexes and trainer.json
 *      into the stage — it is now a complete checkpoint — then DIR/latest, a one-line
 *      file naming the stage, written atomically: THE COMMIT. Before it readers load
 *      DIR's own (old) files; from it on, the stage.
 *   4. install: each file of the stage is hard-linked over DIR's file of that name (a
 *      copy where the file system cannot link), trainer.json last; DIR's checkpoint
 *      files the new set lacks (another layout's shards or indexes) are removed; then
 *      DIR/latest is removed — from here readers load DIR's own (new) files — and the
 *      stage last. Each step is made durable (fsync of the folder) before the next.
 * A save that fails before the commit removes its stage: DIR is as it was. Readers
 * (pml_ckpt_read_info, pml_ckpt_restore, and pml_ckpt_load_weights given a folder) look
 * at DIR/latest first, so a folder in any state a crash leaves loads; a folder without
 * DIR/latest is the older layout, read as before. A folder without trainer.json (nor
 * DIR/latest) was never committed and is refused. When nothing crashed, DIR holds
 * exactly the files listed above and nothing else of PML's. Names in DIR that are
 * checkpoint files must be regular files (or links, which are replaced, not followed);
 * anything else there is refused before a save starts (pml_ckpt_check_folder).
 * Periodic checkpoints (DIR/step-NNNNNN) are saved the same way into their own folder.
 * Test hook: PML_TEST_CKPT_PAUSE_MS=N sleeps N ms between the phases of a save, so a
 * crash test's kills land in each (tests/runtime/checkpoint).
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

#include <stddef.h>
#include <stdint.h>

#include "exec/pipeline.h"
#include "plan/plan.h"

#define PML_CKPT_VERSION 2 /* 2: auto_freeze state (ckpt_freeze.h); 1 still loads */

/* What trainer.json records. */
typedef struct pml_ckpt_info {
    int64_t step;  /* steps taken */
    uint64_t seed; /* initialisation and dropout seed of the run */
    int freeze_afresh; /* a version-1 checkpoint of a model with `freeze auto`: no saved state, so the
                        * resumed run's checks start afresh */
} pml_ckpt_info;

/* Writes the pipeline's weights, optimizer state and step to folder `dir` (created as
 * mkdir -p when missing) by the commit protocol above. `seed` is the run's seed
 * (pml_pipeline_opts). */
pml_status pml_ckpt_save(const pml_plan *plan, pml_pipeline *p, uint64_t seed, const char *dir, pml_err *err);

/* The sharded save, in three calls every writer makes in this order, the next only once
 * the previous succeeded everywhere (the commit protocol above): begin (one process:
 * prepares `dir` and makes the stage folder, whose path goes into stage[cap], which
 * every writer must be told), save_shard (each of the `shards` writers: shard `shard`,
 * 0-based, of the weights and optimizer state as they are in `p`, into the stage),
 * commit (one process: the two indexes and trainer.json into the stage, then the commit
 * and the install into `dir`; the committer's `p` supplies only the step and which state
 * the optimizer keeps, not tensor data; on failure before the commit the stage is
 * removed). pml_ckpt_save is begin, one file each, and commit with shards = 0 (no
 * index). */
pml_status pml_ckpt_begin(const char *dir, char *stage, size_t cap, pml_err *err);
/* The gate every save applies first: the tensors of shard `shard` of `shards` (all with
 * shards = 0) are finite, or PML_ERR_NONFINITE names the first that is not ("DIR: not
 * written: ..."). Ranks call it before begin, so a refused save begins nothing. */
pml_status pml_ckpt_check_finite(const pml_plan *plan, pml_pipeline *p, const char *dir, int shard, int shards,
                                 pml_err *err);
pml_status pml_ckpt_save_shard(const pml_plan *plan, pml_pipeline *p, const char *stage, int shard, int shards,
                               pml_err *err);
pml_status pml_ckpt_commit(const pml_plan *plan, pml_pipeline *p, uint64_t seed, const char *dir, const char *stage,
                           int shards, pml_err *err);

/* The early check of an output folder for checkpoints, before a run's first step:
 * creates `dir` as mkdir -p, checks it takes a write (a probe file), and that no
 * checkpoint file name in it is a folder or a special file. */
pml_status pml_ckpt_check_folder(const char *dir, pml_err *err);

/* Reads and validates DIR/trainer.json against `plan`: the seed to create the pipeline
 * with, and the step to resume at. */
pml_status pml_ckpt_read_info(const pml_plan *plan, const char *dir, pml_ckpt_info *info, pml_err *err);

/* Restores weights, optimizer state and the step from `dir` into `p` (created with the
 * seed pml_ckpt_read_info returned). On failure `p` is unchanged. */
pml_status pml_ckpt_restore(const pml_plan *plan, pml_pipeline *p, const char *dir, pml_err *err);

/* Loads weights only (--init, pmlc infer --weights: both call this) from a safetensors
 * file, a shard index, or a folder holding either — a checkpoint (in any state a crash
 * leaves: DIR/latest is followed) or plain weights such as a Hugging Face folder, with
 * or without trainer.json: every plan parameter, F32, its plan shape, no unknown
 * tensors; metadata and trainer.json are not needed (the tensors' names and shapes are
 * what the fingerprint covers). A `pmlc quantize` file is read by quant/int8.h's rules
 * (its int8 weights dequantized). On failure `p` is unchanged. */
pml_status pml_ckpt_load_weights(const pml_plan *plan, pml_pipeline *p, const char *path, pml_err *err);

/* Loads a distillation teacher's parameters (plan.h) from the plan's teacher_path, a
 * path as written in the distill block, so relative to the current folder: every
 * teacher parameter present under its name in the teacher's own model (without
 * "teacher."), F32, with its plan shape, and no other tensor; a mismatch names the
 * file, the tensor and both shapes. Does nothing for a plan without a teacher.
 * Every creator of a pipeline calls it after pml_pipeline_create; the pipeline refuses
 * to run a teacher that was not loaded, so a teacher is never initialised randomly. */
pml_status pml_ckpt_load_teacher(const pml_plan *plan, pml_pipeline *p, pml_err *err);

/* The plan's fingerprint as 16 hex digits and a NUL. */
void pml_ckpt_fingerprint(const pml_plan *plan, char out[17]);

#endif
