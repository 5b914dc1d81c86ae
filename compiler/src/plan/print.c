/* print.c — the three views of a stage plan: text for people, JSON for tools
 * (its fields are documented in docs/plan-json.md and versioned by
 * PMLC_PLAN_JSON_VERSION), and a Graphviz drawing of the stages. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ir/precision.h"
#include "plan/memplan.h"
#include "plan/placement.h"
#include "plan/schedule.h"

/* The projection of match i (elab_match.c names it distill.matchI.proj), or NULL. */
static const ir_param *match_projection(const pmlc_graph *g, int i)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "distill.match%d.proj.", i);
    for (int p = 0; p < g->params.n; p++)
        if (g->params.v[p].apart && !strncmp(g->params.v[p].name, prefix, strlen(prefix))) return &g->params.v[p];
    return NULL;
}

const char *pmlc_fmt_bytes(int64_t b, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 5) v /= 1024, u++;
    if (u == 0)
        snprintf(buf, cap, "%" PRId64 " B", b);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}

/* Three significant digits, zeros kept, so columns of costs compare at a glance:
 * 54.0 K, 28.2 K, 1.13 M, 224 M. */
static double total_flops(const pmlc_stage_cost *c) { return c->fwd + c->bwd_b + c->bwd_w; }

static const char *fmt_flops(double f, char *buf, size_t cap)
{
    static const char *const units[] = {"", "K", "M", "G", "T", "P", "E"};
    int u = 0;
    while (f >= 999.5 && u < 6) f /= 1000, u++;
    const char *fmt = f >= 99.95 ? "%.0f%s%s" : f >= 9.995 ? "%.1f%s%s" : "%.2f%s%s";
    snprintf(buf, cap, fmt, f, u ? " " : "", units[u]);
    return buf;
}

static const char *fmt_count(int64_t n, char *buf, size_t cap)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%" PRId64, n), k = 0;
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0 && tmp[i - 1] != '-') buf[o++] = ',';
        buf[o++] = tmp[i];
        k++;
    }
    buf[o] = 0;
    return buf;
}

static const char *fmt_cshape(pmlc_dtype dt, const pmlc_cshape *s, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "%s[", pmlc_dtype_name(dt));
    for (int k = 0; k < s->rank && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, k ? ", " : "", s->d[k]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

static const char *device_str(const pmlc_plan *pl, int s, char *buf, size_t cap)
{
    if (!pl->train || !pl->train->n_devices)
        snprintf(buf, cap, "cpu");
    else if (pl->stages[s].device.cuda)
        snprintf(buf, cap, "cuda:%d", pl->stages[s].device.index);
    else if (pl->stages[s].device.index < 0)
        snprintf(buf, cap, "cpu");
    else
        snprintf(buf, cap, "cpu:%d", pl->stages[s].device.index);
    return buf;
}

/* The precision and, when anything is stored in 16 bits, the op table that says what
 * (ir/precision.h): one line per storage rule. */
static void print_precision(const pmlc_plan *pl, FILE *out)
{
    pmlc_dtype h = pl->precision;
    if (pl->distill && pl->distill->teacher_precision != PMLC_F32) h = pl->distill->teacher_precision;
    fprintf(out, "  precision      %s", pmlc_dtype_name(pl->precision));
    if (h != pl->precision) fprintf(out, " (the teacher's forward pass in %s)", pmlc_dtype_name(h));
    if (h == PMLC_F32 && !pl->casts) {
        fputc('\n', out);
        return;
    }
    fprintf(out, ": f32 master weights and optimizer state, %d cast%s to 16 bits (weight copies, matmul operands)\n",
            pl->casts, pl->casts == 1 ? "" : "s");
    for (int r = PMLC_PREC_HALF; r <= PMLC_PREC_DECLARED; r++) {
        int col = fprintf(out, "    %-13s", r == PMLC_PREC_HALF ? (h == PMLC_F16 ? "f16" : "bf16") : pmlc_precision_rule_name((pmlc_prec_rule)r));
        for (int op = 0; op < OP_COUNT; op++) {
            if ((int)pmlc_precision_rule((pmlc_opcode)op, 0) != r) continue;
            if (col > 84) col = fprintf(out, "\n%17s", "") - 1;
            col += fprintf(out, " %s", pmlc_ops[op].name);
        }
        if (r == PMLC_PREC_F32)
            fputs(", and the inputs, output, loss and parameter gradients; in the backward pass, element-wise ops", out);
        fputc('\n', out);
    }
}

static const char *placement_str(const pmlc_plan *pl)
{
    return pl->g->auto_place ? "auto" : pl->g->staged ? "stage blocks" : "single stage";
}

static const char *init_str(const ir_param *p, char *buf, size_t cap)
{
    if (p->init == PMLC_INIT_NORMAL)
        snprintf(buf, cap, "normal(std = %g, mean = %g)", p->init_a, p->init_b);
    else if (p->init == PMLC_INIT_UNIFORM)
        snprintf(buf, cap, "uniform(%g, %g)", p->init_a, p->init_b);
    else
        snprintf(buf, cap, "%s", pmlc_init_name(p->init));
    return buf;
}

/* The stage's compute order, F3 for the forward of micro-batch 3, B3 for its backward
 * (or its input-gradient half), W3 for its weight-gradient half; with chunks, F3/1 for
 * the forward of micro-batch 3 on the device's chunk 1. */
static void print_order(const pmlc_timetable *tt, const pmlc_stage_timetable *st, FILE *out)
{
    enum { SHOWN = 24 };
    int shown = 0, total = 0;
    fputs("  order         ", out);
    for (int i = 0; i < st->instr.n; i++) {
        pmlc_instr in = st->instr.v[i];
        if (in.kind != PMLC_I_FWD && in.kind != PMLC_I_BWD && in.kind != PMLC_I_BWD_INPUT &&
            in.kind != PMLC_I_BWD_WEIGHT && in.kind != PMLC_I_STEP)
            continue;
        total++;
        if (shown == SHOWN) continue;
        shown++;
        if (in.kind == PMLC_I_STEP)
            fputs(" step", out);
        else
            fprintf(out, " %c%d", in.kind == PMLC_I_FWD ? 'F' : in.kind == PMLC_I_BWD_WEIGHT ? 'W' : 'B', in.mb);
        if (in.kind != PMLC_I_STEP && tt->n_chunks > tt->n_stages) fprintf(out, "/%d", in.chunk / tt->n_stages);
    }
    if (total > shown) fprintf(out, " ... (%d more)", total - shown);
    fputc('\n', out);
}

static int has_auto_freeze(const pmlc_train *t)
{
    for (int i = 0; i < t->freezes.n; i++)
        if (t->freezes.v[i].is_auto) return 1;
    return 0;
}

/* Where evaluation draws from (pmlc train --eval, eval_every): a held-out file, a
 * held-out fraction, a generator's fresh samples, or, for a file with none of them, the
 * training rows, said as such. Shown for file and token data, and whenever a held-out
 * field is given. */
static void print_evaluation(const pmlc_plan *pl, FILE *out)
{
    const pmlc_train *t = pl->train;
    int file = t && (t->data == PMLC_DATA_FILE || t->data == PMLC_DATA_TOKENS);
    if (!t || (!file && !t->eval_every)) return;
    fputs("  evaluation     ", out);
    if (t->eval_data_path && t->eval_labels_path)
        fprintf(out, "held-out files %s, %s", t->eval_data_path, t->eval_labels_path);
    else if (t->eval_data_path)
        fprintf(out, "held-out token file %s", t->eval_data_path);
    else if (t->holdout > 0)
        fprintf(out, "held out: the last %g%% of %s, never trained on", 100 * t->holdout,
                t->data == PMLC_DATA_TOKENS ? "the tokens" : "the rows (in a fixed random order)");
    else if (file)
        fputs("training rows (no eval_data or holdout: nothing is held out)", out);
    else
        fputs("fresh samples of the generator", out);
    if (t->eval_every) fprintf(out, ", every %" PRId64 " steps", t->eval_every);
    fputc('\n', out);
}

/* The copies stage s holds of weights tied across stages (plan/tie.h), after its layers. */
static void print_ties(const pmlc_plan *pl, int s, FILE *out)
{
    const pmlc_graph *g = pl->g;
    int any = 0;
    for (int q = 0; q < g->params.n; q++) {
        const ir_param *c = &g->params.v[q];
        if (c->tie < 0 || g->nodes.v[c->node].stage != s) continue;
        fprintf(out, "%s%s (stage %d's)", any++ ? ", " : "; tied: ", c->name,
                g->nodes.v[g->params.v[c->tie].node].stage);
    }
}

static void print_freezes(const pmlc_plan *pl, FILE *out)
{
    const pmlc_train *t = pl->train;
    if (!t) return;
    for (int i = 0; i < t->freezes.n; i++) {
        const pmlc_freeze *f = &t->freezes.v[i];
        if (!f->is_auto) continue;
        fprintf(out,
                "  auto freeze    every %" PRId64 " steps, gradient-change threshold %g (decided at run time: "
                "a growing frozen prefix of layers)\n",
                f->every, f->threshold);
    }
}

void pmlc_plan_print_text(const pmlc_program *P, const pmlc_plan *pl, FILE *out)
{
    const pmlc_graph *g = pl->g;
    char a[64], b[64], c[64], d[64], e[256];
    fprintf(out, "plan for model '%s'\n", g->name);
    int D = pl->n_stages / pl->chunks; /* stage devices */
    fprintf(out, "  placement      %d stage%s (%s)", D, D == 1 ? "" : "s", placement_str(pl));
    int vee = pml_plan_schedule_vee((int)pl->schedule);
    if (pl->chunks > 1 && vee)
        fprintf(out, ", %d chunks each: the model in %d chunks, in a V: stage s runs chunks s and %d - s", pl->chunks,
                pl->n_stages, pl->n_stages - 1);
    else if (pl->chunks > 1)
        fprintf(out, ", %d chunks each: the model in %d chunks, chunk c on stage c mod %d", pl->chunks, pl->n_stages, D);
    if (pl->n_stages > 1)
        fprintf(out, ", imbalance %.1f%% (slowest %s vs mean)", 100 * pl->imbalance, pl->chunks > 1 ? "chunk" : "stage");
    if (pl->replicas > 1)
        fprintf(out, "\n  replicas       %d pipelines, each on %" PRId64 " of the %" PRId64 " micro-batches",
                pl->replicas, pl->microbatches / pl->replicas, pl->microbatches);
    fprintf(out, "\n  schedule       %s, %" PRId64 " micro-batch%s of %" PRId64 " (batch %" PRId64 ")\n",
            pmlc_schedule_name(pl->schedule), pl->microbatches, pl->microbatches == 1 ? "" : "es", pl->microbatch,
            pl->batch);
    if (pl->auto_choice) fprintf(out, "  schedule auto  %s\n", pl->auto_choice);
    if (pl->chunks > 1 && vee)
        fprintf(out, "  chunks         %d per stage, in a V%s\n", pl->chunks,
                pl->schedule == PMLC_SCHED_ZERO_BUBBLE_V ? "; backwards split into input and weight halves"
                                                         : "; backwards whole, the last ones split");
    else if (pl->chunks > 1)
        fprintf(out, "  chunks         %d per stage; micro-batches run in groups of %d through each chunk\n", pl->chunks, D);
    fprintf(out, "  bubble         %.1f%% analytic", 100 * pl->bubble);
    if (pl->timetable)
        fprintf(out, ", %.1f%% simulated with these stage costs\n", 100 * pl->timetable->bubble);
    else
        fputs(" (planned only: there is no timetable)\n", out);
    print_precision(pl, out);
    int any = 0;
    for (int s = 0; s < P->syms.n; s++) {
        int used = 0;
        for (int k = 0; k < g->inputs.n; k++) {
            const ir_node *n = &g->nodes.v[g->inputs.v[k].node];
            for (int q = 0; q < n->rank; q++) used |= n->shape[q].pow[s] != 0;
        }
        if (!used) continue;
        fprintf(out, "%s%s = %" PRId64 "%s", any ? ", " : "  dimensions     ", P->syms.names[s], pl->binding[s],
                s == g->batch_sym ? " (micro-batch)" : "");
        any = 1;
    }
    if (any) fputc('\n', out);
    fprintf(out, "  parameters     %s (%s)\n", fmt_count(pl->total_params, a, sizeof a),
            pmlc_fmt_bytes(pl->total_params * 4, b, sizeof b));
    print_evaluation(pl, out);
    print_freezes(pl, out);
    for (int s = 0; s < pl->n_stages; s++) {
        const pmlc_stage_plan *st = &pl->stages[s];
        if (pl->chunks > 1)
            fprintf(out, "\nchunk %d (stage %d's chunk %d) on %s\n", s, pmlc_plan_device_of(pl, s), s / D,
                    device_str(pl, s, a, sizeof a));
        else
            fprintf(out, "\nstage %d on %s\n", s, device_str(pl, s, a, sizeof a));
        fputs("  layers         ", out);
        if (!st->layers.n) fputs("(no parameters)", out);
        for (int i = 0; i < st->layers.n; i++) fprintf(out, "%s%s", i ? ", " : "", st->layers.v[i]);
        print_ties(pl, s, out);
        fprintf(out, "\n  parameters     %s (%s), optimizer state %s\n", fmt_count(st->params, a, sizeof a),
                pmlc_fmt_bytes(st->param_bytes, b, sizeof b), pmlc_fmt_bytes(st->opt_bytes, c, sizeof c));
        fprintf(out, "  flops/mb       forward %s, backward %s (input %s, weight %s)\n",
                fmt_flops(st->cost.fwd, a, sizeof a), fmt_flops(st->cost.bwd_b + st->cost.bwd_w, b, sizeof b),
                fmt_flops(st->cost.bwd_b, c, sizeof c), fmt_flops(st->cost.bwd_w, d, sizeof d));
        fprintf(out, "  kernels        forward %d from %d ops", st->n_kernels, st->n_ops);
        if (st->n_bwd_ops) fprintf(out, ", backward %d from %d ops", st->n_bwd_kernels, st->n_bwd_ops);
        fprintf(out, "; the forward pass writes %s, %s unfused\n", pmlc_fmt_bytes(st->fwd_written, a, sizeof a),
                pmlc_fmt_bytes(st->fwd_written_unfused, b, sizeof b));
        fprintf(out, "  activations    %s per micro-batch, %d in flight: %s\n",
                pmlc_fmt_bytes(st->cost.act_bytes, a, sizeof a), st->in_flight,
                pmlc_fmt_bytes(st->cost.act_bytes * st->in_flight, b, sizeof b));
        if (g->copy_of && !st->recompute_flops) {
            fputs("  recompute      nothing on this stage\n", out);
        } else if (g->copy_of) {
            double work = total_flops(&st->cost) - st->recompute_flops; /* the stage's work without it */
            fprintf(out,
                    "  recompute      keeps %s per micro-batch instead of %s; recomputing adds %s flops/mb (+%.1f%%)\n",
                    pmlc_fmt_bytes(st->cost.act_bytes, a, sizeof a), pmlc_fmt_bytes(st->act_bytes_plain, b, sizeof b),
                    fmt_flops(st->recompute_flops, c, sizeof c), work > 0 ? 100 * st->recompute_flops / work : 0.0);
        }
        if (pl->memory) {
            const pmlc_stage_memory *m = &pl->memory->stages[s];
            fprintf(out, "  memory         arena %s: state %s, ", pmlc_fmt_bytes(m->arena, a, sizeof a),
                    pmlc_fmt_bytes(m->state, b, sizeof b));
            if (m->kept) fprintf(out, "kept all step %s, ", pmlc_fmt_bytes(m->kept, a, sizeof a));
            fprintf(out, "activations %s at most (%d micro-batch%s), ", pmlc_fmt_bytes(m->activations, c, sizeof c),
                    m->in_flight, m->in_flight == 1 ? "" : "es");
            fprintf(out, "temporaries %s at most\n", pmlc_fmt_bytes(m->temporaries, a, sizeof a));
        }
        if (st->n_teacher_ops)
            fprintf(out,
                    "  teacher        %d ops, forward %s/mb, backward %s, %s parameters, %s gradients, %s optimizer "
                    "state\n",
                    st->n_teacher_ops, fmt_flops(st->teacher_fwd, a, sizeof a), fmt_flops(st->teacher_bwd, b, sizeof b),
                    fmt_count(st->teacher_params, c, sizeof c), fmt_count(st->teacher_grads, d, sizeof d),
                    pmlc_fmt_bytes(st->teacher_opt_bytes, e, sizeof e));
        if (pl->timetable && pl->chunks == 1) print_order(pl->timetable, &pl->timetable->stages[s], out);
        for (int i = 0; i < st->sends.n; i++) {
            const pmlc_send *sd = &st->sends.v[i];
            fprintf(out, "  %-14s %s  %s  %s\n", i ? "" : "sends", sd->name,
                    fmt_cshape(sd->dtype, &sd->shape, e, sizeof e), pmlc_fmt_bytes(sd->bytes, a, sizeof a));
        }
    }
    for (int r = 0; pl->timetable && pl->chunks > 1 && r < D; r++) {
        fprintf(out, "%sstage %d (chunks", r ? "" : "\n", r);
        for (int k = 0; k < pl->n_stages; k++)
            if (pmlc_plan_device_of(pl, k) == r) fprintf(out, " %d", k);
        fprintf(out, "), holds %d micro-batch-chunks at most\n", pl->timetable->stages[r].peak_in_flight);
        print_order(pl->timetable, &pl->timetable->stages[r], out);
    }
    if (pl->phases.n > 1) {
        fputs("\nphases (freezing removes work)\n", out);
        for (int i = 0; i < pl->phases.n; i++) {
            const pmlc_phase *ph = &pl->phases.v[i];
            double worst = 0;
            fprintf(out, "  from step %-8" PRId64 " %s frozen; flops/mb per stage:", ph->step,
                    fmt_count(ph->frozen, a, sizeof a));
            for (int s = 0; s < pl->n_stages; s++) {
                double tot = ph->stages[s].fwd + ph->stages[s].bwd_b + ph->stages[s].bwd_w;
                if (tot > worst) worst = tot;
                fprintf(out, " %s", fmt_flops(tot, b, sizeof b));
            }
            fprintf(out, " (slowest %s)\n", fmt_flops(worst, c, sizeof c));
            if (!ph->recut) continue;
            worst = 0;
            fprintf(out, "  %-27s re-cut (pmlc train):", "");
            for (int s = 0; s < pl->n_stages; s++) {
                double tot = ph->recut[s].fwd + ph->recut[s].bwd_b + ph->recut[s].bwd_w;
                if (tot > worst) worst = tot;
                fprintf(out, " %s", fmt_flops(tot, b, sizeof b));
            }
            fprintf(out, " (slowest %s)\n", fmt_flops(worst, c, sizeof c));
        }
    }
    if (pl->distill) {
        const pmlc_distill *dd = pl->distill;
        fprintf(out, "\ndistillation from '%s' (\"%s\")\n", dd->teacher->name, dd->weights);
        fprintf(out,
                "  teacher        forward only, %s FLOPs per micro-batch, %s parameters (teacher.*), %s; loaded "
                "from the file, never trained or saved\n",
                fmt_flops(pl->teacher_fwd, a, sizeof a), fmt_count(pl->teacher_params, b, sizeof b),
                pmlc_dtype_name(dd->teacher_precision));
        fprintf(out, "  loss           %g * T^2 * KL(teacher/T || student/T) + %g * %s, T = %g\n", dd->alpha,
                1 - dd->alpha, pl->train ? pl->train->loss_fn->name : "loss", dd->temperature);
        for (int i = 0; i < dd->matches.n; i++) {
            const pmlc_match *m = &dd->matches.v[i];
            const ir_param *proj = match_projection(pl->g, i);
            char sname[300];
            snprintf(sname, sizeof sname, proj ? "proj(%s)" : "%s", m->student);
            fprintf(out, "  %-14s + %g * %s(%s, teacher.%s)", i ? "" : "match", m->weight,
                    m->cosine ? "cosine_distance" : "mse", sname, m->teacher);
            if (proj)
                fprintf(out, ", proj = %s [%" PRId64 ", %" PRId64 "], trained, saved in distill.safetensors\n",
                        proj->name, proj->dims[0], proj->dims[1]);
            else
                fputc('\n', out);
        }
    }
}

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void json_shape(FILE *out, const pmlc_cshape *s)
{
    fputc('[', out);
    for (int k = 0; k < s->rank; k++) fprintf(out, "%s%" PRId64, k ? ", " : "", s->d[k]);
    fputc(']', out);
}

static void json_cost(FILE *out, const pmlc_stage_cost *c)
{
    fprintf(out,
            "\"fwd_flops\": %.17g, \"fwd_bytes\": %.17g, \"bwd_flops\": %.17g, \"bwd_input_flops\": %.17g, "
            "\"bwd_weight_flops\": %.17g, "
            "\"activation_bytes\": %" PRId64 ", \"trainable_params\": %" PRId64,
            c->fwd, c->fwd_bytes, c->bwd_b + c->bwd_w, c->bwd_b, c->bwd_w, c->act_bytes, c->trainable);
}

void pmlc_plan_print_json(const pmlc_program *P, const pmlc_plan *pl, FILE *out)
{
    const pmlc_graph *g = pl->g;
    char buf[256];
    fprintf(out, "{\n  \"pml_plan_version\": %d,\n  \"model\": ", PMLC_PLAN_JSON_VERSION);
    json_str(out, g->name);
    fprintf(out, ",\n  \"placement\": \"%s\",\n  \"stages_count\": %d,\n  \"replicas\": %d,\n  \"imbalance\": %.6f,\n",
            pl->g->auto_place ? "auto"
            : g->staged       ? "manual"
                              : "single",
            pl->n_stages, pl->replicas, pl->imbalance);
    fprintf(out, "  \"chunks\": %d,\n", pl->chunks);
    fprintf(out, "  \"schedule\": \"%s\",\n  \"schedule_runnable\": %s,\n  \"bubble_fraction\": %.6f,\n",
            pmlc_schedule_name(pl->schedule), pmlc_schedule_runnable(pl->schedule) ? "true" : "false", pl->bubble);
    if (pl->timetable)
        fprintf(out, "  \"simulated_bubble_fraction\": %.6f,\n  \"simulated_step\": %.17g,\n", pl->timetable->bubble,
                pl->timetable->makespan);
    else
        fputs("  \"simulated_bubble_fraction\": null,\n  \"simulated_step\": null,\n", out);
    fputs("  \"schedule_auto\": ", out);
    if (pl->auto_choice)
        json_str(out, pl->auto_choice);
    else
        fputs("null", out);
    fputs(",\n", out);
    fprintf(out,
            "  \"precision\": \"%s\",\n  \"batch\": %" PRId64 ",\n  \"microbatches\": %" PRId64
            ",\n  \"microbatch_size\": %" PRId64 ",\n  \"dimensions\": {",
            pmlc_dtype_name(pl->precision), pl->batch, pl->microbatches, pl->microbatch);
    int any = 0;
    for (int s = 0; s < P->syms.n; s++) {
        int used = 0;
        for (int k = 0; k < g->inputs.n; k++) {
            const ir_node *n = &g->nodes.v[g->inputs.v[k].node];
            for (int q = 0; q < n->rank; q++) used |= n->shape[q].pow[s] != 0;
        }
        if (!used) continue;
        fprintf(out, "%s", any ? ", " : "");
        json_str(out, P->syms.names[s]);
        fprintf(out, ": %" PRId64, pl->binding[s]);
        any = 1;
    }
    fprintf(out, "},\n  \"total_params\": %" PRId64 ",\n  \"inputs\": [", pl->total_params);
    for (int i = 0; i < g->inputs.n; i++) {
        const ir_node *n = &g->nodes.v[g->inputs.v[i].node];
        pmlc_shape sh = {n->rank, {{0}}};
        memcpy(sh.d, n->shape, sizeof(pmlc_size) * (size_t)n->rank);
        fprintf(out, "%s{\"name\": ", i ? ", " : "");
        json_str(out, g->inputs.v[i].name);
        fprintf(out, ", \"type\": ");
        json_str(out, pmlc_type_str(n->dtype, &sh, &P->syms, buf, sizeof buf));
        fputc('}', out);
    }
    fputs("],\n  \"stages\": [\n", out);
    for (int s = 0; s < pl->n_stages; s++) {
        const pmlc_stage_plan *st = &pl->stages[s];
        fprintf(out, "    {\"index\": %d, \"device\": \"%s\", \"layers\": [", s, device_str(pl, s, buf, sizeof buf));
        for (int i = 0; i < st->layers.n; i++) {
            fprintf(out, "%s", i ? ", " : "");
            json_str(out, st->layers.v[i]);
        }
        fprintf(out,
                "],\n     \"params\": %" PRId64 ", \"param_bytes\": %" PRId64 ", \"optimizer_state_bytes\": %" PRId64
                ", \"ops\": %d, \"backward_ops\": %d, \"kernels\": %d, \"backward_kernels\": %d,\n     "
                "\"fwd_written_bytes\": %" PRId64 ", \"fwd_written_bytes_unfused\": %" PRId64 ",\n     ",
                st->params, st->param_bytes, st->opt_bytes, st->n_ops, st->n_bwd_ops, st->n_kernels, st->n_bwd_kernels,
                st->fwd_written, st->fwd_written_unfused);
        json_cost(out, &st->cost);
        fprintf(out,
                ",\n     \"teacher\": {\"ops\": %d, \"fwd_flops\": %.17g, \"bwd_flops\": %.17g, \"params\": %" PRId64
                ", \"grads\": %" PRId64 ", \"optimizer_state_bytes\": %" PRId64 "}",
                st->n_teacher_ops, st->teacher_fwd, st->teacher_bwd, st->teacher_params, st->teacher_grads,
                st->teacher_opt_bytes);
        fputs(", \"recompute\": ", out);
        if (pl->g->copy_of)
            fprintf(out, "{\"activation_bytes_without\": %" PRId64 ", \"flops\": %.17g}", st->act_bytes_plain,
                    st->recompute_flops);
        else
            fputs("null", out);
        fprintf(out, ", \"in_flight\": %d,\n     \"memory\": ", st->in_flight);
        if (pl->memory) {
            const pmlc_stage_memory *m = &pl->memory->stages[s];
            fprintf(out,
                    "{\"arena_bytes\": %" PRId64 ", \"state_bytes\": %" PRId64 ", \"kept_bytes\": %" PRId64
                    ", \"activation_bytes\": %" PRId64 ", \"temporary_bytes\": %" PRId64 ", \"peak_bytes\": %" PRId64
                    ", \"in_flight\": %d}",
                    m->arena, m->state, m->kept, m->activations, m->temporaries, m->peak, m->in_flight);
        } else {
            fputs("null", out);
        }
        fputs(",\n     \"timetable\": [", out);
        for (int i = 0; pl->by_chunk && i < pl->by_chunk->stages[s].instr.n; i++) {
            pmlc_instr in = pl->by_chunk->stages[s].instr.v[i];
            fprintf(out, "%s[\"%s\", %d]", i ? ", " : "", pmlc_instr_name(in.kind), in.mb);
        }
        fputs("],\n     \"sends\": [", out);
        for (int i = 0; i < st->sends.n; i++) {
            const pmlc_send *sd = &st->sends.v[i];
            fprintf(out, "%s{\"name\": ", i ? ", " : "");
            json_str(out, sd->name);
            fprintf(out, ", \"dtype\": \"%s\", \"shape\": ", pmlc_dtype_name(sd->dtype));
            json_shape(out, &sd->shape);
            fprintf(out, ", \"bytes\": %" PRId64 "}", sd->bytes);
        }
        fprintf(out, "]}%s\n", s + 1 < pl->n_stages ? "," : "");
    }
    fputs("  ],\n  \"parameters\": [\n", out);
    int n_roots = 0;
    for (int p = 0; p < g->params.n; p++) n_roots += g->params.v[p].tie < 0;
    for (int p = 0, listed = 0; p < g->params.n; p++) {
        const ir_param *prm = &g->params.v[p];
        if (prm->tie >= 0) continue; /* a tied weight's copy: its root lists its stage */
        listed++;
        fputs("    {\"name\": ", out);
        json_str(out, prm->name);
        fputs(", \"layer\": ", out);
        json_str(out, prm->layer);
        fprintf(out, ", \"dtype\": \"%s\", \"shape\": [", pmlc_dtype_name(prm->dtype));
        for (int k = 0; k < prm->rank; k++) fprintf(out, "%s%" PRId64, k ? ", " : "", prm->dims[k]);
        fprintf(out, "], \"numel\": %" PRId64 ", \"stage\": %d, \"tied_stages\": [", prm->numel,
                g->nodes.v[prm->node].stage);
        for (int q = 0, copies = 0; q < g->params.n; q++)
            if (g->params.v[q].tie == p)
                fprintf(out, "%s%d", copies++ ? ", " : "", g->nodes.v[g->params.v[q].node].stage);
        fputs("], \"init\": ", out);
        json_str(out, init_str(prm, buf, sizeof buf));
        if (prm->frozen_from >= 0)
            fprintf(out, ", \"frozen_from_step\": %d", prm->frozen_from);
        else
            fputs(", \"frozen_from_step\": null", out);
        fprintf(out, ", \"teacher\": %s}%s\n", prm->teacher ? "true" : "false", listed < n_roots ? "," : "");
    }
    fputs("  ],\n  \"phases\": [", out);
    for (int i = 0; i < pl->phases.n; i++) {
        const pmlc_phase *ph = &pl->phases.v[i];
        fprintf(out, "%s\n    {\"from_step\": %" PRId64 ", \"frozen_params\": %" PRId64 ", \"stages\": [", i ? "," : "",
                ph->step, ph->frozen);
        for (int s = 0; s < pl->n_stages; s++) {
            fprintf(out, "%s{", s ? ", " : "");
            json_cost(out, &ph->stages[s]);
            fputc('}', out);
        }
        fputc(']', out);
        for (int s = 0; ph->recut && s < pl->n_stages; s++)
            fprintf(out, "%s%.17g", s ? ", " : ", \"recut_flops\": [",
                    ph->recut[s].fwd + ph->recut[s].bwd_b + ph->recut[s].bwd_w);
        fputs(ph->recut ? "]}" : "}", out);
    }
    fputs("\n  ],\n  \"train\": ", out);
    const pmlc_train *t = pl->train;
    if (!t) {
        fputs("null", out);
    } else {
        static const char *const data_kinds[] = {"none", "file", "classes", "markov", "tokens"};
        fprintf(out, "{\"data\": \"%s\", \"eval_data\": ", data_kinds[t->data]);
        if (t->eval_data_path)
            json_str(out, t->eval_data_path);
        else
            fputs("null", out);
        fputs(", \"eval_labels\": ", out);
        if (t->eval_labels_path)
            json_str(out, t->eval_labels_path);
        else
            fputs("null", out);
        fprintf(out, ", \"holdout\": %.17g, \"eval_every\": %" PRId64 ", \"loss\": ", t->holdout, t->eval_every);
        json_str(out, t->loss_fn->name);
        fprintf(out,
                ", \"optimizer\": \"%s\", \"lr\": %.17g, \"weight_decay\": %.17g, \"lr_schedule\": \"%s\", "
                "\"steps\": %" PRId64 ", \"seed\": %" PRId64 ", \"recompute\": %s, \"auto_freeze\": %s}",
                t->opt == PMLC_OPT_ADAMW ? "adamw" : "sgd", t->lr, t->weight_decay,
                t->lr_kind == PMLC_LR_WARMUP_COSINE ? "warmup_cosine" : "constant", t->steps, t->seed,
                t->recompute ? "true" : "false", has_auto_freeze(t) ? "true" : "false");
    }
    fputs(",\n  \"distill\": ", out);
    if (!pl->distill) {
        fputs("null", out);
    } else {
        fputs("{\"teacher\": ", out);
        json_str(out, pl->distill->teacher->name);
        fputs(", \"weights\": ", out);
        json_str(out, pl->distill->weights);
        fprintf(out,
                ", \"temperature\": %.17g, \"alpha\": %.17g, \"teacher_fwd_flops\": %.17g, \"teacher_params\": %" PRId64
                ", \"teacher_precision\": \"%s\", \"matches\": [",
                pl->distill->temperature, pl->distill->alpha, pl->teacher_fwd, pl->teacher_params,
                pmlc_dtype_name(pl->distill->teacher_precision));
        for (int i = 0; i < pl->distill->matches.n; i++) {
            const pmlc_match *m = &pl->distill->matches.v[i];
            const ir_param *proj = match_projection(pl->g, i);
            fputs(i ? ", {\"student\": " : "{\"student\": ", out);
            json_str(out, m->student);
            fputs(", \"teacher\": ", out);
            json_str(out, m->teacher);
            fprintf(out, ", \"loss\": \"%s\", \"weight\": %.17g, \"projection\": ", m->cosine ? "cosine" : "mse",
                    m->weight);
            if (proj)
                json_str(out, proj->name);
            else
                fputs("null", out);
            fputc('}', out);
        }
        fputs("]}", out);
    }
    fputs("\n}\n", out);
}

static void dot_str(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', out);
        fputc(*s, out);
    }
}

void pmlc_plan_print_dot(const pmlc_program *P, const pmlc_plan *pl, FILE *out)
{
    char a[64], b[64], c[64], e[256];
    fputs("digraph plan {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
          "  edge [fontname=\"Helvetica\", fontsize=10];\n  label=\"",
          out);
    dot_str(out, pl->g->name);
    fprintf(out, ": %s, %" PRId64 " micro-batches, bubble %.1f%%\";\n", pmlc_schedule_name(pl->schedule),
            pl->microbatches, 100 * pl->bubble);
    for (int s = 0; s < pl->n_stages; s++) {
        const pmlc_stage_plan *st = &pl->stages[s];
        fprintf(out, "  stage%d [label=\"stage %d on %s\\n", s, s, device_str(pl, s, a, sizeof a));
        for (int i = 0; i < st->layers.n && i < 6; i++) {
            dot_str(out, st->layers.v[i]);
            fputs(i + 1 < st->layers.n && i < 5 ? ", " : "", out);
        }
        if (st->layers.n > 6) fprintf(out, "... (%d layers)", st->layers.n);
        fprintf(out, "\\n%s parameters\\nforward %sFLOP, backward %sFLOP\\nactivations %s per micro-batch\"];\n",
                fmt_count(st->params, a, sizeof a), fmt_flops(st->cost.fwd, b, sizeof b),
                fmt_flops(st->cost.bwd_b + st->cost.bwd_w, c, sizeof c),
                pmlc_fmt_bytes(st->cost.act_bytes, e, sizeof e));
    }
    for (int s = 0; s + 1 < pl->n_stages; s++) {
        const pmlc_stage_plan *st = &pl->stages[s];
        fprintf(out, "  stage%d -> stage%d [label=\"", s, s + 1);
        for (int i = 0; i < st->sends.n; i++) {
            fputs(i ? "\\n" : "", out);
            dot_str(out, st->sends.v[i].name);
            fprintf(out, " %s", fmt_cshape(st->sends.v[i].dtype, &st->sends.v[i].shape, e, sizeof e));
        }
        fputs("\"];\n", out);
    }
    for (int s = 0; pl->distill && s < pl->n_stages; s++) {
        if (!pl->stages[s].n_teacher_ops) continue;
        fprintf(out, "  teacher%d [shape=box, style=\"rounded,dashed\", label=\"teacher ", s);
        dot_str(out, pl->distill->teacher->name);
        fprintf(out, "\\nforward only, %sFLOP\"];\n  teacher%d -> stage%d [style=dashed];\n",
                fmt_flops(pl->stages[s].teacher_fwd, a, sizeof a), s, s);
    }
    fputs("}\n", out);
    (void)P;
}
