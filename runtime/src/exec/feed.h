/* feed.h — the data a plan trains on, delivered micro-batch by micro-batch to the
 * pipeline (pipeline.h's pml_feed_fn).
 *
 * The sample rows of micro-batch mb of step s are the global batch's rows
 * s·batch + mb·microbatch + j, so which samples a step sees does not depend on how
 * the batch is cut into micro-batches. A generator (classes, markov) is an endless
 * dataset read in that order; a .npy dataset of N rows is read in a new random order
 * every epoch: global row r is row pml_shuffle_index(seed, r / N, N, r % N) of the
 * files, with the plan's training seed (conf.seed), so every epoch is a fresh
 * permutation and each row appears exactly once per epoch (with a holdout, of the
 * training rows: see below).
 *
 * Sizes: a micro-batch is conf.microbatch rows, written into the model's input and
 * labels. That they have exactly that many rows (and, from a generator, rows of its
 * width) is checked once, when the plan is read (plan_read.c); a file's row shape is
 * checked against the node here, when the feed opens it. So no fill writes past a node.
 *
 * .npy datasets (data = "x.npy", labels = "y.npy"):
 *   - Paths are used as the plan stores them, i.e. as written in the program: a
 *     relative path is resolved against the current working directory of the process
 *     (not the folder of the .pml file; the plan does not record that folder).
 *   - Both files are memory-mapped (formats/npy.h) and must have the same number of
 *     rows N >= 1 (their first dimension). Each row's shape must equal the model
 *     input's shape (labels: the labels node's shape) without its batch dimension.
 *   - The model has exactly one input. Element types are converted to the model's:
 *     f32 from f32, f64, u8, i32, i64 (u8 as plain values 0..255, no scaling to
 *     [0, 1]); i32 from i32, i64, u8 (i64 values must fit in i32, checked when the
 *     feed is created). Other combinations are PML_ERR_UNSUPPORTED.
 *   - Class labels (i32 labels with one axis fewer than the output) are checked when
 *     the feed is created: every one must lie in [0, V), V the output's last axis; the
 *     first that does not is named with its file, row and value ("y.npy: row 1234:
 *     label 10 is outside [0, 10)"). Labels of a float dtype cannot feed i32 labels.
 *   - A NaN or infinite value (or an f64 one beyond f32's range) is refused when the
 *     feed is created, naming the file, its row and element (PML_ERR_NONFINITE).
 *   - Every error message starts with the path of the file at fault.
 *
 * Held-out data (evaluation draws "steps" PML_EVAL_STEP0 + b, pipeline.h):
 *   - eval_data/eval_labels files: checked like the training pair; evaluation sample e
 *     is their row e % H (H their rows), in order.
 *   - holdout = f: a fixed permutation of the N rows (keyed by a constant, not the
 *     seed, so every seed holds out the same rows) puts H = floor(f·N) rows last; those
 *     are the evaluation rows and the first N - H the training rows. An epoch is N - H
 *     rows (pml_feed_rows), and no training step ever draws a held-out row.
 *   - neither: evaluation draws training rows, and pml_feed_eval_source says so.
 *
 * Token files (data = tokens("train.bin"), data/tokens.h): the model's one input is
 * i32[B, T], the labels like it, the output [B, T, V]. Sample i is a window of T + 1
 * tokens starting at a position drawn from (seed, i) (rng.h), uniform over the file's
 * starts: the input gets its first T tokens, the labels its last T. Every token must
 * be below V (checked when the file is opened). Held out: eval_data = tokens(...) (a
 * second file, windows drawn likewise from another stream), or holdout = f, the last
 * ceil(f·n) tokens of the file (nanoGPT's split), which training windows never reach.
 *
 * Ownership: the feed keeps `plan` (which must outlive it) and owns the mappings.
 * Thread safety: after pml_feed_create the feed is read-only; pml_feed_fill is
 * reentrant and may be called from several threads at once. */
#ifndef PML_TRAIN_FEED_H
#define PML_TRAIN_FEED_H

#include "formats/npy.h"
#include "plan/plan.h"

typedef struct pml_feed pml_feed;

/* Whether the plan's train block names a data source (a file, tokens or a generator). */
int pml_feed_has_source(const pml_plan *plan);

/* Opens the plan's data source and checks it fits the model's inputs and labels. */
pml_status pml_feed_create(const pml_plan *plan, pml_feed **out, pml_err *err);
void pml_feed_destroy(pml_feed *f);

/* The pml_feed_fn for pml_pipeline_opts (ctx: a pml_feed). `input` >= 0 fills model
 * input `input`, -1 the labels; dst holds the node's elements in the node's dtype. */
pml_status pml_feed_fill(void *ctx, int64_t step, int64_t mb, int input, void *dst, pml_err *err);

/* How many samples one epoch holds: the N training rows of a .npy dataset (those not
 * held out), 0 for a generator or a token file. */
int64_t pml_feed_rows(const pml_feed *f);

/* What evaluation (PML_EVAL_STEP0 on) draws from. */
typedef enum pml_feed_eval {
    PML_FEED_EVAL_FRESH,   /* a generator's samples past every training step: never trained on */
    PML_FEED_EVAL_FILES,   /* eval_data (and eval_labels) */
    PML_FEED_EVAL_HOLDOUT, /* the rows or tokens held out of the training file */
    PML_FEED_EVAL_TRAINING /* nothing is held out: training rows (or windows of the training tokens) */
} pml_feed_eval;

/* The evaluation source; *rows (when not NULL) gets the distinct rows it draws from
 * (0: endless or windows), *path the file it reads (NULL for a generator). */
pml_feed_eval pml_feed_eval_source(const pml_feed *f, int64_t *rows, const char **path);

/* What a model can achieve at best on a generator: the entropy rate of a markov source
 * in nats per token (a loss floor), or NaN when unknown. */
double pml_feed_best_loss(const pml_feed *f);

/* The element conversions above, for other readers of .npy rows (pmlc infer): whether
 * dtype `from` converts into a node of dtype `to` (f32 or i32), and the conversion of
 * n elements of `src` from element `at` on into dst (i64 values must fit in i32). */
int pml_feed_converts(pml_dtype from, pml_dtype to);
/* Every value of `a` (f32 or f64; integers always pass) is finite, and an f64 one also
 * within f32's range, or PML_ERR_NONFINITE names `path`, the row (of row_elems
 * elements) and the element: checked once when a file is opened. */
pml_status pml_feed_check_finite(const pml_npy_array *a, const char *path, size_t row_elems, pml_err *err);
void pml_feed_convert(void *dst, pml_dtype to, const void *src, pml_dtype from, size_t at, size_t n);
/* Every check a .npy file's rows get before they feed model input `input` (-1: the
 * labels), for rows from anywhere (the API's caller buffers too): the dtype converts,
 * the rank and row shape are the node's, the values are finite, i64 values fit an i32
 * node, and class labels lie in [0, V). Messages start with `path` (a file, or the API
 * call that was handed the rows); the row count is the caller's to check. */
pml_status pml_feed_check_rows(const pml_npy_array *a, const char *path, const pml_plan *plan, int input,
                               pml_err *err);

#endif
