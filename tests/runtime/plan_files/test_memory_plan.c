/* test_memory_plan.c — the compiler's memory estimate (compiler/src/plan/memplan.h, what
 * `pmlc plan` reports; not in the plan file) is a layout an executor could use:
 * for every example under GPipe and 1F1B, several stage counts and micro-batch counts,
 * running each stage's timetable kernel by kernel never reads a value that has no
 * memory or was never written, and no two values alive at the same time share a byte
 * (each inside its stage's arena, 64-byte aligned). The check derives lifetimes itself
 * from the plan as a plan file carries it (kernels, timetable, readers), not from the
 * estimate. And 1F1B
 * holds fewer bytes of activations than GPipe for the GPT example.
 * Usage: test_memory_plan EXAMPLE.pml... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/check.h"
#include "plan/memplan.h"
#include "plan/plan.h"
#include "plan/write.h"
#include "session_int.h"

enum { LOAD, RECV_ACT, FWD, SEND_ACT, RECV_GRAD, BWD, SEND_GRAD, STEP };

typedef struct inst {
    int64_t off, bytes;
    int32_t a, b; /* first write, last read: ticks */
} inst;

typedef struct checker {
    const pml_plan *pl;
    const pmlc_memplan *mp;
    int s;
    int32_t *root;
    const uint8_t *cpu; /* per stage: on the CPU (the estimate follows the CPU backend there) */
    inst *in; /* per buffer * micro-batch */
    int32_t tick;
    int bad;
} checker;

/* The estimate's buffer of `role` for `node` on stage s, or -1 (buffers are ordered by
 * stage, node and role). */
static int32_t find_buffer(const pmlc_memplan *mp, int s, int32_t node, pmlc_buf_role role)
{
    int64_t key = ((int64_t)s << 40) | ((int64_t)node << 8) | role;
    int32_t lo = 0, hi = mp->n_buffers;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        const pmlc_buffer *b = &mp->buffers[mid];
        if ((((int64_t)b->stage << 40) | ((int64_t)b->node << 8) | b->role) < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    const pmlc_buffer *b = lo < mp->n_buffers ? &mp->buffers[lo] : NULL;
    return b && b->stage == s && b->node == node && b->role == role ? lo : -1;
}

/* No buffer to check: a CPU stage's weight gradient added to its accumulator by the
 * GEMM, or another CPU stage's value read in place (kept there all step). */
#define UNCHECKED (-2)

static int on_cpu(const checker *c, int s) { return c->cpu[s]; }

static int32_t buffer_of(const checker *c, int32_t node)
{
    int32_t r = c->root[node];
    int own = c->pl->nodes[r].stage == c->s;
    if (c->mp->direct[r] || (!own && on_cpu(c, c->s) && on_cpu(c, c->pl->nodes[r].stage))) return UNCHECKED;
    return find_buffer(c->mp, c->s, r, own ? PMLC_BUF_VALUE : PMLC_BUF_RECV);
}

static inst *instance(checker *c, int32_t b, int32_t mb)
{
    if (b == UNCHECKED) return NULL;
    const pmlc_buffer *pb = &c->mp->buffers[b];
    return pb->per_step ? NULL : &c->in[(size_t)b * (size_t)c->pl->conf.microbatches + (size_t)mb];
}

static void write(checker *c, int32_t b, int32_t mb)
{
    inst *x = b >= 0 ? instance(c, b, mb) : NULL;
    if (b < 0 && b != UNCHECKED) c->bad = 1;
    if (!x) return;
    if (x->a >= 0) c->bad = 1; /* written twice */
    x->a = x->b = c->tick;
}

static void read(checker *c, int32_t b, int32_t mb)
{
    inst *x = b >= 0 ? instance(c, b, mb) : NULL;
    if (b < 0 && b != UNCHECKED) c->bad = 1; /* read from no memory */
    if (!x) return;
    if (x->a < 0) c->bad = 1; /* read before written */
    x->b = c->tick;
}

/* Runs one forward or backward instruction of micro-batch mb kernel by kernel. */
static void run_pass(checker *c, int backward, int32_t mb)
{
    const pml_plan *pl = c->pl;
    int any = 0;
    for (int k = 0; k < pl->n_kernels; k++) {
        const pml_plan_kernel *kn = &pl->kernels[k];
        if (kn->stage != c->s || (kn->pass != 0) != backward || kn->kind == PML_PLAN_KERNEL_NONE) continue;
        for (int j = 0; j < kn->n_nodes; j++) {
            const pml_plan_node *n = &pl->nodes[kn->nodes[j]];
            for (int q = 0; q < n->n_in; q++)
                if (pl->node_kernel[n->in[q]] != k) read(c, buffer_of(c, n->in[q]), mb);
        }
        for (int j = 0; j < kn->n_nodes; j++) /* a transpose read in place writes nothing */
            if (pl->materialised[kn->nodes[j]] && c->root[kn->nodes[j]] == kn->nodes[j])
                write(c, buffer_of(c, kn->nodes[j]), mb);
        c->tick++, any = 1;
    }
    if (!any) c->tick++;
    c->tick--; /* what the instruction hands on is read at its last kernel */
    if (!backward) {
        if (pl->nodes[pl->output].stage == c->s) read(c, buffer_of(c, pl->output), mb);
        if (pl->loss >= 0 && pl->nodes[pl->loss].stage == c->s) read(c, buffer_of(c, pl->loss), mb);
    }
    for (int q = 0; backward && q < pl->n_params; q++)
        if (pl->params[q].grad >= 0 && pl->nodes[pl->params[q].grad].stage == c->s)
            read(c, buffer_of(c, pl->params[q].grad), mb);
    c->tick++;
}

/* Values of this stage read on another (send) or of another read here (receive). */
static void transfer(checker *c, int kind, int32_t mb)
{
    const pml_plan *pl = c->pl;
    for (int i = 0; i < pl->n_nodes; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        if (n->op == OP_RESHAPE) continue;
        for (int q = 0; q < n->n_in; q++) {
            int32_t x = c->root[n->in[q]];
            const pml_plan_node *xn = &pl->nodes[x];
            if (xn->stage == n->stage || (xn->pass != 0) != (kind == SEND_GRAD || kind == RECV_GRAD)) continue;
            if ((kind == SEND_ACT || kind == SEND_GRAD) && xn->stage == c->s) read(c, buffer_of(c, x), mb);
            if ((kind == RECV_ACT || kind == RECV_GRAD) && n->stage == c->s) {
                int32_t b = buffer_of(c, x);
                inst *y = b >= 0 ? instance(c, b, mb) : NULL;
                if (b < 0 && b != UNCHECKED) c->bad = 1;
                if (y && y->a < 0) write(c, b, mb); /* once, however many readers */
            }
        }
    }
}

static int by_start(const void *p, const void *q)
{
    const inst *x = p, *y = q;
    return (x->a > y->a) - (x->a < y->a);
}

/* Every pair of instances alive at once lies apart in memory. */
static int disjoint(inst *all, size_t n)
{
    qsort(all, n, sizeof *all, by_start);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n && all[j].a <= all[i].b; j++)
            if (all[i].off < all[j].off + all[j].bytes && all[j].off < all[i].off + all[i].bytes) return 0;
    return 1;
}

static int stage_layout_is_valid(const pml_plan *pl, const pmlc_memplan *mp, int s, int32_t *root, const uint8_t *cpu)
{
    int64_t M = pl->conf.microbatches;
    checker c = {pl, mp, s, root, cpu, malloc(sizeof(inst) * (size_t)mp->n_buffers * (size_t)M + 1), 0, 0};
    for (size_t k = 0; k < (size_t)mp->n_buffers * (size_t)M; k++) c.in[k].a = c.in[k].b = -1;
    for (int k = 0; k < pl->n_instr[s]; k++) {
        pml_plan_instr in = pl->instr[s][k];
        if (in.kind == LOAD) {
            for (int i = 0; i < pl->n_inputs; i++)
                if (pl->nodes[pl->input_nodes[i]].stage == s) write(&c, buffer_of(&c, pl->input_nodes[i]), in.mb);
            int32_t lb = pl->labels >= 0 && pl->nodes[pl->labels].stage == s ? buffer_of(&c, pl->labels) : -1;
            if (lb >= 0 && instance(&c, lb, in.mb) && instance(&c, lb, in.mb)->a < 0) write(&c, lb, in.mb);
        }
        if (in.kind == FWD || in.kind == BWD) {
            run_pass(&c, in.kind == BWD, in.mb);
            continue;
        }
        if (in.kind != LOAD && in.kind != STEP) transfer(&c, in.kind, in.mb);
        c.tick++;
    }
    size_t n = 0;
    inst *all = malloc(sizeof(inst) * ((size_t)mp->n_buffers * (size_t)M + 1));
    for (int b = 0; b < mp->n_buffers; b++) {
        const pmlc_buffer *pb = &mp->buffers[b];
        if (pb->stage != s) continue;
        for (int j = 0; j < pb->slots; j++)
            if (pb->offset[j] % 64 || pb->offset[j] < 0 || pb->offset[j] + pb->bytes > mp->stages[s].arena) c.bad = 1;
        for (int64_t m = 0; m < (pb->per_step ? 1 : M); m++) {
            inst x = pb->per_step ? (inst){0, 0, 0, c.tick} : c.in[(size_t)b * (size_t)M + (size_t)m];
            if (x.a < 0) continue; /* never alive: nothing to keep apart */
            x.off = pb->offset[m % pb->slots];
            x.bytes = pb->bytes;
            all[n++] = x;
        }
    }
    int ok = !c.bad && disjoint(all, n);
    free(all);
    free(c.in);
    return ok;
}

/* The first `key` in `text` outside a comment. */
static const char *find_code(const char *text, const char *key)
{
    for (const char *at = strstr(text, key); at; at = strstr(at + 1, key)) {
        const char *line = at;
        while (line > text && line[-1] != '\n') line--;
        if (!memchr(line, '#', (size_t)(at - line))) return at;
    }
    return NULL;
}

/* `text` with the first "key = <value>" (value up to the next ',', ')' or newline) set to `value`. */
static char *with(const char *text, const char *key, const char *value)
{
    const char *at = find_code(text, key);
    size_t len = strlen(text) + strlen(value) + 1;
    char *out = malloc(len);
    if (!at) return strcpy(out, text);
    const char *v = at + strlen(key), *end = v + strcspn(v, ",)\n");
    snprintf(out, len, "%.*s%s%s", (int)(v - text), text, value, end);
    return out;
}

/* Blanks the line holding `needle` (a device list that would fix the stage count). */
static void blank_line(char *text, const char *needle)
{
    char *at = (char *)find_code(text, needle);
    if (!at) return;
    while (at > text && at[-1] != '\n') at--;
    for (; *at && *at != '\n'; at++) *at = ' ';
}

/* Plans `text`, round-trips the plan through a plan file and checks each stage's layout
 * in the estimate against it. On success stores the estimate's activation bytes summed
 * over stages and the first stage's in-flight count. */
static int check_config(const char *path, const char *text, int64_t *act, int *in_flight)
{
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *ss = pmlc_session_create(&opt);
    const pmlc_plan *pl = NULL;
    pmlc_graph *g = pmlc_session_check_text(ss, path, text, strlen(text)) ? NULL : pmlc_session_graph(ss, &pl);
    unsigned char *bytes = NULL;
    size_t len = 0;
    int ok = g && pl->memory && !pmlc_plan_serialize(pmlc_session_program(ss), pl, NULL, &bytes, &len);
    pml_plan *rt = NULL;
    pml_err err = {0};
    if (ok && pml_plan_read(bytes, len, path, &rt, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        ok = 0;
    }
    if (ok) {
        const pmlc_memplan *mp = pl->memory;
        int32_t *root = malloc(sizeof(int32_t) * (size_t)rt->n_nodes + 1);
        for (int i = 0; i < rt->n_nodes; i++) root[i] = mp->root[i]; /* the plan file keeps the node order */
        uint8_t cpu[1024]; /* stages: at most 1024 (plan_read.c) */
        for (int s = 0; s < pl->n_stages && s < (int)sizeof cpu; s++) cpu[s] = !pl->stages[s].device.cuda;
        *act = 0;
        ok = mp->n_stages == rt->n_stages;
        for (int s = 0; ok && s < rt->n_stages; s++) {
            int valid = stage_layout_is_valid(rt, mp, s, root, cpu);
            if (!valid) fprintf(stderr, "%s: stage %d: the layout is invalid\n", path, s);
            ok &= valid;
            *act += mp->stages[s].activations;
        }
        *in_flight = mp->stages[0].in_flight;
        free(root);
    }
    pml_plan_free(rt);
    free(bytes);
    pmlc_session_destroy(ss);
    return ok;
}

int main(int argc, char **argv)
{
    static const char *const scheds[] = {"gpipe", "1f1b"}, *const stages[] = {"1", "2", "4"},
                             *const mbs[] = {"1", "2", "8"};
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        CHECK(f != NULL);
        if (!f) continue;
        static char text[1 << 16];
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
        int64_t act[2][3][3] = {{{0}}};
        int fl[2][3][3] = {{{0}}};
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 3; b++)
                for (int m = 0; m < 3; m++) {
                    char *t1 = with(text, " schedule = ", scheds[a]), *t2 = with(t1, "auto(stages = ", stages[b]);
                    char *t3 = with(t2, "microbatches = ", mbs[m]);
                    blank_line(t3, "place = [");
                    int ok = check_config(argv[i], t3, &act[a][b][m], &fl[a][b][m]);
                    if (!ok)
                        fprintf(stderr, "%s: %s, stages %s, %s micro-batches\n", argv[i], scheds[a], stages[b], mbs[m]);
                    CHECK(ok);
                    free(t1), free(t2), free(t3);
                }
        /* One micro-batch: the schedules are the same. */
        for (int b = 0; b < 3; b++) CHECK(act[0][b][0] == act[1][b][0] && fl[0][b][0] == fl[1][b][0]);
        /* One stage: GPipe holds every micro-batch, 1F1B one. */
        if (find_code(text, "auto(stages = ")) CHECK(fl[0][0][2] == 8 && fl[1][0][2] == 1);
        if (strstr(argv[i], "gpt.pml")) {
            CHECK(act[1][2][2] < act[0][2][2]); /* 4 stages, 8 micro-batches */
            printf("gpt, 4 stages, 8 micro-batches: activations gpipe %lld, 1f1b %lld bytes\n", (long long)act[0][2][2],
                   (long long)act[1][2][2]);
        }
    }
    return check_summary("memory plan");
}
