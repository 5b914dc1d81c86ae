/* write.c — serialising a plan into the plan-file format (pml/plan_format.h).
 *
 * The graph is written with every dimension made concrete by the plan's binding, so
 * the runtime never sees a symbolic size. The bytes are built in memory; writing them
 * to disk atomically is the caller's job. */
#include "plan/write.h"

#include <stdlib.h>
#include <string.h>

#include "plan/schedule.h"
#include "pml/plan_format.h"

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *data, size_t len)
{
    if (b->oom) return;
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len) cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

/* Little-endian writers (this code assumes a little-endian host, checked below). */
static void u8(buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}
static void u16(buf *b, unsigned v)
{
    uint16_t x = (uint16_t)v;
    put(b, &x, 2);
}
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void i32(buf *b, int32_t v) { put(b, &v, 4); }
static void i64(buf *b, int64_t v) { put(b, &v, 8); }
static void f64(buf *b, double v) { put(b, &v, 8); }

/* Strings are interned: the same text is stored once. */
typedef struct strtab {
    buf data;
    uint32_t count;
    pmlc_strmap index;
    pmlc_arena *arena;
} strtab;

static int32_t str(strtab *t, const char *s)
{
    if (!s) return -1;
    void *known = pmlc_strmap_get(&t->index, s);
    if (known) return (int32_t)((intptr_t)known - 1);
    u32(&t->data, (uint32_t)strlen(s));
    put(&t->data, s, strlen(s));
    pmlc_strmap_put(t->arena, &t->index, s, (void *)(intptr_t)(t->count + 1));
    return (int32_t)t->count++;
}

static void section(buf *out, uint32_t tag, const buf *payload)
{
    u32(out, tag);
    u32(out, 0);
    i64(out, (int64_t)payload->n);
    put(out, payload->p, payload->n);
}

static void write_conf(buf *b, const pmlc_plan *pl, strtab *st)
{
    const pmlc_train *t = pl->train;
    int64_t seq = 0;
    if (t && t->data == PMLC_DATA_MARKOV)
        for (int s = 0; s < PMLC_MAX_SYMS; s++)
            if (t->dim_set[s]) seq = t->dims[s];
#define V_I(x) i64(b, (int64_t)(x));
#define V_F(x) f64(b, (double)(x));
    V_I(pl->n_stages) V_I(pl->batch) V_I(pl->microbatches) V_I(pl->microbatch) V_I(pl->schedule) V_I(pl->precision);
    if (t) {
        V_I(t->opt) V_F(t->lr) V_F(t->momentum) V_I(t->nesterov) V_F(t->beta1) V_F(t->beta2) V_F(t->eps);
        V_F(t->weight_decay) V_I(t->lr_kind) V_I(t->warmup) V_F(t->min_lr) V_F(t->grad_clip) V_I(t->steps);
        V_I(t->epochs) V_I(t->seed) V_I(t->checkpoint_every) V_I(t->recompute) V_I(t->data) V_I(str(st, t->data_path));
        V_I(str(st, t->labels_path)) V_I(t->features) V_I(t->classes) V_I(t->vocab) V_I(t->order) V_I(t->data_seed);
    } else {
        V_I(0)
        V_F(0) V_F(0) V_I(0) V_F(0) V_F(0) V_F(0) V_F(0) V_I(0) V_I(0) V_F(0) V_F(0) V_I(-1) V_I(0) V_I(0) V_I(0);
        V_I(0) V_I(0) V_I(-1) V_I(-1) V_I(0) V_I(0) V_I(0) V_I(0) V_I(0);
    }
    V_I(seq);
    V_I(str(st, pl->distill ? pl->distill->weights : NULL));
    const pmlc_freeze *af = NULL;
    for (int i = 0; t && i < t->freezes.n; i++)
        if (t->freezes.v[i].is_auto) af = &t->freezes.v[i];
    V_I(af ? af->every : 0) V_F(af ? af->threshold : 0);
    V_I(pl->replicas);
    V_I(str(st, t ? t->eval_data_path : NULL)) V_I(str(st, t ? t->eval_labels_path : NULL));
    V_F(t ? t->holdout : 0) V_I(t ? t->eval_every : 0);
    V_F(t ? t->loss_scale : 65536) V_I(t ? t->loss_scale_interval : 2000) V_F(t ? t->loss_scale_backoff : 0.5);
    V_I(pl->chunks);
    V_I(t ? t->memory : 0);
#undef V_I
#undef V_F
}

/* KERN: fusion's groups are numbered in running order already, so each kernel's nodes
 * are gathered by one counting pass. */
static void write_kernels(buf *b, const pmlc_plan *pl)
{
    const pmlc_fusion *fu = &pl->fusion;
    int N = pl->g->nodes.n, K = fu->n_groups;
    int32_t *size = calloc((size_t)K + 1, sizeof *size), *first = calloc((size_t)K + 1, sizeof *first);
    int32_t *members = calloc((size_t)N + 1, sizeof *members), *fill = calloc((size_t)K + 1, sizeof *fill);
    if (!size || !first || !members || !fill) {
        b->oom = 1;
    } else {
        for (int i = 0; i < N; i++) size[fu->group[i]]++;
        for (int k = 1; k < K; k++) first[k] = first[k - 1] + size[k - 1];
        for (int i = 0; i < N; i++) members[first[fu->group[i]] + fill[fu->group[i]]++] = i;
        u32(b, (uint32_t)K);
        for (int k = 0; k < K; k++) {
            const ir_node *n = &pl->g->nodes.v[members[first[k]]];
            u8(b, (unsigned)fu->kind[k]), u8(b, (unsigned)n->pass), u16(b, 0), i32(b, n->stage);
            u32(b, (uint32_t)size[k]);
            for (int j = 0; j < size[k]; j++) i32(b, members[first[k] + j]);
        }
        u32(b, (uint32_t)N);
        for (int i = 0; i < N; i++) u8(b, fu->materialized[i] ? PML_PLAN_MATERIALISED : 0);
    }
    free(size), free(first), free(members), free(fill);
}

/* CUBN: the images, the function names, and one launch per kernel that has code. */
static void write_gpu(buf *b, const pmlc_plan_gpu *gpu, strtab *st)
{
    static const unsigned char zeros[8] = {0};
    u32(b, gpu ? (uint32_t)gpu->n_images : 0);
    for (int k = 0; gpu && k < gpu->n_images; k++) {
        const pmlc_cuda_image *im = &gpu->images[k];
        i32(b, str(st, im->arch)), u32(b, 0), i64(b, (int64_t)im->size);
        put(b, im->data, im->size);
        put(b, zeros, (8 - im->size % 8) % 8);
    }
    const pmlc_cuda_module *m = gpu ? gpu->module : NULL;
    u32(b, m ? (uint32_t)m->n_funcs : 0);
    for (int f = 0; m && f < m->n_funcs; f++) i32(b, str(st, m->funcs[f].name));
    u32(b, m ? (uint32_t)m->n_kernels : 0);
    for (int k = 0; m && k < m->n_kernels; k++) {
        const pmlc_cuda_kernel *kn = &m->kernels[k];
        i32(b, kn->group), i32(b, kn->func), i32(b, kn->func < 0 ? kn->node : -1);
        u32(b, kn->block), i64(b, kn->work);
        u8(b, (kn->uses_seed ? PML_PLAN_GPU_SEED : 0) | (kn->checks_index ? PML_PLAN_GPU_INDEX_CHECK : 0) |
                  (kn->zero_output ? PML_PLAN_GPU_ZERO_OUTPUT : 0));
        u8(b, 0), u8(b, 0), u8(b, 0);
        u32(b, (uint32_t)kn->n_args);
        for (int a = 0; a < kn->n_args; a++) i32(b, kn->args[a].node), u32(b, kn->args[a].out);
    }
}

/* DEVS: one entry per stage device, the train block's `place` list, or cpu for each
 * when it gives none (plan_format.h). */
static void write_devices(buf *b, const pmlc_plan *pl)
{
    const pmlc_train *t = pl->train;
    int D = pl->n_stages / (pl->chunks > 1 ? pl->chunks : 1);
    u32(b, (uint32_t)D);
    for (int d = 0; d < D; d++) {
        pmlc_device dev = t && t->n_devices == D ? t->devices[d] : (pmlc_device){0, -1};
        u8(b, dev.cuda ? PML_PLAN_DEVICE_CUDA : PML_PLAN_DEVICE_CPU), u8(b, 0), u16(b, 0), i32(b, dev.index);
    }
}

int pmlc_plan_serialize(pmlc_program *P, const pmlc_plan *pl, const pmlc_plan_gpu *gpu, unsigned char **out,
                        size_t *len)
{
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe != 1) {
        pmlc_error(&P->diag, PMLC_NOLOC, "writing plans needs a little-endian host");
        return 1;
    }
    const pmlc_graph *g = pl->g;
    strtab st = {{0}, 0, {0}, &P->arena};
    buf conf = {0}, nodes = {0}, parms = {0}, inpt = {0}, time = {0}, file = {0};
    write_conf(&conf, pl, &st);

    u32(&nodes, (uint32_t)g->nodes.n);
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = &g->nodes.v[i];
        u16(&nodes, (unsigned)n->op), u8(&nodes, (unsigned)n->dtype), u8(&nodes, (unsigned)n->rank);
        u8(&nodes, (unsigned)n->pass), u8(&nodes, 0), u16(&nodes, (unsigned)n->n_in);
        i32(&nodes, n->stage), i32(&nodes, str(&st, n->label)), u16(&nodes, (unsigned)n->n_attr), u16(&nodes, 0);
        for (int k = 0; k < n->rank; k++) {
            int64_t d = 0;
            pmlc_size_eval(n->shape[k], pl->binding, &d);
            i64(&nodes, d);
        }
        for (int k = 0; k < n->n_in; k++) i32(&nodes, n->in[k]);
        for (int k = 0; k < n->n_attr; k++) i64(&nodes, n->attr[k]);
        f64(&nodes, n->fval);
    }
    u32(&parms, (uint32_t)g->params.n);
    for (int p = 0; p < g->params.n; p++) {
        const ir_param *prm = &g->params.v[p];
        i32(&parms, str(&st, prm->name)), i32(&parms, str(&st, prm->layer)), i32(&parms, prm->node);
        i32(&parms, g->param_grad ? g->param_grad[p] : -1), i32(&parms, (int32_t)prm->init),
            i32(&parms, prm->teacher ? 1
                        : prm->apart ? 2
                                     : 0);
        f64(&parms, prm->init_a), f64(&parms, prm->init_b), i64(&parms, prm->frozen_from), i32(&parms, prm->tie);
    }
    u32(&inpt, (uint32_t)g->inputs.n);
    for (int k = 0; k < g->inputs.n; k++) i32(&inpt, str(&st, g->inputs.v[k].name)), i32(&inpt, g->inputs.v[k].node);
    i32(&inpt, g->output), i32(&inpt, g->labels), i32(&inpt, g->loss);
    const pmlc_timetable *tt = pl->timetable;
    u32(&time, tt ? (uint32_t)tt->n_stages : 0);
    for (int s = 0; tt && s < tt->n_stages; s++) {
        u32(&time, (uint32_t)tt->stages[s].instr.n);
        for (int k = 0; k < tt->stages[s].instr.n; k++) {
            pmlc_instr in = tt->stages[s].instr.v[k];
            u8(&time, (unsigned)in.kind), u8(&time, 0), u16(&time, (unsigned)in.chunk), i32(&time, in.mb);
        }
    }
    buf kern = {0}, cubn = {0}, devs = {0};
    write_kernels(&kern, pl);
    write_gpu(&cubn, gpu, &st);
    write_devices(&devs, pl);
    buf strs = {0};
    u32(&strs, st.count);
    put(&strs, st.data.p, st.data.n);

    put(&file, PML_PLAN_MAGIC, 8);
    u32(&file, PML_PLAN_VERSION);
    u32(&file, 9);
    section(&file, PML_PLAN_STRS, &strs);
    section(&file, PML_PLAN_CONF, &conf);
    section(&file, PML_PLAN_NODE, &nodes);
    section(&file, PML_PLAN_PARM, &parms);
    section(&file, PML_PLAN_INPT, &inpt);
    section(&file, PML_PLAN_TIME, &time);
    section(&file, PML_PLAN_KERN, &kern);
    section(&file, PML_PLAN_CUBN, &cubn);
    section(&file, PML_PLAN_DEVS, &devs);
    int oom = file.oom || strs.oom || conf.oom || nodes.oom || parms.oom || inpt.oom || time.oom || kern.oom ||
              cubn.oom || devs.oom || st.data.oom;
    free(strs.p), free(conf.p), free(nodes.p), free(parms.p), free(inpt.p), free(time.p), free(kern.p);
    free(cubn.p), free(devs.p);
    free(st.data.p);
    if (oom) {
        free(file.p);
        pmlc_error(&P->diag, PMLC_NOLOC, "out of memory while writing the plan");
        return 1;
    }
    *out = file.p;
    *len = file.n;
    return 0;
}
