/* plan_read.c — reading and validating plan files (see plan.h and
 * pml/plan_format.h). A plan file is trusted no more than any other input: every
 * count is checked against the bytes left before anything is allocated, and every
 * index against what it points to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/ops.h"
#include "plan/plan.h"

typedef struct rd {
    const unsigned char *p;
    size_t n, at;
    const char *name;    /* file, for messages */
    const char *section; /* section being read, for messages */
    pml_err *err;
    int bad;
} rd;

/* Everything a plan owns, freed together. */
typedef struct owner {
    void **ptrs;
    size_t n, cap;
} owner;

static void *own(owner *o, size_t size)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        void **np = realloc(o->ptrs, cap * sizeof *np);
        if (!np) return NULL;
        o->ptrs = np;
        o->cap = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (p) o->ptrs[o->n++] = p;
    return p;
}

static void owner_free(owner *o)
{
    for (size_t i = 0; i < o->n; i++) free(o->ptrs[i]);
    free(o->ptrs);
}

static int fail(rd *r, pml_status code, const char *what)
{
    if (!r->bad)
        pml_err_set(r->err, code, "%s: %s%s%s", r->name, r->section ? r->section : "", r->section ? ": " : "", what);
    r->bad = 1;
    return 1;
}

static int need(rd *r, size_t k)
{
    if (r->bad) return 1;
    if (k > r->n - r->at) return fail(r, PML_ERR_FORMAT, "the file is truncated");
    return 0;
}

static uint64_t get(rd *r, size_t k)
{
    uint64_t v = 0;
    if (need(r, k)) return 0;
    for (size_t i = 0; i < k; i++) v |= (uint64_t)r->p[r->at + i] << (8 * i);
    r->at += k;
    return v;
}

static uint32_t u32(rd *r) { return (uint32_t)get(r, 4); }
static int32_t i32(rd *r) { return (int32_t)(uint32_t)get(r, 4); }
static int64_t i64(rd *r) { return (int64_t)get(r, 8); }
static double f64(rd *r)
{
    uint64_t bits = get(r, 8);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* A count of records of at least `min_size` bytes each: no larger than what is left. */
static uint32_t count(rd *r, size_t min_size, const char *what)
{
    uint32_t c = u32(r);
    if (!r->bad && (size_t)c > (r->n - r->at) / (min_size ? min_size : 1)) {
        char msg[128];
        snprintf(msg, sizeof msg, "%u %s claimed, more than the section holds", c, what);
        fail(r, PML_ERR_FORMAT, msg);
        return 0;
    }
    return c;
}

static const char *string_at(rd *r, const pml_plan *pl, int32_t idx, int may_be_none)
{
    if (idx == -1 && may_be_none) return NULL;
    if (idx < 0 || idx >= pl->n_strings) {
        fail(r, PML_ERR_FORMAT, "a string index is out of range");
        return NULL;
    }
    return pl->strings[idx];
}

static void read_strings(rd *r, pml_plan *pl, owner *o)
{
    uint32_t c = count(r, 4, "strings");
    pl->strings = own(o, sizeof(char *) * c);
    pl->n_strings = (int)c;
    for (uint32_t i = 0; i < c && !r->bad; i++) {
        uint32_t len = u32(r);
        if (need(r, len)) return;
        char *s = own(o, (size_t)len + 1);
        if (!s) return (void)fail(r, PML_ERR_NOMEM, "out of memory");
        memcpy(s, r->p + r->at, len);
        r->at += len;
        if (strlen(s) != len) return (void)fail(r, PML_ERR_FORMAT, "a string holds a NUL byte");
        pl->strings[i] = s;
    }
}

static void read_conf(rd *r, pml_plan *pl, uint32_t version)
{
    pml_plan_config *c = &pl->conf;
#define PML_CONF_I(name) c->name = i64(r);
#define PML_CONF_F(name) c->name = f64(r);
    PML_PLAN_CONF_FIELDS(PML_CONF_I, PML_CONF_F)
    c->loss_scale = 65536, c->loss_scale_interval = 2000, c->loss_scale_backoff = 0.5;
    if (version >= 12) {
        PML_PLAN_CONF_FIELDS_12(PML_CONF_I, PML_CONF_F)
    }
    c->chunks = 1;
    if (version >= 13) {
        PML_PLAN_CONF_FIELDS_13(PML_CONF_I, PML_CONF_F)
    }
    c->memory = 0;
    if (version >= 14) {
        PML_PLAN_CONF_FIELDS_14(PML_CONF_I, PML_CONF_F)
    }
#undef PML_CONF_I
#undef PML_CONF_F
    if (r->bad) return;
    if (c->memory < 0)
        fail(r, PML_ERR_FORMAT, "the memory limit is negative");
    else if (c->stages < 1 || c->stages > 1024)
        fail(r, PML_ERR_FORMAT, "the stage count is out of range");
    else if (c->chunks < 1 || c->chunks > PML_PLAN_MAX_CHUNKS || c->stages % c->chunks ||
             (c->chunks > 1 && !pml_plan_schedule_vee((int)c->schedule) &&
              (c->schedule != 2 || c->microbatches % (c->stages / c->chunks))) ||
             (pml_plan_schedule_vee((int)c->schedule) && c->chunks != 2) ||
             (c->schedule == PML_PLAN_SCHEDULE_DUALPIPE_V && c->microbatches < c->stages))
        fail(r, PML_ERR_FORMAT, "the chunks per stage do not divide the stages, or do not fit the schedule");
    else if (c->microbatches < 1 || c->microbatches > PML_PLAN_MAX_MICROBATCHES || c->batch < 1 ||
             c->batch > PML_PLAN_MAX_BATCH || c->batch % c->microbatches || c->microbatch != c->batch / c->microbatches)
        fail(r, PML_ERR_FORMAT, "batch, micro-batches and micro-batch size disagree");
    else if (c->precision < 0 || c->precision > PML_F16 || c->schedule < 0 ||
             c->schedule > (version >= 14 ? PML_PLAN_SCHEDULE_DUALPIPE_V : 3))
        fail(r, PML_ERR_FORMAT, "an enumerated setting is out of range");
    else if (!(c->loss_scale > 0 && c->loss_scale <= 0x1p100) || c->loss_scale_interval < 1 ||
             !(c->loss_scale_backoff > 0 && c->loss_scale_backoff < 1))
        fail(r, PML_ERR_FORMAT, "the loss-scale settings are out of range");
    else if ((c->data_path != -1 && (c->data_path < 0 || c->data_path >= pl->n_strings)) ||
             (c->labels_path != -1 && (c->labels_path < 0 || c->labels_path >= pl->n_strings)) ||
             (c->teacher_path != -1 && (c->teacher_path < 0 || c->teacher_path >= pl->n_strings)) ||
             (c->eval_data_path != -1 && (c->eval_data_path < 0 || c->eval_data_path >= pl->n_strings)) ||
             (c->eval_labels_path != -1 && (c->eval_labels_path < 0 || c->eval_labels_path >= pl->n_strings)))
        fail(r, PML_ERR_FORMAT, "a data or teacher path index is out of range");
    else if (!(c->holdout >= 0 && c->holdout < 1) || c->eval_every < 0 ||
             (c->holdout > 0 && c->eval_data_path != -1) || (c->eval_labels_path != -1 && c->eval_data_path == -1))
        fail(r, PML_ERR_FORMAT, "the held-out settings (holdout, eval files, eval_every) are out of range");
    else if (c->freeze_every < 0 || !(c->freeze_threshold >= 0 && c->freeze_threshold <= 1e9) ||
             (c->freeze_every == 0 && c->freeze_threshold != 0))
        fail(r, PML_ERR_FORMAT, "the automatic freeze's settings are out of range");
    else if (c->replicas < 1 || c->replicas > 1024 || c->microbatches % c->replicas)
        fail(r, PML_ERR_FORMAT, "the replica count is out of range or does not divide the micro-batches");
}

static void read_nodes(rd *r, pml_plan *pl, owner *o)
{
    uint32_t c = count(r, 28, "nodes");
    pl->nodes = own(o, sizeof(pml_plan_node) * c);
    pl->n_nodes = (int)c;
    for (uint32_t i = 0; i < c && !r->bad; i++) {
        pml_plan_node *n = &pl->nodes[i];
        n->op = (uint16_t)get(r, 2);
        n->dtype = (uint8_t)get(r, 1);
        n->rank = (uint8_t)get(r, 1);
        n->pass = (uint8_t)get(r, 1);
        get(r, 1);
        n->n_in = (uint16_t)get(r, 2);
        n->stage = i32(r);
        int32_t label = i32(r);
        n->n_attr = (uint16_t)get(r, 2);
        get(r, 2);
        if (r->bad) return;
        if (n->op >= PML_OP_COUNT || n->dtype > PML_I32 || n->rank > PML_PLAN_MAX_RANK || n->pass > 2)
            return (void)fail(r, PML_ERR_FORMAT, "a node has an unknown op, dtype, rank or pass");
        if (n->stage < 0 || n->stage >= pl->conf.stages)
            return (void)fail(r, PML_ERR_FORMAT, "a node's stage is out of range");
        int lo, hi; /* what follows (a reshape's buffer is its input's, say) reads in[] by the op's arity */
        pml_op_arity((pml_opcode)n->op, &lo, &hi);
        if (n->n_in < lo || (hi >= 0 && n->n_in > hi))
            return (void)fail(r, PML_ERR_FORMAT, "a node has the wrong number of inputs for its op");
        n->label = string_at(r, pl, label, 1);
        n->numel = 1;
        for (int k = 0; k < n->rank; k++) {
            n->dims[k] = i64(r);
            if (n->dims[k] < 0 || (n->dims[k] && n->numel > (INT64_C(1) << 48) / n->dims[k]))
                return (void)fail(r, PML_ERR_FORMAT, "a node's shape is negative or too large");
            n->numel *= n->dims[k];
        }
        int32_t *in = own(o, sizeof(int32_t) * n->n_in);
        int64_t *attr = own(o, sizeof(int64_t) * n->n_attr);
        if (!in || !attr) return (void)fail(r, PML_ERR_NOMEM, "out of memory");
        for (int k = 0; k < n->n_in; k++) {
            in[k] = i32(r);
            if (!r->bad && (in[k] < 0 || (uint32_t)in[k] >= i))
                return (void)fail(r, PML_ERR_FORMAT, "a node reads a node that does not come before it");
        }
        for (int k = 0; k < n->n_attr; k++) attr[k] = i64(r);
        n->fval = f64(r);
        n->in = in;
        n->attr = attr;
    }
}

static int node_ok(const pml_plan *pl, int32_t n, int may_be_none)
{
    return (n == -1 && may_be_none) || (n >= 0 && n < pl->n_nodes);
}

/* A tied weight's copy (plan_format.h's PARM, version 16 on) against its root: a
 * parameter that is no copy itself, on another stage, of the same shape, initializer,
 * freeze and kind, and of the same name, which is how files and callers reach both. */
static int tie_ok(const pml_plan *pl, const pml_plan_param *p, int self)
{
    if (p->tie == -1) return 1;
    if (p->tie < 0 || p->tie >= pl->n_params || p->tie == self) return 0;
    const pml_plan_param *r = &pl->params[p->tie];
    const pml_plan_node *a = &pl->nodes[p->node], *b = &pl->nodes[r->node];
    if (r->tie != -1 || a->stage == b->stage || a->rank != b->rank || a->dtype != b->dtype) return 0;
    for (int k = 0; k < a->rank; k++)
        if (a->dims[k] != b->dims[k]) return 0;
    return !strcmp(p->name, r->name) && p->init == r->init && p->init_a == r->init_a && p->init_b == r->init_b &&
           p->frozen_from == r->frozen_from && p->teacher == r->teacher && p->apart == r->apart &&
           (p->grad == -1) == (r->grad == -1);
}

static void read_params(rd *r, pml_plan *pl, owner *o, uint32_t version)
{
    uint32_t c = count(r, version >= 16 ? 52 : 48, "parameters");
    pl->params = own(o, sizeof(pml_plan_param) * c);
    pl->n_params = (int)c;
    int teachers = 0;
    for (uint32_t i = 0; i < c && !r->bad; i++) {
        pml_plan_param *p = &pl->params[i];
        int32_t name = i32(r), layer = i32(r);
        p->node = i32(r);
        p->grad = i32(r);
        p->init = i32(r);
        int32_t kind = i32(r); /* 0: the model's, 1: a teacher's, 2: apart */
        p->teacher = kind == 1;
        p->apart = kind == 2;
        p->init_a = f64(r);
        p->init_b = f64(r);
        p->frozen_from = i64(r);
        p->tie = version >= 16 ? i32(r) : -1;
        if (r->bad) return;
        p->name = string_at(r, pl, name, 0);
        p->layer = string_at(r, pl, layer, 0);
        if (r->bad) return;
        if (!node_ok(pl, p->node, 0) || pl->nodes[p->node].op != PML_OP_PARAM || !node_ok(pl, p->grad, 1) ||
            p->init < 0 || p->init > 5)
            return (void)fail(r, PML_ERR_FORMAT, "a parameter's node, gradient or initializer is invalid");
        if (kind < 0 || kind > 2) return (void)fail(r, PML_ERR_FORMAT, "a parameter's teacher flag is not 0, 1 or 2");
        if (p->apart && pl->conf.teacher_path == -1)
            return (void)fail(r, PML_ERR_FORMAT, "a parameter saved apart, but the plan distills from no teacher");
        if (p->teacher && (p->grad != -1 || p->frozen_from != 0))
            return (void)fail(r, PML_ERR_FORMAT, "a teacher's parameter has a gradient or is trained");
        if (p->teacher && strncmp(p->name, "teacher.", 8))
            return (void)fail(r, PML_ERR_FORMAT, "a teacher's parameter is not named teacher.NAME");
        if (p->teacher && pl->conf.teacher_path == -1)
            return (void)fail(r, PML_ERR_FORMAT, "a teacher's parameter, but the plan names no teacher file");
        teachers += p->teacher;
    }
    if (!r->bad && pl->conf.teacher_path != -1 && !teachers)
        fail(r, PML_ERR_FORMAT, "the plan names a teacher file but has no teacher parameter");
    for (uint32_t i = 0; i < c && !r->bad; i++)
        if (!tie_ok(pl, &pl->params[i], (int)i))
            fail(r, PML_ERR_FORMAT, "a tied parameter's copy does not match its root (name, shape, stage or training)");
        else if (i > 0 && pl->params[i - 1].tie >= 0 && pl->params[i].tie < 0)
            fail(r, PML_ERR_FORMAT, "a tied parameter's copy comes before a parameter that is none");
}

static void read_inputs(rd *r, pml_plan *pl, owner *o)
{
    uint32_t c = count(r, 8, "inputs");
    pl->input_names = own(o, sizeof(char *) * c);
    pl->input_nodes = own(o, sizeof(int32_t) * c);
    pl->n_inputs = (int)c;
    for (uint32_t i = 0; i < c && !r->bad; i++) {
        int32_t name = i32(r);
        pl->input_nodes[i] = i32(r);
        pl->input_names[i] = string_at(r, pl, name, 0);
        if (!r->bad && (!node_ok(pl, pl->input_nodes[i], 0) || pl->nodes[pl->input_nodes[i]].op != PML_OP_INPUT))
            return (void)fail(r, PML_ERR_FORMAT, "an input's node is invalid");
    }
    pl->output = i32(r);
    pl->labels = i32(r);
    pl->loss = i32(r);
    if (!r->bad && (!node_ok(pl, pl->output, 0) || !node_ok(pl, pl->labels, 1) || !node_ok(pl, pl->loss, 1)))
        fail(r, PML_ERR_FORMAT, "the output, labels or loss node is invalid");
}

static void read_timetable(rd *r, pml_plan *pl, owner *o, uint32_t version)
{
    uint32_t c = count(r, 4, "stages");
    if (!r->bad && c != 0 && c != (uint32_t)(pl->conf.stages / pl->conf.chunks))
        return (void)fail(r, PML_ERR_FORMAT, "the timetable's stage count differs from the plan's");
    pl->n_stages = (int)c;
    pl->n_instr = own(o, sizeof(int) * c);
    pl->instr = own(o, sizeof(pml_plan_instr *) * c);
    for (uint32_t s = 0; s < c && !r->bad; s++) {
        uint32_t k = count(r, 8, "instructions");
        pl->n_instr[s] = (int)k;
        pl->instr[s] = own(o, sizeof(pml_plan_instr) * k);
        for (uint32_t i = 0; i < k && !r->bad; i++) {
            pml_plan_instr *in = &pl->instr[s][i];
            in->kind = (uint8_t)get(r, 1);
            get(r, 1);
            uint32_t chunk = (uint32_t)get(r, 2);
            in->chunk = (uint16_t)(version >= 13 ? chunk : s);
            in->mb = i32(r);
            if (!r->bad && (in->kind > PML_PLAN_I_BWD_WEIGHT || in->mb < -1 || in->mb >= pl->conf.microbatches ||
                            in->chunk >= pl->conf.stages ||
                            pml_plan_chunk_device(in->chunk, (int)c, (int)pl->conf.schedule) != (int)s))
                return (void)fail(r, PML_ERR_FORMAT, "a timetable instruction is invalid");
        }
    }
}

/* The sizes the data feed takes from the configuration, against the graph's shapes.
 * Each micro-batch writes conf.microbatch rows into the model's input and labels
 * (feed.c), so each must have exactly that many rows (its first dimension), and, from
 * a generator, rows of exactly the generator's width. A data file's rows are checked
 * against the node when the feed opens the file. This is the only check: the feed
 * trusts these sizes. */
static void check_data_sizes(rd *r, const pml_plan *pl)
{
    const pml_plan_config *c = &pl->conf;
    if (c->data == 0) return; /* no data source: nothing is fed (a plan to serve) */
    if (c->data < 0 || c->data > 4) return (void)fail(r, PML_ERR_FORMAT, "the data source is unknown");
    char msg[400];
    for (int i = 0; i <= pl->n_inputs && !r->bad; i++) {
        int32_t id = i < pl->n_inputs ? pl->input_nodes[i] : pl->labels;
        if (id < 0) continue;
        const pml_plan_node *n = &pl->nodes[id];
        char what[160];
        if (i < pl->n_inputs)
            snprintf(what, sizeof what, "input '%s'", pl->input_names[i]);
        else
            snprintf(what, sizeof what, "the labels");
        int64_t rows = n->rank ? n->dims[0] : 0;
        if (rows != c->microbatch) {
            snprintf(msg, sizeof msg,
                     "micro-batches of %lld rows (batch %lld / %lld micro-batches), but %s has %lld rows (its first "
                     "dimension)",
                     (long long)c->microbatch, (long long)c->batch, (long long)c->microbatches, what, (long long)rows);
            return (void)fail(r, PML_ERR_FORMAT, msg);
        }
        if (c->data == 1) continue;
        /* A token file's windows are the input's T wide, its labels the same (feed.h). */
        int64_t width = n->numel / rows,
                want = c->data == 2   ? (i < pl->n_inputs ? c->features : 1)
                       : c->data == 4 ? (pl->n_inputs ? pl->nodes[pl->input_nodes[0]].numel / rows : 0)
                                      : c->seq_len;
        if (width != want) {
            snprintf(msg, sizeof msg, "the data generator gives rows of %lld values, but %s has rows of %lld",
                     (long long)want, what, (long long)width);
            return (void)fail(r, PML_ERR_FORMAT, msg);
        }
    }
}

static int source_or_view(uint16_t op)
{
    return op == PML_OP_INPUT || op == PML_OP_PARAM || op == PML_OP_CONST || op == PML_OP_ARANGE ||
           op == PML_OP_RESHAPE;
}

/* KERN: the kernels must partition the nodes in a running order an executor can follow
 * without checking anything itself. */
static void read_kernels(rd *r, pml_plan *pl, owner *o)
{
    uint32_t c = count(r, 12, "kernels");
    pl->n_kernels = (int)c;
    pl->kernels = own(o, sizeof(pml_plan_kernel) * c);
    pl->node_kernel = own(o, sizeof(int32_t) * (size_t)pl->n_nodes);
    pl->materialised = own(o, (size_t)pl->n_nodes);
    if (!pl->kernels || !pl->node_kernel || !pl->materialised) return (void)fail(r, PML_ERR_NOMEM, "out of memory");
    for (int i = 0; i < pl->n_nodes; i++) pl->node_kernel[i] = -1;
    int32_t prev_last = -1; /* the previous kernel's last node */
    for (uint32_t k = 0; k < c && !r->bad; k++) {
        pml_plan_kernel *kn = &pl->kernels[k];
        kn->kind = (uint8_t)get(r, 1);
        kn->pass = (uint8_t)get(r, 1);
        get(r, 2);
        kn->stage = i32(r);
        uint32_t n = count(r, 4, "kernel nodes");
        if (r->bad) return;
        if (kn->kind > PML_PLAN_KERNEL_SINGLE || n == 0 || (kn->kind == PML_PLAN_KERNEL_NONE && n != 1))
            return (void)fail(r, PML_ERR_FORMAT, "a kernel has an unknown kind or the wrong number of nodes");
        int32_t *nodes = own(o, sizeof(int32_t) * n);
        if (!nodes) return (void)fail(r, PML_ERR_NOMEM, "out of memory");
        kn->n_nodes = (int32_t)n;
        kn->nodes = nodes;
        for (uint32_t j = 0; j < n; j++) {
            int32_t i = nodes[j] = i32(r);
            if (r->bad) return;
            if (i < 0 || i >= pl->n_nodes || (j > 0 && i <= nodes[j - 1]) || pl->node_kernel[i] >= 0)
                return (void)fail(r, PML_ERR_FORMAT, "a kernel's nodes are out of range, order or already taken");
            const pml_plan_node *nd = &pl->nodes[i];
            if (nd->stage != kn->stage || nd->pass != kn->pass ||
                source_or_view(nd->op) != (kn->kind == PML_PLAN_KERNEL_NONE))
                return (void)fail(r, PML_ERR_FORMAT, "a kernel's node is of another stage, pass or kind");
            pl->node_kernel[i] = (int32_t)k;
            for (int q = 0; q < nd->n_in; q++) /* inputs come before, so their kernels are known */
                if (pl->node_kernel[nd->in[q]] < 0)
                    return (void)fail(r, PML_ERR_FORMAT, "a kernel reads a kernel that runs after it");
        }
        if (nodes[n - 1] <= prev_last) return (void)fail(r, PML_ERR_FORMAT, "kernels are not in the order they end");
        prev_last = nodes[n - 1];
    }
    if (r->bad) return;
    for (int i = 0; i < pl->n_nodes; i++)
        if (pl->node_kernel[i] < 0) return (void)fail(r, PML_ERR_FORMAT, "a node is in no kernel");
    if (count(r, 1, "node flags") != (uint32_t)pl->n_nodes && !r->bad)
        return (void)fail(r, PML_ERR_FORMAT, "the node flags do not match the node count");
    for (int i = 0; i < pl->n_nodes && !r->bad; i++) {
        unsigned f = (unsigned)get(r, 1);
        if (f & ~PML_PLAN_MATERIALISED) return (void)fail(r, PML_ERR_FORMAT, "a node has unknown flags");
        pl->materialised[i] = (uint8_t)(f & PML_PLAN_MATERIALISED);
    }
    if (r->bad) return;
    int must = 1;
    for (int i = 0; i < pl->n_nodes && must; i++)
        for (int q = 0; q < pl->nodes[i].n_in && must; q++)
            if (pl->node_kernel[pl->nodes[i].in[q]] != pl->node_kernel[i]) must = pl->materialised[pl->nodes[i].in[q]];
    for (int q = 0; q < pl->n_params && must; q++)
        must = pl->params[q].grad < 0 || pl->materialised[pl->params[q].grad];
    if (!must || !pl->materialised[pl->output] || (pl->loss >= 0 && !pl->materialised[pl->loss]))
        fail(r, PML_ERR_FORMAT, "a value read outside its kernel, or an output, is not materialised");
}

/* CUBN: images of a known target kind, function names, and launches that name real
 * kernels with code, functions in range and materialised arguments. */
static void read_gpu(rd *r, pml_plan *pl, owner *o)
{
    uint32_t ni = count(r, 16, "GPU images");
    pl->gpu_images = own(o, sizeof(pml_plan_gpu_image) * ni);
    if (!pl->gpu_images) return (void)fail(r, PML_ERR_NOMEM, "out of memory");
    pl->n_gpu_images = (int)ni;
    for (uint32_t k = 0; k < ni && !r->bad; k++) {
        pml_plan_gpu_image *im = &pl->gpu_images[k];
        im->target = string_at(r, pl, i32(r), 0);
        u32(r);
        im->size = i64(r);
        if (r->bad) return;
        if (strncmp(im->target, "sm_", 3) && strncmp(im->target, "compute_", 8))
            return (void)fail(r, PML_ERR_FORMAT, "a GPU image's target is neither sm_NN nor compute_NN");
        uint64_t padded = (uint64_t)im->size + (8 - (uint64_t)im->size % 8) % 8;
        if (im->size <= 0 || padded > r->n - r->at) return (void)fail(r, PML_ERR_FORMAT, "a GPU image is truncated");
        im->data = r->p + r->at; /* copied below: the plan must not point into the caller's bytes */
        unsigned char *copy = own(o, (size_t)im->size);
        if (!copy) return (void)fail(r, PML_ERR_NOMEM, "out of memory");
        memcpy(copy, im->data, (size_t)im->size);
        im->data = copy;
        r->at += (size_t)padded;
    }
    uint32_t nf = count(r, 4, "GPU functions");
    pl->gpu_funcs = own(o, sizeof(char *) * nf);
    if (!pl->gpu_funcs) return (void)fail(r, PML_ERR_NOMEM, "out of memory");
    pl->n_gpu_funcs = (int)nf;
    for (uint32_t f = 0; f < nf && !r->bad; f++) pl->gpu_funcs[f] = string_at(r, pl, i32(r), 0);
    uint32_t nl = count(r, 32, "GPU launches");
    pl->gpu_launches = own(o, sizeof(pml_plan_gpu_launch) * nl);
    if (!pl->gpu_launches) return (void)fail(r, PML_ERR_NOMEM, "out of memory");
    pl->n_gpu_launches = (int)nl;
    if (nl && !ni) return (void)fail(r, PML_ERR_FORMAT, "GPU launches without GPU code");
    for (uint32_t k = 0; k < nl && !r->bad; k++) {
        pml_plan_gpu_launch *l = &pl->gpu_launches[k];
        l->kernel = i32(r), l->func = i32(r), l->matmul = i32(r);
        l->block = u32(r), l->work = i64(r);
        l->flags = (uint8_t)get(r, 1);
        get(r, 3);
        uint32_t na = count(r, 8, "launch arguments");
        if (r->bad) return;
        if (l->kernel < 0 || l->kernel >= pl->n_kernels || (k && l->kernel < pl->gpu_launches[k - 1].kernel) ||
            pl->kernels[l->kernel].kind == PML_PLAN_KERNEL_NONE)
            return (void)fail(r, PML_ERR_FORMAT, "a GPU launch names no kernel with code, or is out of order");
        if (l->func < -1 || l->func >= (int32_t)nf ||
            (l->func < 0 && (l->matmul < 0 || l->matmul >= pl->n_nodes || pl->nodes[l->matmul].op != PML_OP_MATMUL ||
                             pl->node_kernel[l->matmul] != l->kernel)) ||
            (l->func >= 0 && l->matmul != -1))
            return (void)fail(r, PML_ERR_FORMAT, "a GPU launch's function or matmul is out of range");
        if ((l->func >= 0 && (l->block < 1 || l->block > 1024)) || l->work < 0 || (l->flags & ~7u))
            return (void)fail(r, PML_ERR_FORMAT, "a GPU launch's shape or flags are invalid");
        pml_plan_gpu_arg *args = own(o, sizeof(pml_plan_gpu_arg) * na);
        if (!args) return (void)fail(r, PML_ERR_NOMEM, "out of memory");
        l->n_args = (int32_t)na, l->args = args;
        for (uint32_t a = 0; a < na && !r->bad; a++) {
            args[a].node = i32(r);
            uint32_t out = u32(r);
            if (r->bad) return;
            if (args[a].node < 0 || args[a].node >= pl->n_nodes || out > 1 || !pl->materialised[args[a].node])
                return (void)fail(r, PML_ERR_FORMAT, "a GPU launch's argument is not a materialised value");
            args[a].out = (uint8_t)out;
        }
    }
}

/* DEVS: one device per stage device, of one kind, each a known kind with its index in
 * range and its padding zero. */
static void read_devices(rd *r, pml_plan *pl, owner *o)
{
    uint32_t c = count(r, 8, "stage devices");
    if (r->bad) return;
    if (c != (uint32_t)(pl->conf.stages / pl->conf.chunks))
        return (void)fail(r, PML_ERR_FORMAT, "the device map's length differs from the stage device count");
    pl->devices = own(o, sizeof(pml_plan_device) * c);
    if (!pl->devices) return (void)fail(r, PML_ERR_NOMEM, "out of memory");
    pl->n_devices = (int)c;
    for (uint32_t d = 0; d < c && !r->bad; d++) {
        pml_plan_device *dv = &pl->devices[d];
        dv->kind = (uint8_t)get(r, 1);
        uint32_t pad = (uint32_t)get(r, 3);
        dv->index = i32(r);
        if (r->bad) return;
        if (pad || dv->kind > PML_PLAN_DEVICE_CUDA || dv->index > PML_PLAN_MAX_GPU_INDEX ||
            dv->index < (dv->kind == PML_PLAN_DEVICE_CUDA ? 0 : -1))
            return (void)fail(r, PML_ERR_FORMAT, "a stage's device has an unknown kind or an index out of range");
        if (dv->kind != pl->devices[0].kind)
            return (void)fail(r, PML_ERR_FORMAT, "the device map mixes cpu and cuda devices");
    }
}

pml_status pml_plan_read(const void *bytes, size_t len, const char *name, pml_plan **out, pml_err *err)
{
    *out = NULL;
    rd r = {bytes, len, 0, name ? name : "plan", NULL, err, 0};
    if (len < 16 || memcmp(bytes, PML_PLAN_MAGIC, 8))
        return pml_err_set(err, PML_ERR_FORMAT, "%s: not a PML plan file (build one with `pmlc build`)", r.name);
    r.at = 8;
    uint32_t version = u32(&r), sections = u32(&r);
    if (version < PML_PLAN_VERSION_OLDEST || version > PML_PLAN_VERSION)
        return pml_err_set(err, PML_ERR_FORMAT,
                           "%s: plan format version %u, but this libpml reads versions %u to %u: rebuild the plan with "
                           "the pmlc of this release (pmlc build)",
                           r.name, version, PML_PLAN_VERSION_OLDEST, PML_PLAN_VERSION);
    /* Version 9 has a MEMO section before CUBN, the compiler's memory layout, which no
     * backend reads (plan/memplan.h plans the memory): skipped, so that plans built
     * before it left the file still run. */
    int old = version == 9, mapped = version >= 15; /* DEVS: version 15 on */
    static const uint32_t tags[] = {PML_PLAN_STRS, PML_PLAN_CONF, PML_PLAN_NODE, PML_PLAN_PARM, PML_PLAN_INPT,
                                    PML_PLAN_TIME, PML_PLAN_KERN, PML_PLAN_MEMO, PML_PLAN_CUBN, PML_PLAN_DEVS};
    static const char *const names[] = {"strings", "configuration", "nodes",    "parameters", "inputs",
                                        "timetable", "kernels",     "memory",   "GPU code",   "devices"};
    enum { all_sections = sizeof tags / sizeof *tags };
    int n_sections = all_sections - !old - !mapped;
    if (sections != (uint32_t)n_sections)
        return pml_err_set(err, PML_ERR_FORMAT, "%s: expected %d sections, found %u", r.name, n_sections, sections);
    owner o = {0};
    pml_plan *pl = own(&o, sizeof *pl);
    if (!pl) return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory", r.name);
    for (int k = 0; k < all_sections && !r.bad; k++) {
        if ((k == 7 && !old) || (k == 9 && !mapped)) continue; /* no MEMO, no DEVS */
        uint32_t tag = u32(&r);
        u32(&r);
        uint64_t size = (uint64_t)i64(&r);
        if (r.bad) break;
        if (tag != tags[k]) {
            r.section = names[k];
            fail(&r, PML_ERR_FORMAT, "missing or out of order");
            break;
        }
        if (size > r.n - r.at) {
            r.section = names[k];
            fail(&r, PML_ERR_FORMAT, "the section runs past the end of the file");
            break;
        }
        rd sub = {r.p + r.at, (size_t)size, 0, r.name, names[k], err, 0};
        switch (k) {
        case 0:
            read_strings(&sub, pl, &o);
            break;
        case 1:
            read_conf(&sub, pl, version);
            break;
        case 2:
            read_nodes(&sub, pl, &o);
            break;
        case 3:
            read_params(&sub, pl, &o, version);
            break;
        case 4:
            read_inputs(&sub, pl, &o);
            break;
        case 5:
            read_timetable(&sub, pl, &o, version);
            break;
        case 6:
            read_kernels(&sub, pl, &o);
            break;
        case 7: /* version 9's MEMO: not read */
            sub.at = sub.n;
            break;
        case 8:
            read_gpu(&sub, pl, &o);
            break;
        case 9:
            read_devices(&sub, pl, &o);
            break;
        }
        if (!sub.bad && sub.at != sub.n) fail(&sub, PML_ERR_FORMAT, "trailing bytes");
        r.bad |= sub.bad;
        r.at += (size_t)size;
    }
    if (!r.bad && r.at != r.n) fail(&r, PML_ERR_FORMAT, "trailing bytes after the last section");
    r.section = "configuration";
    if (!r.bad) check_data_sizes(&r, pl);
    if (r.bad) {
        owner_free(&o);
        return err ? err->code : PML_ERR_FORMAT;
    }
    owner *kept = own(&o, sizeof *kept);
    if (!kept) {
        owner_free(&o);
        return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory", r.name);
    }
    *kept = o; /* the owner list lives in its own allocation, freed last */
    pl->block = kept;
    *out = pl;
    return PML_OK;
}

pml_status pml_plan_map(const char *path, pml_mapped_file *m, pml_err *err)
{
    pml_status st = pml_map_file(path, m, err);
    if (!st && m->len > PML_PLAN_MAX_BYTES) {
        st = pml_err_set(err, PML_ERR_FORMAT, "%s: is %zu bytes, larger than any plan (at most %zu)", path, m->len,
                         PML_PLAN_MAX_BYTES);
        pml_unmap_file(m);
    }
    return st;
}

pml_status pml_plan_load(const char *path, pml_plan **out, pml_err *err)
{
    *out = NULL;
    pml_mapped_file m;
    pml_status st = pml_plan_map(path, &m, err);
    if (!st) st = pml_plan_read(m.data ? m.data : "", m.len, path, out, err);
    pml_unmap_file(&m);
    return st;
}

void pml_plan_hold(const pml_plan *p) { __atomic_fetch_add(&((pml_plan *)p)->holders, 1, __ATOMIC_RELAXED); }

void pml_plan_free(pml_plan *p)
{
    /* holders counts the holds besides the owner's: the release that finds none frees. */
    if (!p || __atomic_fetch_sub(&p->holders, 1, __ATOMIC_ACQ_REL) > 0) return;
    owner *o = p->block;
    owner copy = *o;
    owner_free(&copy); /* frees p and o too: both are in the list */
}
