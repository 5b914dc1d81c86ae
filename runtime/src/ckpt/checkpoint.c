/* checkpoint.c — checkpoint folders: save, validate, restore (see checkpoint.h). */
#define _POSIX_C_SOURCE 200809L /* mkdir, unlink, nanosleep */
#include "ckpt/checkpoint.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/freeze.h"
#include "core/finite.h"
#include "exec/ranks.h"
#include "formats/atomic_file.h"
#include "formats/json.h"
#include "formats/out_path.h"
#include "formats/safetensors.h"
#include "formats/st_shards.h"
#include "plan/optim.h"
#include "pml/hash.h"
#include "quant/int8.h"

#define TRAINER_MAX_BYTES (1 << 20)
#define STAGE_BASE "ckpt" /* DIR/ckpt.tmp.HOST.PID/: a save in progress (checkpoint.h) */
#define POINTER "latest"  /* DIR/latest: the commit of a save whose files are being installed */

/* One tensor a file must hold: the buffer `which` (-1: the weights, 0/1: optimizer
 * state) of parameter `param`, named `name`. */
typedef struct want {
    char *name;
    int param, which;
} want;

typedef struct want_list {
    want *w;
    int n;
} want_list;

static void wants_free(want_list *l)
{
    for (int i = 0; l->w && i < l->n; i++) free(l->w[i].name);
    free(l->w);
    l->w = NULL;
    l->n = 0;
}

static const char *optim_name(const pml_plan *plan)
{
    int s = pml_optim_state_per_elem(&plan->conf);
    return s == 2 ? "adamw" : s == 1 ? "sgd_momentum" : "sgd";
}

/* Which file a want list describes. A teacher's parameters (plan.h) belong to the
 * teacher's own file, under their names without "teacher.", and to no checkpoint;
 * parameters saved apart (match projections) to distill.safetensors, not the model's. */
enum { FILE_MODEL, FILE_OPTIMIZER, FILE_TEACHER, FILE_APART };
#define TEACHER_PREFIX "teacher."
#define APART_BASE "distill"

static int in_file(const pml_plan_param *prm, int file)
{
    if (prm->tie >= 0) return 0; /* a tied weight's copy: the file holds its root, under the same name */
    if (file == FILE_TEACHER) return prm->teacher;
    if (file == FILE_APART) return prm->apart;
    return !prm->teacher && (file == FILE_OPTIMIZER || !prm->apart);
}

static int has_apart(const pml_plan *plan)
{
    for (int q = 0; q < plan->n_params; q++)
        if (plan->params[q].apart) return 1;
    return 0;
}

/* Frozen at step `step` (for good: a freeze never ends), so its optimizer state is never
 * read again: a checkpoint at that step neither saves nor needs it. */
static int frozen_by(const pml_plan_param *prm, int64_t step) { return prm->frozen_from >= 0 && prm->frozen_from <= step; }

/* The tensors of model.safetensors, optimizer.safetensors (at step `step`),
 * distill.safetensors or the teacher's file. */
static pml_status wants_build(const pml_plan *plan, pml_pipeline *p, int file, int64_t step, want_list *l,
                              pml_err *err)
{
    static const char *const sfx[3][2] = {{NULL, NULL}, {".momentum_buffer", NULL}, {".exp_avg", ".exp_avg_sq"}};
    int optimizer = file == FILE_OPTIMIZER;
    int state = optimizer ? pml_optim_state_per_elem(&plan->conf) : 0;
    l->n = 0;
    l->w = calloc((size_t)plan->n_params * 2 + 1, sizeof *l->w);
    if (!l->w) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int q = 0; q < plan->n_params; q++) {
        if (!in_file(&plan->params[q], file)) continue;
        if (optimizer && frozen_by(&plan->params[q], step)) continue;
        const char *name = plan->params[q].name + (file == FILE_TEACHER ? strlen(TEACHER_PREFIX) : 0);
        int k0 = optimizer ? 0 : -1, k1 = optimizer ? state : 0;
        for (int k = k0; k < k1; k++) {
            if (k >= 0 && !pml_pipeline_optim_state(p, q, k)) continue;
            const char *suffix = k >= 0 ? sfx[state][k] : "";
            size_t len = strlen(name) + strlen(suffix) + 1;
            char *s = malloc(len);
            if (!s) {
                wants_free(l);
                return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
            }
            snprintf(s, len, "%s%s", name, suffix);
            l->w[l->n++] = (want){s, q, k};
        }
    }
    return PML_OK;
}

/* Parameters of the model a checkpoint holds: all but a teacher's and those saved apart. */
static int saved_params(const pml_plan *plan)
{
    int n = 0;
    for (int q = 0; q < plan->n_params; q++) n += in_file(&plan->params[q], FILE_MODEL);
    return n;
}

static float *want_data(pml_pipeline *p, const want *w)
{
    return w->which < 0 ? pml_pipeline_param(p, w->param) : pml_pipeline_optim_state(p, w->param, w->which);
}

static void shape_str(char *out, size_t cap, int rank, const int64_t *dims)
{
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%" PRId64, i ? ", " : "", dims[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

/* Whether `name` is optimizer state of a parameter frozen by `step`: a checkpoint
 * written before that rule holds it, and a run resumed with the freeze made static keeps
 * none for that parameter, so the state is read past, not refused. */
static int frozen_state(const pml_plan *plan, const char *name, int64_t step)
{
    static const char *const sfx[] = {".momentum_buffer", ".exp_avg", ".exp_avg_sq"};
    for (int q = 0; q < plan->n_params; q++) {
        const pml_plan_param *prm = &plan->params[q];
        size_t len = strlen(prm->name);
        if (prm->teacher || !frozen_by(prm, step) || strncmp(name, prm->name, len)) continue;
        for (size_t k = 0; k < sizeof sfx / sizeof *sfx; k++)
            if (!strcmp(name + len, sfx[k])) return 1;
    }
    return 0;
}

/* Every wanted tensor present, F32, with its plan shape; nothing else in the file but
 * the state of parameters frozen by `step` (frozen_state). */
static pml_status check_tensors(const pml_plan *plan, const pml_sts *f, const want_list *l, int file, int64_t step,
                                const char *what, pml_err *err)
{
    const char *path = pml_sts_path(f);
    for (int i = 0; i < l->n; i++) {
        const pml_plan_node *n = &plan->nodes[plan->params[l->w[i].param].node];
        const pml_st_tensor *t = pml_sts_find(f, l->w[i].name);
        char want_shape[256], got_shape[256];
        shape_str(want_shape, sizeof want_shape, n->rank, n->dims);
        if (!t)
            return pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%s' is missing (a parameter of shape %s)", path,
                               l->w[i].name, want_shape);
        if (t->dtype != PML_F32) {
            const char *dt = pml_st_dtype_name(t->dtype);
            return pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%s' is %s, expected F32",
                               pml_sts_where(f, l->w[i].name), l->w[i].name, dt ? dt : "?");
        }
        shape_str(got_shape, sizeof got_shape, t->rank, t->shape);
        int same = t->rank == n->rank;
        for (int d = 0; same && d < n->rank; d++) same = t->shape[d] == n->dims[d];
        if (!same)
            return pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%s' has shape %s, but the plan's is %s",
                               pml_sts_where(f, l->w[i].name), l->w[i].name, got_shape, want_shape);
    }
    if (pml_sts_count(f) == (size_t)l->n) return PML_OK;
    size_t extra = 0;
    for (size_t i = 0; i < pml_sts_count(f); i++) {
        const char *name = pml_sts_tensor_at(f, i)->name;
        int known = 0;
        for (int k = 0; k < l->n && !known; k++) known = !strcmp(name, l->w[k].name);
        if (!known && file == FILE_OPTIMIZER && frozen_state(plan, name, step)) {
            extra++;
            continue;
        }
        if (!known)
            return pml_err_set(err, PML_ERR_FORMAT, "%s: unknown tensor '%s' (not part of this model's %s)",
                               pml_sts_where(f, name), name, what);
    }
    if (pml_sts_count(f) == (size_t)l->n + extra) return PML_OK;
    return pml_err_set(err, PML_ERR_INTERNAL, "%s: tensor count mismatch", path);
}

/* Opens `path` (a file, an index or a checkpoint folder: st_shards.h) as `file` and
 * checks its tensors against the plan. */
static pml_status open_checked(const pml_plan *plan, pml_pipeline *p, const char *path, int file, int64_t step,
                               pml_sts **f, want_list *l, pml_err *err)
{
    static const char *const what[] = {"parameters", "optimizer state", "teacher's parameters",
                                       "distillation's match projections"};
    static const char *const base[] = {"model", "optimizer", "model", APART_BASE};
    *f = NULL;
    pml_status st = wants_build(plan, p, file, step, l, err);
    if (!st) st = pml_sts_open(path, base[file], f, err);
    if (!st) st = check_tensors(plan, *f, l, file, step, what[file], err);
    for (int i = 0; i < l->n && !st; i++) { /* a NaN read in would pass for a diverged run */
        const pml_st_tensor *t = pml_sts_find(*f, l->w[i].name);
        size_t n = t->nbytes / sizeof(float), k = pml_finite_scan_f32(t->data, n);
        if (k < n)
            st = pml_err_set(err, PML_ERR_NONFINITE, "%s: tensor '%s' is %s at element %zu (%s must be finite)",
                             pml_sts_where(*f, l->w[i].name), l->w[i].name, pml_finite_name_f32(t->data, k), k,
                             what[file]);
    }
    if (st) {
        pml_sts_close(*f);
        *f = NULL;
        wants_free(l);
    }
    return st;
}

/* The tensors into the pipeline: each parameter's, and its tied copies' (plan.h's tie). */
static void copy_in(const pml_plan *plan, pml_pipeline *p, const pml_sts *f, const want_list *l)
{
    for (int i = 0; i < l->n; i++) {
        const pml_st_tensor *t = pml_sts_find(f, l->w[i].name);
        memcpy(want_data(p, &l->w[i]), t->data, t->nbytes);
        for (int q = 0; q < plan->n_params; q++) {
            if (plan->params[q].tie != l->w[i].param) continue;
            want copy = {l->w[i].name, q, l->w[i].which};
            void *dst = want_data(p, &copy);
            if (dst) memcpy(dst, t->data, t->nbytes);
        }
    }
}

/* A metadata value that must be the decimal `step`. */
static pml_status check_step_value(const char *v, const char *path, int64_t step, pml_err *err)
{
    char expect[32];
    snprintf(expect, sizeof expect, "%" PRId64, step);
    if (!v) return pml_err_set(err, PML_ERR_FORMAT, "%s: no 'pml_step' in the metadata", path);
    if (strcmp(v, expect))
        return pml_err_set(err, PML_ERR_FORMAT, "%s: pml_step is '%.40s' but trainer.json says %" PRId64, path, v,
                           step);
    return PML_OK;
}

/* The set's step (the index's for shards) and every shard's: a shard left over from a
 * step that was never committed shows here. */
static pml_status check_step_meta(const pml_sts *f, int64_t step, pml_err *err)
{
    pml_status st = check_step_value(pml_sts_metadata(f, "pml_step"), pml_sts_path(f), step, err);
    for (size_t i = 0; i < pml_sts_shards(f) && !st; i++) {
        const char *path;
        const pml_st_file *shard = pml_sts_shard(f, i, &path);
        st = check_step_value(pml_st_metadata(shard, "pml_step"), path, step, err);
    }
    return st;
}

void pml_ckpt_fingerprint(const pml_plan *plan, char out[17])
{
    uint64_t h = PML_FNV1A_SEED;
#define MIX(byte) (h = pml_fnv1a_byte(h, (uint8_t)(byte)))
    for (int q = 0; q < plan->n_params; q++) {
        const pml_plan_node *n = &plan->nodes[plan->params[q].node];
        if (!in_file(&plan->params[q], FILE_MODEL)) continue; /* not part of the student */
        for (const char *s = plan->params[q].name; *s; s++) MIX(*s);
        MIX(0);
        MIX(n->rank);
        for (int d = 0; d < n->rank; d++)
            for (int b = 0; b < 8; b++) MIX((uint64_t)n->dims[d] >> (8 * b));
    }
#undef MIX
    snprintf(out, 17, "%016" PRIx64, h);
}

/* ---- saving ----------------------------------------------------------------------- */

/* The shard (of `shards`) that holds parameter `q`: its stage's owner when the stages
 * (with chunks, the stage devices) are split over `shards` ranks as ranks.h splits them. */
static int shard_of(const pml_plan *plan, int q, int shards)
{
    return pml_ranks_chunk_owner(pml_plan_devices(plan), (int)plan->conf.schedule, shards,
                                 plan->nodes[plan->params[q].node].stage);
}

/* Keeps only the wants of shard `shard` of `shards`. */
static void wants_keep_shard(const pml_plan *plan, want_list *l, int shard, int shards)
{
    int kept = 0;
    for (int i = 0; i < l->n; i++) {
        if (shard_of(plan, l->w[i].param, shards) == shard)
            l->w[kept++] = l->w[i];
        else
            free(l->w[i].name);
    }
    l->n = kept;
}

/* The gate of every save: each tensor of `file` (all, or shard `shard` of `shards` when
 * shards > 0) is finite, or PML_ERR_NONFINITE names the first that is not, before
 * anything of the save is written. */
static pml_status check_finite(const pml_plan *plan, pml_pipeline *p, const char *dir, int file, int shard, int shards,
                               pml_err *err)
{
    want_list l = {0};
    int64_t step = pml_pipeline_steps_done(p);
    pml_status st = wants_build(plan, p, file, step, &l, err);
    if (st) return st;
    if (shards > 0) wants_keep_shard(plan, &l, shard, shards);
    for (int i = 0; i < l.n && !st; i++) {
        const float *x = want_data(p, &l.w[i]);
        size_t n = (size_t)plan->nodes[plan->params[l.w[i].param].node].numel, k = x ? pml_finite_scan_f32(x, n) : n;
        if (k < n)
            st = pml_err_set(err, PML_ERR_NONFINITE,
                             "%s: not written: tensor '%s' is %s at element %zu after step %lld (a checkpoint never "
                             "holds a non-finite value; the previous one stays)",
                             dir, l.w[i].name, pml_finite_name(x[k]), k, (long long)step);
    }
    wants_free(&l);
    return st;
}

pml_status pml_ckpt_check_finite(const pml_plan *plan, pml_pipeline *p, const char *dir, int shard, int shards,
                                 pml_err *err)
{
    static const int files[] = {FILE_MODEL, FILE_OPTIMIZER, FILE_APART};
    pml_status st = PML_OK;
    for (size_t i = 0; i < sizeof files / sizeof *files && !st; i++)
        st = check_finite(plan, p, dir, files[i], shard, shards, err);
    return st;
}

/* The tensors of `file` (all, or shard `shard` of `shards` when shards > 0) to `path`,
 * atomically. */
static pml_status write_st(const pml_plan *plan, pml_pipeline *p, const char *path, int file, int shard, int shards,
                           const pml_st_meta *meta, size_t n_meta, pml_err *err)
{
    want_list l = {0};
    pml_status st = wants_build(plan, p, file, pml_pipeline_steps_done(p), &l, err);
    if (st) return st;
    if (shards > 0) wants_keep_shard(plan, &l, shard, shards);
    pml_st_tensor *ts = calloc((size_t)l.n + 1, sizeof *ts);
    if (!ts) {
        wants_free(&l);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < l.n; i++) {
        const pml_plan_node *n = &plan->nodes[plan->params[l.w[i].param].node];
        ts[i].name = l.w[i].name;
        ts[i].dtype = PML_F32;
        ts[i].rank = n->rank;
        memcpy(ts[i].shape, n->dims, sizeof(int64_t) * n->rank);
        ts[i].data = want_data(p, &l.w[i]);
        ts[i].nbytes = (size_t)n->numel * sizeof(float);
    }
    st = pml_st_write(path, ts, (size_t)l.n, meta, n_meta, err);
    free(ts);
    wants_free(&l);
    return st;
}

static pml_status write_trainer(const pml_plan *plan, pml_pipeline *p, uint64_t seed, const char *path, pml_err *err)
{
    char fp[17];
    pml_ckpt_fingerprint(plan, fp);
    pml_json_buf b = {0};
    pml_json_buf_printf(&b,
                        "{\n  \"format\": \"pml-checkpoint\",\n  \"version\": %d,\n  \"step\": %" PRId64
                        ",\n  \"seed\": %" PRIu64 ",\n  \"model\": \"%s\",\n  \"parameters\": %d,\n"
                        "  \"optimizer\": \"%s\"",
                        PML_CKPT_VERSION, pml_pipeline_steps_done(p), seed, fp, saved_params(plan), optim_name(plan));
    pml_status st = pml_ckpt_freeze_write(plan, p, &b, err);
    if (plan->conf.precision == PML_F16) { /* f16's loss scaling: a resume continues it */
        double scale;
        int64_t good;
        pml_pipeline_loss_scale(p, &scale, &good);
        pml_json_buf_printf(&b, ",\n  \"loss_scale\": {\"scale\": %.17g, \"good_steps\": %" PRId64 "}", scale, good);
    }
    pml_json_buf_puts(&b, "\n}\n");
    if (st) {
        pml_json_buf_free(&b);
        return st;
    }
    return pml_json_buf_save(&b, path, err);
}

/* DIR/NAME into a fresh string (NULL: out of memory, err set). */
static char *in_dir(const char *dir, const char *name, pml_err *err)
{
    size_t cap = strlen(dir) + strlen(name) + 2;
    char *path = malloc(cap);
    if (path)
        snprintf(path, cap, "%s/%s", dir, name);
    else
        pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    return path;
}

/* What every model and optimizer file (or index) of a checkpoint says about itself. */
typedef struct ckpt_meta {
    char step[32], fp[17];
    pml_st_meta model[3], optimizer[2];
} ckpt_meta;

static void meta_init(ckpt_meta *m, const pml_plan *plan, pml_pipeline *p)
{
    snprintf(m->step, sizeof m->step, "%" PRId64, pml_pipeline_steps_done(p));
    pml_ckpt_fingerprint(plan, m->fp);
    m->model[0] = (pml_st_meta){"format", "pt"};
    m->model[1] = (pml_st_meta){"pml_model", m->fp};
    m->model[2] = (pml_st_meta){"pml_step", m->step};
    m->optimizer[0] = (pml_st_meta){"pml_optimizer", optim_name(plan)};
    m->optimizer[1] = (pml_st_meta){"pml_step", m->step};
}

/* Whether `name` is a shard this module writes: BASE-ddddd-of-ddddd.safetensors. */
static int is_shard_name(const char *name)
{
    static const char *const bases[] = {"model-", "optimizer-"};
    for (size_t b = 0; b < sizeof bases / sizeof *bases; b++) {
        size_t n = strlen(bases[b]);
        if (strncmp(name, bases[b], n)) continue;
        const char *r = name + n;
        int ok = strlen(r) == strlen("00001-of-00004.safetensors") && !strcmp(r + 14, ".safetensors") &&
                 !strncmp(r + 5, "-of-", 4);
        for (int i = 0; ok && i < 5; i++) ok = r[i] >= '0' && r[i] <= '9' && r[9 + i] >= '0' && r[9 + i] <= '9';
        if (ok) return 1;
    }
    return 0;
}

/* Whether `name` is one of the files a checkpoint folder holds (either layout). */
static int is_ckpt_file(const char *name)
{
    static const char *const files[] = {
        "trainer.json",      "model.safetensors.index.json", "optimizer.safetensors.index.json",
        "model.safetensors", "optimizer.safetensors",        APART_BASE ".safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if (!strcmp(name, files[i])) return 1;
    return is_shard_name(name);
}

/* Test hook (checkpoint.h): PML_TEST_CKPT_PAUSE_MS=N sleeps N ms between the phases of
 * a save, so that a test's kills land in each of them. */
static void pause_phase(void)
{
    const char *v = getenv("PML_TEST_CKPT_PAUSE_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    if (ms > 0 && ms < 10000) nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* Reads DIR/latest: the name of the sub-folder holding the committed checkpoint while
 * DIR's own files are being replaced. *name is NULL when there is none. */
static pml_status read_pointer(const char *dir, char **name, pml_err *err)
{
    *name = NULL;
    char *path = in_dir(dir, POINTER, err);
    if (!path) return PML_ERR_NOMEM;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        free(path);
        return e == ENOENT || e == ENOTDIR
                   ? PML_OK
                   : pml_err_set(err, PML_ERR_IO, "%s/%s: cannot read: %s", dir, POINTER, strerror(e));
    }
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    pml_status st = PML_OK;
    if (!n || strchr(buf, '/') || !strcmp(buf, ".") || !strcmp(buf, "..") || strlen(buf) != n)
        st = pml_err_set(err, PML_ERR_FORMAT, "%s: does not name a folder beside it", path);
    else if (!(*name = strdup(buf)))
        st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    free(path);
    return st;
}

/* The folder whose files are the checkpoint in DIR: DIR/NAME while DIR/latest names
 * NAME (a commit in progress), else DIR itself; malloc'ed. */
static pml_status resolve(const char *dir, char **out, pml_err *err)
{
    char *name;
    *out = NULL;
    pml_status st = read_pointer(dir, &name, err);
    if (st) return st;
    if (!name) {
        *out = strdup(dir);
        return *out ? PML_OK : pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    *out = in_dir(dir, name, err);
    struct stat sb;
    if (*out && (stat(*out, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
        st = pml_err_set(err, PML_ERR_FORMAT, "%s/%s names %s, which is not a folder there (a damaged checkpoint)", dir,
                         POINTER, name);
        free(*out);
        *out = NULL;
    } else if (!*out) {
        st = PML_ERR_NOMEM;
    }
    free(name);
    return st;
}

pml_status pml_ckpt_check_folder(const char *dir, pml_err *err)
{
    pml_status st = pml_out_make_dir(dir, err);
    DIR *d = st ? NULL : opendir(dir);
    if (!st && !d) return pml_err_set(err, PML_ERR_IO, "%s: cannot list the folder: %s", dir, strerror(errno));
    for (struct dirent *e; !st && d && (e = readdir(d));) {
        if (!is_ckpt_file(e->d_name) && strcmp(e->d_name, POINTER)) continue;
        char *path = in_dir(dir, e->d_name, err);
        struct stat sb;
        if (!path)
            st = PML_ERR_NOMEM;
        else if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode))
            st = pml_err_set(err, PML_ERR_IO, "%s: is %s, not a checkpoint file (move it away)", path,
                             S_ISDIR(sb.st_mode) ? "a folder" : "a special file");
        free(path);
    }
    if (d) closedir(d);
    return st;
}

/* Makes the checkpoint in DIR/NAME (complete, named by DIR/latest) DIR's own: each of
 * its files linked over DIR's (trainer.json last), DIR's checkpoint files it lacks
 * removed (another layout's), then DIR/latest removed, then DIR/NAME. Every step is
 * durable before the next; a crash anywhere leaves DIR/latest naming a complete set,
 * or DIR's own files complete. */
static pml_status install(const char *dir, const char *name, pml_err *err)
{
    char *stage = in_dir(dir, name, err), *src = NULL, *dst = NULL;
    if (!stage) return PML_ERR_NOMEM;
    pml_status st = PML_OK;
    for (int pass = 0; pass < 3 && !st; pass++) { /* 0: the tensors, 1: trainer.json, 2: DIR's leftovers */
        DIR *d = opendir(pass < 2 ? stage : dir);
        if (!d) {
            st =
                pml_err_set(err, PML_ERR_IO, "%s: cannot list the folder: %s", pass < 2 ? stage : dir, strerror(errno));
            break;
        }
        for (struct dirent *e; !st && (e = readdir(d));) {
            if (!is_ckpt_file(e->d_name) || (pass < 2 && !strcmp(e->d_name, "trainer.json") == (pass == 0))) continue;
            src = in_dir(stage, e->d_name, err);
            dst = in_dir(dir, e->d_name, err);
            struct stat sb;
            if (!src || !dst)
                st = PML_ERR_NOMEM;
            else if (pass < 2)
                st = pml_atomic_link(src, dst, err);
            else if (lstat(src, &sb) != 0 && errno == ENOENT)
                st = pml_atomic_remove(dst, err);
            free(src);
            free(dst);
            src = dst = NULL;
            if (pass == 0) pause_phase();
        }
        closedir(d);
    }
    char *pointer = st ? NULL : in_dir(dir, POINTER, err);
    if (!st && !pointer) st = PML_ERR_NOMEM;
    if (!st) st = pml_atomic_remove(pointer, err);
    if (!st) {
        pause_phase();
        pml_out_remove_folder(stage);
    }
    free(pointer);
    free(stage);
    return st;
}

/* Removes the temporary files killed saves left in DIR: of its checkpoint files and
 * its pointer (a link or write never renamed), and whole stage folders. */
static void clean_stale_temps(const char *dir)
{
    pml_out_clean_stale(dir, STAGE_BASE, NULL);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *tmp = strstr(e->d_name, ".tmp.");
        char *base = tmp ? strndup(e->d_name, (size_t)(tmp - e->d_name)) : NULL;
        if (base && (is_ckpt_file(base) || !strcmp(base, POINTER))) pml_out_clean_stale(dir, base, NULL);
        free(base);
    }
    if (d) closedir(d);
}

pml_status pml_ckpt_begin(const char *dir, char *stage, size_t cap, pml_err *err)
{
    /* DIR keeps its checkpoint untouched: the new one is written into a sub-folder of
     * its own, committed by pml_ckpt_commit. A commit a crash interrupted is finished
     * first, so that DIR's own files are whole again before anything else moves. */
    char *name = NULL, *base = NULL, *path = NULL;
    pml_status st = pml_ckpt_check_folder(dir, err);
    if (!st) st = read_pointer(dir, &name, err);
    if (!st && name) st = install(dir, name, err);
    free(name);
    if (st) return st;
    clean_stale_temps(dir);
    if (!(base = in_dir(dir, STAGE_BASE, err))) return PML_ERR_NOMEM;
    path = pml_out_tmp_name(base);
    free(base);
    if (!path) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_out_remove_folder(path); /* ours: an earlier save of this process that failed */
    if (strlen(path) >= cap)
        st = pml_err_set(err, PML_ERR_INVALID_ARG, "%s: the path is too long", path);
    else if (mkdir(path, 0777) != 0)
        st = pml_err_set(err, PML_ERR_IO, "%s: cannot create the folder: %s", path, strerror(errno));
    else
        snprintf(stage, cap, "%s", path);
    free(path);
    if (!st) pause_phase();
    return st;
}

/* The shard that writes distill.safetensors: the one holding its parameters, which
 * all sit on the loss's stage (-1: the plan has none). */
static int apart_shard(const pml_plan *plan, int shards)
{
    for (int q = 0; q < plan->n_params; q++)
        if (plan->params[q].apart) return shards > 0 ? shard_of(plan, q, shards) : 0;
    return -1;
}

/* distill.safetensors, whole, with the model's metadata but its format. */
static pml_status write_apart(const pml_plan *plan, pml_pipeline *p, const char *dir, const ckpt_meta *m,
                              pml_err *err)
{
    char *path = in_dir(dir, APART_BASE ".safetensors", err);
    if (!path) return PML_ERR_NOMEM;
    pml_status st = write_st(plan, p, path, FILE_APART, 0, 0, m->model + 1, 2, err);
    free(path);
    return st;
}

pml_status pml_ckpt_save_shard(const pml_plan *plan, pml_pipeline *p, const char *dir, int shard, int shards,
                               pml_err *err)
{
    if (shard < 0 || shard >= shards || shards > pml_plan_devices(plan))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: shard %d of %d (the plan has %d stage devices)", dir, shard,
                           shards, pml_plan_devices(plan));
    ckpt_meta m;
    meta_init(&m, plan, p);
    char name[64];
    pml_status st = pml_ckpt_check_finite(plan, p, dir, shard, shards, err);
    for (int optimizer = 0; optimizer < 2 && !st; optimizer++) {
        pml_sts_shard_name(optimizer ? "optimizer" : "model", shard + 1, shards, name, sizeof name);
        char *path = in_dir(dir, name, err);
        if (!path) return PML_ERR_NOMEM;
        st = write_st(plan, p, path, optimizer ? FILE_OPTIMIZER : FILE_MODEL, shard, shards,
                      optimizer ? m.optimizer : m.model, optimizer ? 2 : 3, err);
        free(path);
    }
    if (!st && apart_shard(plan, shards) == shard) st = write_apart(plan, p, dir, &m, err);
    return st;
}

/* BASE.safetensors.index.json for `shards` shards. */
static pml_status write_index(const pml_plan *plan, pml_pipeline *p, const char *dir, int optimizer, int shards,
                              const ckpt_meta *m, pml_err *err)
{
    const char *base = optimizer ? "optimizer" : "model";
    want_list l = {0};
    pml_status st =
        wants_build(plan, p, optimizer ? FILE_OPTIMIZER : FILE_MODEL, pml_pipeline_steps_done(p), &l, err);
    if (st) return st;
    const char **names = calloc((size_t)l.n + 1, sizeof *names), **files = calloc((size_t)l.n + 1, sizeof *files);
    char(*shard_names)[64] = calloc((size_t)shards, sizeof *shard_names);
    char index[64];
    snprintf(index, sizeof index, "%s.safetensors.index.json", base);
    char *path = in_dir(dir, index, err);
    long long total = 0;
    if (!names || !files || !shard_names || !path) {
        st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    } else {
        for (int k = 0; k < shards; k++) pml_sts_shard_name(base, k + 1, shards, shard_names[k], sizeof shard_names[k]);
        for (int i = 0; i < l.n; i++) {
            names[i] = l.w[i].name;
            files[i] = shard_names[shard_of(plan, l.w[i].param, shards)];
            total += (long long)plan->nodes[plan->params[l.w[i].param].node].numel * (long long)sizeof(float);
        }
        st = pml_sts_write_index(path, optimizer ? m->optimizer : m->model, optimizer ? 2 : 3, total, names, files,
                                 (size_t)l.n, err);
    }
    free(path);
    free(shard_names);
    free(names);
    free(files);
    wants_free(&l);
    return st;
}

pml_status pml_ckpt_commit(const pml_plan *plan, pml_pipeline *p, uint64_t seed, const char *dir, const char *stage,
                           int shards, pml_err *err)
{
    if (seed > INT64_MAX) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: seed %" PRIu64 " is too large", dir, seed);
    ckpt_meta m;
    meta_init(&m, plan, p);
    pml_status st = PML_OK;
    for (int optimizer = 0; optimizer < 2 && !st && shards > 0; optimizer++)
        st = write_index(plan, p, stage, optimizer, shards, &m, err);
    char *path = st ? NULL : in_dir(stage, "trainer.json", err);
    if (!st && !path) st = PML_ERR_NOMEM;
    if (!st) st = write_trainer(plan, p, seed, path, err);
    free(path);
    if (!st) pause_phase();
    /* The commit: DIR/latest names the complete set in `stage` (one atomic rename). */
    const char *slash = strrchr(stage, '/');
    const char *name = slash ? slash + 1 : stage;
    char *pointer = st ? NULL : in_dir(dir, POINTER, err);
    if (!st && !pointer) st = PML_ERR_NOMEM;
    pml_atomic_file f;
    if (!st && !(st = pml_atomic_open(&f, pointer, err))) {
        st = pml_atomic_write(&f, name, strlen(name), err);
        if (!st) st = pml_atomic_write(&f, "\n", 1, err);
        st = st ? (pml_atomic_abort(&f), st) : pml_atomic_commit(&f, err);
    }
    free(pointer);
    if (st) {
        char *named = NULL;
        pml_err ignored;
        read_pointer(dir, &named, &ignored);
        if (!named || strcmp(named, name)) pml_out_remove_folder(stage); /* uncommitted: DIR is as it was */
        free(named);
        return st;
    }
    pause_phase();
    return install(dir, name, err);
}

pml_status pml_ckpt_save(const pml_plan *plan, pml_pipeline *p, uint64_t seed, const char *dir, pml_err *err)
{
    if (seed > INT64_MAX) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: seed %" PRIu64 " is too large", dir, seed);
    char stage[4096];
    pml_status st = pml_ckpt_check_finite(plan, p, dir, 0, 0, err);
    if (!st) st = pml_ckpt_begin(dir, stage, sizeof stage, err);
    if (st) return st;
    ckpt_meta m;
    meta_init(&m, plan, p);
    for (int optimizer = 0; optimizer < 2 && !st; optimizer++) {
        char *path = in_dir(stage, optimizer ? "optimizer.safetensors" : "model.safetensors", err);
        if (!path) {
            st = PML_ERR_NOMEM;
            break;
        }
        st = write_st(plan, p, path, optimizer ? FILE_OPTIMIZER : FILE_MODEL, 0, 0, optimizer ? m.optimizer : m.model,
                      optimizer ? 2 : 3, err);
        free(path);
        pause_phase();
    }
    if (!st && has_apart(plan)) st = write_apart(plan, p, stage, &m, err);
    if (!st) return pml_ckpt_commit(plan, p, seed, dir, stage, 0, err);
    pml_out_remove_folder(stage);
    return st;
}

/* ---- loading ---------------------------------------------------------------------- */

static pml_status get_field(const pml_json *root, const char *path, const char *key, pml_json_kind kind,
                            const pml_json **out, pml_err *err)
{
    *out = pml_json_get(root, key);
    if (!*out) return pml_err_set(err, PML_ERR_FORMAT, "%s: no \"%s\"", path, key);
    if ((*out)->kind != kind)
        return pml_err_set(
            err, PML_ERR_FORMAT, "%s: \"%s\" is a%s %s, expected %s", path, key,
            (*out)->kind == PML_JSON_INT || (*out)->kind == PML_JSON_ARRAY || (*out)->kind == PML_JSON_OBJECT ? "n"
                                                                                                              : "",
            pml_json_kind_name((*out)->kind), pml_json_kind_name(kind));
    return PML_OK;
}

#define DIFFS_SHOWN 6 /* differences written out in a refusal; the rest are counted */

/* Appends one difference to `out` (`*n` bytes used; `*count` found so far): the first
 * few are written out, the rest only counted. */
static void add_difference(char *out, size_t cap, size_t *n, int *count, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add_difference(char *out, size_t cap, size_t *n, int *count, const char *fmt, ...)
{
    if ((*count)++ >= DIFFS_SHOWN || *n >= cap) return;
    if (*n) *n += (size_t)snprintf(out + *n, cap - *n, "; ");
    va_list ap;
    va_start(ap, fmt);
    if (*n < cap) *n += (size_t)vsnprintf(out + *n, cap - *n, fmt, ap);
    va_end(ap);
}

/* What differs between the model file beside `trainer` (DIR/trainer.json) and this
 * plan's parameters — each name, shape and dtype with both sides — into `out`; "" when
 * that file cannot be read or nothing differs. A resume into a changed model then names
 * what changed instead of two fingerprints. */
static void model_differences(const pml_plan *plan, const char *trainer, char *out, size_t cap)
{
    out[0] = 0;
    const char *slash = strrchr(trainer, '/');
    char *dir = slash ? strndup(trainer, (size_t)(slash - trainer)) : strdup(".");
    pml_sts *f = NULL;
    pml_err ignored;
    if (!dir || pml_sts_open(dir, "model", &f, &ignored)) {
        free(dir);
        return;
    }
    size_t n = 0;
    int count = 0;
    char a[128], b[128];
    for (int q = 0; q < plan->n_params; q++) {
        if (!in_file(&plan->params[q], FILE_MODEL)) continue;
        const pml_plan_node *node = &plan->nodes[plan->params[q].node];
        const pml_st_tensor *t = pml_sts_find(f, plan->params[q].name);
        shape_str(a, sizeof a, node->rank, node->dims);
        if (!t) {
            add_difference(out, cap, &n, &count, "'%s' %s of this model is not in the checkpoint",
                           plan->params[q].name, a);
            continue;
        }
        shape_str(b, sizeof b, t->rank, t->shape);
        if (strcmp(a, b))
            add_difference(out, cap, &n, &count, "'%s' is %s in the checkpoint, %s in this model",
                           plan->params[q].name, b, a);
        else if (t->dtype != PML_F32)
            add_difference(out, cap, &n, &count, "'%s' is %s in the checkpoint, F32 in this model",
                           plan->params[q].name, pml_st_dtype_name(t->dtype) ? pml_st_dtype_name(t->dtype) : "?");
    }
    for (size_t i = 0; i < pml_sts_count(f); i++) {
        const pml_st_tensor *t = pml_sts_tensor_at(f, i);
        int known = 0;
        for (int q = 0; q < plan->n_params && !known; q++)
            known = in_file(&plan->params[q], FILE_MODEL) && !strcmp(plan->params[q].name, t->name);
        shape_str(b, sizeof b, t->rank, t->shape);
        if (!known)
            add_difference(out, cap, &n, &count, "'%s' %s of the checkpoint is not in this model", t->name, b);
    }
    if (count > DIFFS_SHOWN && n < cap) snprintf(out + n, cap - n, "; and %d more", count - DIFFS_SHOWN);
    pml_sts_close(f);
    free(dir);
}

static pml_status parse_trainer(const pml_plan *plan, const pml_json *root, const char *path, pml_ckpt_info *info,
                                pml_err *err)
{
    static const char *const keys[] = {"format",     "version",   "step",        "seed",      "model",
                                       "parameters", "optimizer", "auto_freeze", "loss_scale"};
    if (root->kind != PML_JSON_OBJECT) return pml_err_set(err, PML_ERR_FORMAT, "%s: not a JSON object", path);
    for (size_t i = 0; i < root->u.obj.n; i++) {
        int known = 0;
        for (size_t k = 0; k < sizeof keys / sizeof *keys && !known; k++)
            known = !strcmp(root->u.obj.keys[i].u.str.s, keys[k]);
        if (!known)
            return pml_err_set(err, PML_ERR_FORMAT, "%s: unknown key \"%.64s\"", path, root->u.obj.keys[i].u.str.s);
    }
    const pml_json *format, *version, *step, *seed, *model, *params, *optim;
    pml_status st = get_field(root, path, "format", PML_JSON_STRING, &format, err);
    if (!st && strcmp(format->u.str.s, "pml-checkpoint"))
        st = pml_err_set(err, PML_ERR_FORMAT, "%s: format is \"%.64s\", not \"pml-checkpoint\"", path, format->u.str.s);
    if (!st) st = get_field(root, path, "version", PML_JSON_INT, &version, err);
    if (!st && (version->u.i < 1 || version->u.i > PML_CKPT_VERSION))
        st = pml_err_set(err, PML_ERR_FORMAT,
                         "%s: checkpoint version %" PRId64 ", this PML reads versions 1 to %d (save it again with the "
                         "PML that wrote it, or retrain)",
                         path, version->u.i, PML_CKPT_VERSION);
    if (!st) st = get_field(root, path, "step", PML_JSON_INT, &step, err);
    if (!st && step->u.i < 0)
        st = pml_err_set(err, PML_ERR_FORMAT, "%s: step %" PRId64 " is negative", path, step->u.i);
    /* Training steps stay below the held-out evaluation's (pipeline.h), which also keeps
     * every row index the feed computes from a step within int64. */
    if (!st && step->u.i >= PML_EVAL_STEP0)
        st = pml_err_set(err, PML_ERR_FORMAT, "%s: step %" PRId64 " is beyond the last a run can take (%" PRId64 ")",
                         path, step->u.i, PML_EVAL_STEP0 - 1);
    if (!st) st = get_field(root, path, "seed", PML_JSON_INT, &seed, err);
    if (!st && seed->u.i < 0)
        st = pml_err_set(err, PML_ERR_FORMAT, "%s: seed %" PRId64 " is negative", path, seed->u.i);
    if (!st) st = get_field(root, path, "model", PML_JSON_STRING, &model, err);
    if (!st) st = get_field(root, path, "parameters", PML_JSON_INT, &params, err);
    if (!st) st = get_field(root, path, "optimizer", PML_JSON_STRING, &optim, err);
    if (st) return st;
    char fp[17];
    pml_ckpt_fingerprint(plan, fp);
    if (strcmp(model->u.str.s, fp) || params->u.i != saved_params(plan)) {
        char diff[768];
        model_differences(plan, path, diff, sizeof diff);
        if (diff[0]) return pml_err_set(err, PML_ERR_FORMAT, "%s: a checkpoint of another model: %s", path, diff);
        return pml_err_set(err, PML_ERR_FORMAT,
                           "%s: a checkpoint of another model (fingerprint %.32s with %" PRId64
                           " parameters; this model's is %s with %d)",
                           path, model->u.str.s, params->u.i, fp, saved_params(plan));
    }
    if (strcmp(optim->u.str.s, optim_name(plan)))
        return pml_err_set(err, PML_ERR_FORMAT,
                           "%s: the checkpoint's optimizer is \"%.32s\", this model trains with %s", path,
                           optim->u.str.s, optim_name(plan));
    info->step = step->u.i;
    info->seed = (uint64_t)seed->u.i;
    info->freeze_afresh = version->u.i < 2 && plan->conf.freeze_every > 0;
    return PML_OK;
}

/* f16's loss-scale state (trainer.json's "loss_scale") into *scale and *good; *scale
 * stays 0 when there is none to restore: a run not in f16 ignores it, and an f16 run
 * from a checkpoint without it starts from the train block's scale. */
static pml_status read_loss_scale(const pml_plan *plan, pml_pipeline *p, const pml_json *ls, const char *path,
                                  double *scale, int64_t *good, pml_err *err)
{
    if (!ls || plan->conf.precision != PML_F16) return PML_OK;
    const pml_json *sv = NULL, *gv = NULL;
    pml_status st = ls->kind == PML_JSON_OBJECT
                        ? PML_OK
                        : pml_err_set(err, PML_ERR_FORMAT, "%s: \"loss_scale\" is not an object", path);
    if (!st) {
        sv = pml_json_get(ls, "scale");
        gv = pml_json_get(ls, "good_steps");
        if (!sv || (sv->kind != PML_JSON_INT && sv->kind != PML_JSON_DOUBLE) || !gv || gv->kind != PML_JSON_INT)
            st = pml_err_set(err, PML_ERR_FORMAT, "%s: \"loss_scale\" needs a number \"scale\" and an integer "
                             "\"good_steps\"", path);
    }
    if (st) return st;
    *scale = sv->kind == PML_JSON_INT ? (double)sv->u.i : sv->u.d;
    *good = gv->u.i;
    pml_err why = {0};
    double was;
    int64_t was_good;
    pml_pipeline_loss_scale(p, &was, &was_good);
    if (pml_pipeline_set_loss_scale(p, *scale, *good, &why)) /* only to check it: restored once all is read */
        return pml_err_set(err, PML_ERR_FORMAT, "%s: %s", path, why.msg);
    pml_pipeline_set_loss_scale(p, was, was_good, NULL);
    return PML_OK;
}

/* The highest N of DIR's periodic checkpoints, DIR/step-NNNNNN folders holding a
 * trainer.json (a save writes it last, so it marks a whole one); 0: none. */
static long long latest_periodic(const char *dir)
{
    long long best = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char *end;
        if (strncmp(e->d_name, "step-", 5) || e->d_name[5] < '0' || e->d_name[5] > '9') continue;
        long long n = strtoll(e->d_name + 5, &end, 10);
        if (*end || n <= best) continue;
        char path[4096];
        struct stat sb;
        if (snprintf(path, sizeof path, "%s/%s/trainer.json", dir, e->d_name) < (int)sizeof path && !stat(path, &sb))
            best = n;
    }
    if (d) closedir(d);
    return best;
}

/* Reads and checks DIR/trainer.json; with `keep`, hands over the parsed document. */
static pml_status read_trainer(const pml_plan *plan, const char *dir, pml_ckpt_info *info, pml_json_doc **keep,
                               pml_err *err)
{
    struct stat sb;
    if (stat(dir, &sb)) return pml_err_set(err, PML_ERR_IO, "%s: no checkpoint here: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return pml_err_set(err, PML_ERR_FORMAT, "%s: a checkpoint is a folder", dir);
    size_t cap = strlen(dir) + 32;
    char *path = malloc(cap);
    if (!path) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    snprintf(path, cap, "%s/trainer.json", dir);
    pml_status st = PML_OK;
    if (stat(path, &sb) && errno == ENOENT) {
        long long periodic = latest_periodic(dir);
        if (periodic)
            st = pml_err_set(err, PML_ERR_FORMAT,
                             "%s: no checkpoint of its own (no trainer.json), only periodic ones; the latest is "
                             "%s/step-%06lld",
                             dir, dir, periodic);
        else
            st = pml_err_set(err, PML_ERR_FORMAT,
                             "%s: not a checkpoint (no trainer.json, which a save writes last, once the rest "
                             "is whole)",
                             dir);
    }
    pml_json_doc *doc = NULL;
    if (!st) st = pml_json_load(path, TRAINER_MAX_BYTES, &doc, err);
    if (!st) st = parse_trainer(plan, pml_json_root(doc), path, info, err);
    if (!st && keep) {
        *keep = doc;
        doc = NULL;
    }
    pml_json_free(doc);
    free(path);
    return st;
}

pml_status pml_ckpt_read_info(const pml_plan *plan, const char *dir, pml_ckpt_info *info, pml_err *err)
{
    char *at;
    pml_status st = resolve(dir, &at, err);
    if (!st) st = read_trainer(plan, at, info, NULL, err);
    free(at);
    return st;
}

static pml_status restore(const pml_plan *plan, pml_pipeline *p, const char *dir, pml_err *err)
{
    pml_ckpt_info info;
    pml_json_doc *doc = NULL;
    pml_status st = read_trainer(plan, dir, &info, &doc, err);
    if (st) return st;
    const pml_json *freeze = pml_json_get(pml_json_root(doc), "auto_freeze");
    char *tpath = in_dir(dir, "trainer.json", err);
    if (!tpath) st = PML_ERR_NOMEM;
    pml_sts *mf = NULL, *of = NULL, *af = NULL;
    want_list ml = {0}, ol = {0}, al = {0};
    if (!st) st = open_checked(plan, p, dir, FILE_MODEL, info.step, &mf, &ml, err);
    if (!st) st = check_step_meta(mf, info.step, err);
    if (!st) {
        char fp[17];
        pml_ckpt_fingerprint(plan, fp);
        const char *v = pml_sts_metadata(mf, "pml_model");
        if (!v || strcmp(v, fp))
            st = pml_err_set(err, PML_ERR_FORMAT, "%s: pml_model is '%.32s', this model's fingerprint is %s",
                             pml_sts_path(mf), v ? v : "(none)", fp);
    }
    if (!st) st = open_checked(plan, p, dir, FILE_OPTIMIZER, info.step, &of, &ol, err);
    if (!st) st = check_step_meta(of, info.step, err);
    if (!st) {
        const char *v = pml_sts_metadata(of, "pml_optimizer");
        if (!v || strcmp(v, optim_name(plan)))
            st = pml_err_set(err, PML_ERR_FORMAT, "%s: pml_optimizer is '%.32s', this model trains with %s",
                             pml_sts_path(of), v ? v : "(none)", optim_name(plan));
    }
    if (!st && has_apart(plan)) st = open_checked(plan, p, dir, FILE_APART, info.step, &af, &al, err);
    if (!st && af) st = check_step_meta(af, info.step, err);
    if (!st) st = pml_ckpt_freeze_read(plan, p, freeze, tpath, info.freeze_afresh, 0, err);
    double scale = 0;
    int64_t good = 0;
    if (!st) st = read_loss_scale(plan, p, pml_json_get(pml_json_root(doc), "loss_scale"), tpath, &scale, &good, err);
    if (!st) {
        if (scale > 0) pml_pipeline_set_loss_scale(p, scale, good, NULL); /* checked above */
        pml_ckpt_freeze_read(plan, p, freeze, tpath, info.freeze_afresh, 1, err); /* checked above */
        copy_in(plan, p, mf, &ml);
        copy_in(plan, p, of, &ol);
        if (af) copy_in(plan, p, af, &al);
        pml_pipeline_set_step(p, info.step);
    }
    pml_sts_close(mf);
    pml_sts_close(of);
    pml_sts_close(af);
    wants_free(&ml);
    wants_free(&ol);
    wants_free(&al);
    free(tpath);
    pml_json_free(doc);
    return st;
}

pml_status pml_ckpt_restore(const pml_plan *plan, pml_pipeline *p, const char *dir, pml_err *err)
{
    char *at;
    pml_status st = resolve(dir, &at, err);
    if (!st) st = restore(plan, p, at, err);
    free(at);
    return st;
}

/* Checks `path` as `file` and only then copies its tensors in. */
static pml_status load_file(const pml_plan *plan, pml_pipeline *p, const char *path, int file, pml_err *err)
{
    pml_sts *f = NULL;
    want_list l = {0};
    pml_status st = open_checked(plan, p, path, file, 0, &f, &l, err);
    if (!st) copy_in(plan, p, f, &l);
    pml_sts_close(f);
    wants_free(&l);
    return st;
}

pml_status pml_ckpt_load_weights(const pml_plan *plan, pml_pipeline *p, const char *path, pml_err *err)
{
    struct stat sb;
    int n_int8;
    if (pml_quant_is_quantized(path)) return pml_quant_load(plan, p, path, 0, NULL, &n_int8, NULL, err); /* `pmlc quantize`'s */
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return load_file(plan, p, path, FILE_MODEL, err);
    char *at; /* a folder: a checkpoint's, maybe mid-commit, or plain weights */
    pml_status st = resolve(path, &at, err);
    if (!st) st = load_file(plan, p, at, FILE_MODEL, err);
    free(at);
    return st;
}

pml_status pml_ckpt_load_teacher(const pml_plan *plan, pml_pipeline *p, pml_err *err)
{
    if (plan->conf.teacher_path < 0) return PML_OK;
    pml_status st = load_file(plan, p, plan->strings[plan->conf.teacher_path], FILE_TEACHER, err);
    if (!st) pml_pipeline_teacher_loaded(p);
    if (st && err) { /* say whose weights these are: the path alone does not */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        pml_err_set(err, st, "the distillation teacher's weights: %s", msg);
    }
    return st;
}

