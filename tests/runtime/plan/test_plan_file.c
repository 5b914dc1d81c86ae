/* test_plan_file.c — the plan file carries a plan intact from pmlc to libpml, and
 * libpml refuses anything else: each example round-trips (graph, parameters, inputs,
 * timetable, configuration, kernels); kernels an executor could not trust are refused;
 * a version-9 file (with the memory section since dropped) still reads;
 * every truncation and a flipped byte anywhere are refused
 * or read safely (never a crash: the sanitizer build runs this); a version mismatch
 * says to rebuild. A ZB-V plan keeps its V (each list's chunks d and 2D − 1 − d), and is
 * refused when its schedule is edited to interleaved 1F1B (whose chunks sit elsewhere)
 * or its version to 13 (before zero_bubble_v). The stage -> device map (DEVS) round-trips
 * and a planted bad entry is refused. Usage: test_plan_file EXAMPLE.pml... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/check.h"
#include "plan/plan.h"
#include "plan/schedule.h"
#include "plan/write.h"
#include "session_int.h"

static void round_trip_keeps_everything(const char *path, const unsigned char *bytes, size_t len, pmlc_graph *g,
                                        const pmlc_plan *pl)
{
    pml_plan *rt = NULL;
    pml_err err = {0};
    CHECK(pml_plan_read(bytes, len, path, &rt, &err) == PML_OK);
    if (!rt) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(rt->n_nodes == g->nodes.n && rt->n_params == g->params.n && rt->n_inputs == g->inputs.n);
    CHECK(rt->conf.stages == pl->n_stages && rt->conf.batch == pl->batch && rt->conf.microbatches == pl->microbatches);
    CHECK(rt->conf.schedule == pl->schedule && rt->conf.precision == pl->precision);
    CHECK(rt->output == g->output && rt->labels == g->labels && rt->loss == g->loss);
    for (int i = 0; i < rt->n_nodes && i < g->nodes.n; i++) {
        const pml_plan_node *a = &rt->nodes[i];
        const ir_node *b = &g->nodes.v[i];
        int same = a->op == (uint16_t)b->op && a->dtype == b->dtype && a->rank == b->rank && a->n_in == b->n_in &&
                   a->stage == b->stage && a->pass == b->pass && a->n_attr == b->n_attr;
        for (int k = 0; same && k < a->n_in; k++) same = a->in[k] == b->in[k];
        for (int k = 0; same && k < a->rank; k++) {
            int64_t d;
            pmlc_size_eval(b->shape[k], pl->binding, &d);
            same = a->dims[k] == d;
        }
        CHECK(same);
    }
    for (int p = 0; p < rt->n_params && p < g->params.n; p++) {
        CHECK(!strcmp(rt->params[p].name, g->params.v[p].name) && rt->params[p].node == g->params.v[p].node);
        CHECK(rt->params[p].grad == g->param_grad[p]);
    }
    /* Kernels: the same partition, in the same running order, and the same materialised values. */
    CHECK(rt->n_kernels == pl->fusion.n_groups);
    for (int i = 0; i < rt->n_nodes && i < g->nodes.n; i++) {
        CHECK(rt->node_kernel[i] == pl->fusion.group[i] && rt->materialised[i] == pl->fusion.materialized[i]);
        const pml_plan_kernel *k = &rt->kernels[rt->node_kernel[i]];
        CHECK(k->kind == (uint8_t)pl->fusion.kind[pl->fusion.group[i]] && k->stage == g->nodes.v[i].stage);
    }
    int stages = pl->timetable ? pl->timetable->n_stages : 0;
    CHECK(rt->n_stages == stages);
    for (int s = 0; s < stages && s < rt->n_stages; s++) CHECK(rt->n_instr[s] == pl->timetable->stages[s].instr.n);
    pml_plan_free(rt);
}

/* The payload of section `tag` in a plan file, or NULL. */
static unsigned char *section_of(unsigned char *bytes, size_t len, uint32_t tag, size_t *size)
{
    for (size_t at = 16; at + 16 <= len;) {
        uint32_t t;
        uint64_t n;
        memcpy(&t, bytes + at, 4);
        memcpy(&n, bytes + at + 8, 8);
        if (t == tag) return *size = (size_t)n, bytes + at + 16;
        at += 16 + (size_t)n;
    }
    return NULL;
}

/* A kernel file an executor could not trust is refused: a value read by another kernel
 * but not written to memory, or two kernels swapped out of running order. */
static void inconsistent_kernels_are_refused(const unsigned char *bytes, size_t len, const pmlc_plan *pl)
{
    unsigned char *copy = malloc(len);
    memcpy(copy, bytes, len);
    size_t size = 0;
    unsigned char *kern = section_of(copy, len, PML_PLAN_KERN, &size);
    CHECK(kern != NULL);
    const pmlc_graph *g = pl->g;
    int victim = -1;
    for (int i = 0; i < g->nodes.n && victim < 0; i++)
        for (int j = 0; j < g->nodes.v[i].n_in; j++)
            if (pl->fusion.group[g->nodes.v[i].in[j]] != pl->fusion.group[i]) victim = g->nodes.v[i].in[j];
    pml_plan *rt = NULL;
    pml_err err = {0};
    if (kern && victim >= 0) {
        kern[size - (size_t)g->nodes.n + (size_t)victim] = 0; /* the flags are the section's last bytes */
        CHECK(pml_plan_read(copy, len, "flags.plan", &rt, &err) == PML_ERR_FORMAT);
        CHECK(strstr(err.msg, "materialised") != NULL);
    }
    /* The first two kernels are both single-node sources; their order is the node order. */
    memcpy(copy, bytes, len);
    kern = section_of(copy, len, PML_PLAN_KERN, &size);
    if (kern && pl->fusion.n_groups >= 2) {
        int32_t a, b;
        memcpy(&a, kern + 4 + 12, 4);
        memcpy(&b, kern + 4 + 16 + 12, 4);
        memcpy(kern + 4 + 12, &b, 4);
        memcpy(kern + 4 + 16 + 12, &a, 4);
        CHECK(pml_plan_read(copy, len, "order.plan", &rt, &err) == PML_ERR_FORMAT);
        CHECK(strstr(err.msg, "order") != NULL);
    }
    free(copy);
}

/* A version-9 plan file (a MEMO section, the compiler's memory layout, before CUBN)
 * still reads, its MEMO skipped: the same plan as the current file's. Older versions
 * are refused naming the versions read, and a version-9 file without MEMO is refused. */
/* A PARM payload without version 16's tie fields (each parameter's last 4 of 52 bytes)
 * into `out`; returns its length. */
static size_t parm_without_ties(const unsigned char *parm, unsigned char *out)
{
    uint32_t count;
    memcpy(&count, parm, 4), memcpy(out, parm, 4);
    for (uint32_t i = 0; i < count; i++) memcpy(out + 4 + (size_t)i * 48, parm + 4 + (size_t)i * 52, 48);
    return 4 + (size_t)count * 48;
}

/* `bytes` without its DEVS section (the device map, version 15 on), the header's
 * section count one less, and without PARM's tie fields (version 16 on): the sections
 * a version 13 or 14 file has (`devs_too` 0: only the ties go, as version 15 wrote it). Returns the new length;
 * `out` has room for len bytes. */
static size_t without_devs_ties(const unsigned char *bytes, size_t len, unsigned char *out, int devs_too)
{
    size_t at = 16, o = 16;
    uint32_t sections;
    memcpy(out, bytes, 16), memcpy(&sections, bytes + 12, 4);
    while (at + 16 <= len) {
        uint32_t t;
        uint64_t n;
        memcpy(&t, bytes + at, 4);
        memcpy(&n, bytes + at + 8, 8);
        if (t == PML_PLAN_DEVS && devs_too) {
            sections--;
        } else if (t == PML_PLAN_PARM) {
            uint64_t m = parm_without_ties(bytes + at + 16, out + o + 16);
            memcpy(out + o, bytes + at, 8), memcpy(out + o + 8, &m, 8);
            o += 16 + (size_t)m;
        } else {
            memcpy(out + o, bytes + at, 16 + (size_t)n), o += 16 + (size_t)n;
        }
        at += 16 + (size_t)n;
    }
    memcpy(out + 12, &sections, 4);
    return o;
}

static size_t without_devs(const unsigned char *bytes, size_t len, unsigned char *out)
{
    return without_devs_ties(bytes, len, out, 1);
}

/* `bytes` as version 11 wrote it: CONF without version 12's loss-scale fields,
 * version 13's chunks and version 14's memory limit (five 8-byte entries at its end),
 * and no DEVS. Returns the new length; `out` has room for len bytes. */
static size_t without_conf_12(const unsigned char *bytes, size_t len, unsigned char *out)
{
    unsigned char *mapless = malloc(len);
    len = without_devs(bytes, len, mapless);
    size_t at = 16, o = 16;
    memcpy(out, mapless, 16);
    while (at + 16 <= len) {
        uint32_t t;
        uint64_t n;
        memcpy(&t, mapless + at, 4);
        memcpy(&n, mapless + at + 8, 8);
        uint64_t keep = t == PML_PLAN_CONF ? n - 40 : n;
        memcpy(out + o, mapless + at, 16), memcpy(out + o + 8, &keep, 8);
        memcpy(out + o + 16, mapless + at + 16, (size_t)keep);
        at += 16 + (size_t)n, o += 16 + (size_t)keep;
    }
    free(mapless);
    return o;
}

static void a_version_9_plan_reads_without_its_memory_section(const unsigned char *cur, size_t cur_len)
{
    unsigned char *bytes = malloc(cur_len);
    size_t len = without_conf_12(cur, cur_len, bytes);
    size_t at = 16, cubn = 0;
    while (at + 16 <= len && !cubn) {
        uint32_t t;
        uint64_t n;
        memcpy(&t, bytes + at, 4);
        memcpy(&n, bytes + at + 8, 8);
        if (t == PML_PLAN_CUBN) cubn = at;
        at += 16 + (size_t)n;
    }
    CHECK(cubn > 0);
    if (!cubn) {
        free(bytes);
        return;
    }
    /* MEMO: whatever it holds is not read (here, a stage count no plan has). */
    unsigned char memo[16 + 8] = {0};
    uint32_t tag = PML_PLAN_MEMO, version = 9, sections = 9, junk = 0xffffffffu;
    uint64_t size = 8;
    memcpy(memo, &tag, 4), memcpy(memo + 8, &size, 8), memcpy(memo + 16, &junk, 4);
    size_t n9 = len + sizeof memo;
    unsigned char *v9 = malloc(n9);
    memcpy(v9, bytes, cubn), memcpy(v9 + cubn, memo, sizeof memo), memcpy(v9 + cubn + sizeof memo, bytes + cubn, len - cubn);
    memcpy(v9 + 8, &version, 4), memcpy(v9 + 12, &sections, 4);
    pml_plan *a = NULL, *b = NULL;
    pml_err err = {0};
    CHECK(pml_plan_read(v9, n9, "v9.plan", &a, &err) == PML_OK);
    CHECK(pml_plan_read(cur, cur_len, "current.plan", &b, &err) == PML_OK);
    if (a && b) {
        CHECK(a->n_nodes == b->n_nodes && a->n_kernels == b->n_kernels && a->n_stages == b->n_stages);
        CHECK(a->n_gpu_launches == b->n_gpu_launches && a->n_params == b->n_params);
        CHECK(!memcmp(&a->conf, &b->conf, sizeof a->conf));
    }
    pml_plan_free(a), pml_plan_free(b);
    /* Version 9 with the current sections: a section is missing. */
    memcpy(v9, bytes, len);
    memcpy(v9 + 8, &version, 4);
    CHECK(pml_plan_read(v9, len, "v9short.plan", &a, &err) == PML_ERR_FORMAT);
    /* Version 8: refused, naming what this libpml reads. */
    version = 8;
    memcpy(v9 + 8, &version, 4);
    CHECK(pml_plan_read(v9, len, "v8.plan", &a, &err) == PML_ERR_FORMAT);
    char range[32];
    snprintf(range, sizeof range, "versions 9 to %u", PML_PLAN_VERSION);
    CHECK(strstr(err.msg, "v8.plan") && strstr(err.msg, "version 8") && strstr(err.msg, range) &&
          strstr(err.msg, "rebuild"));
    free(v9);
    free(bytes);
}

static void damaged_files_are_refused_safely(const unsigned char *bytes, size_t len)
{
    unsigned char *copy = malloc(len);
    pml_plan *rt = NULL;
    pml_err err = {0};
    /* Every prefix is refused. */
    int refused = 0, tried = 0;
    for (size_t cut = 0; cut < len; cut += 1 + cut / 64) {
        tried++;
        if (pml_plan_read(bytes, cut, "cut.plan", &rt, &err) != PML_OK)
            refused++;
        else
            pml_plan_free(rt);
        CHECK(strstr(err.msg, "cut.plan") != NULL);
    }
    CHECK(refused == tried);
    /* A flipped byte anywhere: refused, or read into a plan that passed validation. */
    for (size_t at = 0; at < len; at += 1 + at / 32) {
        memcpy(copy, bytes, len);
        copy[at] ^= 0x5a;
        if (pml_plan_read(copy, len, "flip.plan", &rt, &err) == PML_OK) pml_plan_free(rt);
    }
    /* Another format version (a newer one than this libpml reads) names the fix. */
    memcpy(copy, bytes, len);
    uint32_t newer = PML_PLAN_VERSION + 1;
    memcpy(copy + 8, &newer, 4);
    CHECK(pml_plan_read(copy, len, "old.plan", &rt, &err) == PML_ERR_FORMAT);
    CHECK(strstr(err.msg, "old.plan") && strstr(err.msg, "rebuild"));
    CHECK(pml_plan_read("not a plan at all", 17, "x.txt", &rt, &err) == PML_ERR_FORMAT);
    CHECK(strstr(err.msg, "not a PML plan file") != NULL);
    free(copy);
}

static const char zbv_text[] = "import \"nn\"\n"
                               "model m(x: f32[B, 4]) -> f32[B, 2] {\n"
                               "    place = auto(stages = 2, chunks = 2)\n"
                               "    h = tanh(linear(x, 8) as a)\n"
                               "    h = tanh(linear(h, 8) as b)\n"
                               "    h = tanh(linear(h, 8) as c)\n"
                               "    return linear(h, 2) as head\n"
                               "}\n"
                               "train m {\n"
                               "    data = classes(features = 4, classes = 2)\n"
                               "    loss = cross_entropy\n"
                               "    optimizer = sgd(lr = 0.1)\n"
                               "    batch = 16, microbatches = 4, schedule = zero_bubble_v\n"
                               "}\n";

/* Program `text` (named `name`) planned to plan-file bytes (malloc'ed; NULL on failure). */
static unsigned char *text_plan(const char *name, const char *text, size_t *len)
{
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *s = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    *len = 0;
    CHECK(!pmlc_session_check_text(s, name, text, strlen(text)) && !pmlc_session_plan_bytes(s, &bytes, len));
    pmlc_session_destroy(s);
    return bytes;
}

/* The file's comment: a ZB-V plan. */
static void a_zbv_plan_keeps_its_v(void)
{
    size_t len = 0;
    unsigned char *bytes = text_plan("zbv.pml", zbv_text, &len);
    pml_plan *rt = NULL;
    pml_err err = {0};
    CHECK(bytes && pml_plan_read(bytes, len, "zbv.plan", &rt, &err) == PML_OK);
    if (rt) {
        CHECK(rt->conf.schedule == PML_PLAN_SCHEDULE_ZERO_BUBBLE_V && rt->conf.chunks == 2 && rt->n_stages == 2);
        for (int d = 0; d < rt->n_stages; d++)
            for (int i = 0; i < rt->n_instr[d]; i++)
                CHECK(rt->instr[d][i].kind == PML_PLAN_I_STEP || rt->instr[d][i].chunk == d ||
                      rt->instr[d][i].chunk == 3 - d);
        pml_plan_free(rt);
    }
    size_t conf = 0;
    for (size_t at = 16; bytes && at + 16 <= len && !conf;) {
        uint32_t t;
        uint64_t n;
        memcpy(&t, bytes + at, 4), memcpy(&n, bytes + at + 8, 8);
        if (t == PML_PLAN_CONF) conf = at + 16;
        at += 16 + (size_t)n;
    }
    CHECK(conf > 0);
    if (conf) {
        int64_t interleaved = 2;
        uint32_t v13 = 13;
        unsigned char *copy = malloc(len);
        memcpy(copy, bytes, len), memcpy(copy + conf + 4 * 8, &interleaved, 8); /* CONF's 5th entry: schedule */
        CHECK(pml_plan_read(copy, len, "edited.plan", &rt, &err) == PML_ERR_FORMAT);
        size_t n13 = without_devs(bytes, len, copy); /* version 13's sections, ZB-V's schedule */
        memcpy(copy + 8, &v13, 4);
        CHECK(pml_plan_read(copy, n13, "v13.plan", &rt, &err) == PML_ERR_FORMAT);
        CHECK(strstr(err.msg, "out of range") != NULL); /* the schedule, not the sections */
        free(copy);
    }
    free(bytes);
}

/* A two-stage program placed by `place` (PLACE below), planned to plan-file bytes. */
static const char map_text[] = "import \"nn\"\n"
                               "model m(x: f32[B, 4]) -> f32[B, 2] {\n"
                               "    stage 0 { h = tanh(linear(x, 8) as a) }\n"
                               "    stage 1 { return linear(h, 2) as head }\n"
                               "}\n"
                               "train m {\n"
                               "    data = classes(features = 4, classes = 2)\n"
                               "    loss = cross_entropy\n"
                               "    optimizer = sgd(lr = 0.1)\n"
                               "    batch = 16, microbatches = 4\n"
                               "PLACE}\n";

static unsigned char *map_plan(const char *place, size_t *len)
{
    char text[sizeof map_text + 64];
    const char *at = strstr(map_text, "PLACE");
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - map_text), map_text, place, at + 5);
    return text_plan("map.pml", text, len);
}

/* The stage -> device map (DEVS) carries `place` to the runtime: cuda:N with its N, cpu
 * and cpu:N, and cpu for every stage device of a program that gives no list; a file of
 * version 14 (no DEVS) reads with no map (its devices unknown). */
static void the_device_map_round_trips(void)
{
    static const struct {
        const char *place;
        int kind, index[2];
    } cases[] = {{"    place = [cuda:0, cuda:2]\n", PML_PLAN_DEVICE_CUDA, {0, 2}},
                 {"    place = [cpu, cpu:1]\n", PML_PLAN_DEVICE_CPU, {-1, 1}},
                 {"    place = cpu\n", PML_PLAN_DEVICE_CPU, {-1, -1}},
                 {"", PML_PLAN_DEVICE_CPU, {-1, -1}}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t len;
        unsigned char *bytes = map_plan(cases[c].place, &len);
        pml_plan *rt = NULL;
        pml_err err = {0};
        CHECK(bytes && pml_plan_read(bytes, len, "map.plan", &rt, &err) == PML_OK);
        if (rt) {
            CHECK(rt->n_devices == 2);
            for (int d = 0; d < rt->n_devices && d < 2; d++)
                CHECK(rt->devices[d].kind == cases[c].kind && rt->devices[d].index == cases[c].index[d]);
            pml_plan_free(rt);
        }
        if (bytes && c == 0) { /* as version 14 wrote it */
            unsigned char *v14 = malloc(len);
            size_t n14 = without_devs(bytes, len, v14);
            uint32_t version = 14;
            memcpy(v14 + 8, &version, 4);
            CHECK(pml_plan_read(v14, n14, "v14.plan", &rt, &err) == PML_OK);
            if (rt) CHECK(rt->n_devices == 0 && rt->devices == NULL);
            pml_plan_free(rt);
            free(v14);
        }
        free(bytes);
    }
}

/* A planted DEVS entry is refused naming the file and what is wrong: an unknown kind, a
 * cuda device without a number, a number past the largest, non-zero padding, a map that
 * mixes kinds, and a count that differs from the stage devices. */
static void a_bad_device_entry_is_refused(void)
{
    size_t len, size = 0;
    unsigned char *bytes = map_plan("    place = [cuda:0, cuda:1]\n", &len);
    CHECK(bytes != NULL);
    if (!bytes) return;
    unsigned char *copy = malloc(len);
    static const struct {
        int entry, at; /* entry 0 or 1; at: 0 kind, 1..3 padding, 4 the index's first byte (i32) */
        int32_t value;
        const char *why;
    } edits[] = {{0, 0, 2, "unknown kind"},     {1, 4, -1, "out of range"}, {0, 4, 1024, "out of range"},
                 {1, 2, 1, "unknown kind"},     {1, 0, 0, "mixes"}};
    for (size_t e = 0; e < sizeof edits / sizeof *edits; e++) {
        memcpy(copy, bytes, len);
        unsigned char *devs = section_of(copy, len, PML_PLAN_DEVS, &size);
        CHECK(devs != NULL && size == 4 + 2 * 8);
        if (!devs) break;
        unsigned char *entry = devs + 4 + 8 * edits[e].entry;
        if (edits[e].at == 4)
            memcpy(entry + 4, &edits[e].value, 4);
        else
            entry[edits[e].at] = (unsigned char)edits[e].value;
        pml_plan *rt = NULL;
        pml_err err = {0};
        CHECK(pml_plan_read(copy, len, "devs.plan", &rt, &err) == PML_ERR_FORMAT);
        CHECK(strstr(err.msg, "devs.plan") && strstr(err.msg, "devices") && strstr(err.msg, edits[e].why));
        if (!strstr(err.msg, edits[e].why)) fprintf(stderr, "edit %zu: %s\n", e, err.msg);
        pml_plan_free(rt);
    }
    /* One entry fewer: the section's count and size say 1, the plan has 2 stage devices. */
    memcpy(copy, bytes, len);
    unsigned char *devs = section_of(copy, len, PML_PLAN_DEVS, &size);
    if (devs) {
        uint32_t one = 1;
        uint64_t smaller = size - 8;
        memcpy(devs, &one, 4), memcpy(devs - 8, &smaller, 8);
        pml_plan *rt = NULL;
        pml_err err = {0};
        CHECK(pml_plan_read(copy, len - 8, "short.plan", &rt, &err) == PML_ERR_FORMAT);
        CHECK(strstr(err.msg, "short.plan") && strstr(err.msg, "stage device count"));
        pml_plan_free(rt);
    }
    free(copy);
    free(bytes);
}

/* A weight tied across stages: table `emb` is read on stage 0 (a gather) and stage 1 (the
 * output projection). */
static const char tie_text[] = "import \"nn\"\n"
                               "model m(idx: i32[B, T]) -> f32[B, T, 5] {\n"
                               "    stage 0 {\n"
                               "        param emb: [5, 4] = normal(0.02)\n"
                               "        h = tanh(gather(emb, idx))\n"
                               "    }\n"
                               "    stage 1 { return h @ transpose(emb) }\n"
                               "}\n"
                               "train m {\n"
                               "    data = markov(vocab = 5, order = 1, seed = 1)\n"
                               "    loss = cross_entropy\n"
                               "    optimizer = sgd(lr = 0.1)\n"
                               "    batch = 4, microbatches = 2, T = 3\n"
                               "}\n";

/* The copy a stage makes of a tied weight (PARM's tie, version 16) round-trips, after
 * every parameter that is none; a version-15 file (no tie fields) reads with none; and
 * a tie that does not hold (to itself or to no parameter, with another initializer or
 * freeze than its root's, a copy before a plain parameter) is refused. */
static void tied_weights_round_trip_and_a_bad_tie_is_refused(void)
{
    size_t len = 0, size = 0;
    unsigned char *bytes = text_plan("tie.pml", tie_text, &len);
    if (!bytes) return;
    pml_plan *rt = NULL;
    pml_err err = {0};
    CHECK(pml_plan_read(bytes, len, "tie.plan", &rt, &err) == PML_OK);
    int copy = -1;
    if (rt) {
        for (int q = 0; q < rt->n_params; q++)
            if (rt->params[q].tie >= 0) copy = q;
        CHECK(rt->n_params == 2 && copy == 1 && rt->params[1].tie == 0 && !strcmp(rt->params[1].name, "emb"));
        CHECK(rt->nodes[rt->params[0].node].stage == 0 && rt->nodes[rt->params[1].node].stage == 1);
        CHECK(rt->params[0].grad >= 0 && rt->params[1].grad >= 0 && pml_plan_model_params(rt) == 1);
        pml_plan_free(rt);
    }
    unsigned char *copy_bytes = malloc(len);
    size_t n15 = without_devs_ties(bytes, len, copy_bytes, 0);
    uint32_t v15 = 15;
    memcpy(copy_bytes + 8, &v15, 4);
    CHECK(pml_plan_read(copy_bytes, n15, "v15.plan", &rt, &err) == PML_OK);
    if (rt) CHECK(rt->params[0].tie == -1 && rt->params[1].tie == -1);
    pml_plan_free(rt);
    /* Edits to the copy's entry (parameter 1: 52 bytes from PARM's count, then 52 more). */
    static const struct {
        int at; /* byte offset in the entry */
        int32_t value;
    } edits[] = {{48, 1}, {48, 2}, {48, -2}, {16, 0}, {40, 7}}; /* tie: itself, none, none; init; freeze */
    for (size_t e = 0; e < sizeof edits / sizeof *edits + 1; e++) {
        memcpy(copy_bytes, bytes, len);
        unsigned char *parm = section_of(copy_bytes, len, PML_PLAN_PARM, &size);
        CHECK(parm != NULL && size == 4 + 2 * 52);
        if (!parm) break;
        if (e < sizeof edits / sizeof *edits) {
            unsigned char *entry = parm + 4 + 52;
            if (edits[e].at == 40) {
                int64_t frozen = edits[e].value;
                memcpy(entry + 40, &frozen, 8);
            } else {
                memcpy(entry + edits[e].at, &edits[e].value, 4);
            }
        } else { /* the copy first, the root second: swap the two entries (and nothing else) */
            unsigned char tmp[52];
            memcpy(tmp, parm + 4, 52), memcpy(parm + 4, parm + 4 + 52, 52), memcpy(parm + 4 + 52, tmp, 52);
            int32_t none = -1, zero_root = 1;
            memcpy(parm + 4 + 48, &zero_root, 4), memcpy(parm + 4 + 52 + 48, &none, 4);
        }
        CHECK(pml_plan_read(copy_bytes, len, "tie.plan", &rt, &err) == PML_ERR_FORMAT);
        CHECK(strstr(err.msg, "tie.plan") && strstr(err.msg, "tied"));
        if (!strstr(err.msg, "tied")) fprintf(stderr, "tie edit %zu: %s\n", e, err.msg);
        pml_plan_free(rt);
        rt = NULL;
    }
    free(copy_bytes);
    free(bytes);
}

/* With --gpu first, the plans carry GPU code for sm_80 (CUBN), built through NVRTC. */
int main(int argc, char **argv)
{
    int gpu = argc > 1 && !strcmp(argv[1], "--gpu");
    for (int i = 1 + gpu; i < argc; i++) {
        pmlc_options opt = {0};
        opt.diag_out = stderr;
        opt.gpu_code = gpu;
        pmlc_session *s = pmlc_session_create(&opt);
        const pmlc_plan *pl = NULL;
        pmlc_graph *g = pmlc_session_check_file(s, argv[i]) ? NULL : pmlc_session_graph(s, &pl);
        CHECK(g != NULL);
        unsigned char *bytes = NULL;
        size_t len = 0;
        char summary[256];
        int failed = !g || (gpu ? pmlc_session_plan_bytes_gpu(s, "sm_80", &bytes, &len, summary, sizeof summary)
                                : pmlc_plan_serialize(pmlc_session_program(s), pl, NULL, &bytes, &len));
        CHECK(!failed);
        if (!failed) {
            round_trip_keeps_everything(argv[i], bytes, len, g, pl);
            pml_plan *rt = NULL;
            pml_err err = {0};
            CHECK(pml_plan_read(bytes, len, argv[i], &rt, &err) == PML_OK);
            if (rt) { /* the GPU code is there exactly when asked for */
                CHECK(rt->n_gpu_images == gpu && (!gpu || !strcmp(rt->gpu_images[0].target, "sm_80")));
                CHECK((rt->n_gpu_launches > 0) == gpu && (rt->n_gpu_funcs > 0) == gpu);
                pml_plan_free(rt);
            }
            damaged_files_are_refused_safely(bytes, len);
            inconsistent_kernels_are_refused(bytes, len, pl);
            a_version_9_plan_reads_without_its_memory_section(bytes, len);
        }
        free(bytes);
        pmlc_session_destroy(s);
    }
    if (!gpu) {
        a_zbv_plan_keeps_its_v();
        the_device_map_round_trips();
        a_bad_device_entry_is_refused();
        tied_weights_round_trip_and_a_bad_tie_is_refused();
    }
    return check_summary("plan file");
}
