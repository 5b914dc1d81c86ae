/* test_gradients.c — autodiff is right: for a model, the gradient the backward graph
 * computes for every parameter matches central finite differences of the loss.
 *
 * The graph (forward and backward) is evaluated in float64 by the CPU kernels, node
 * by node, so the check measures the backward rules and nothing else:
 * |numeric - analytic| <= 1e-6 + 1e-5 |numeric| with h = 1e-5. Usage:
 * test_gradients CASE.pml (exit 0 when every checked element matches). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "cpu/kernels.h"
#include "session_int.h"

_Static_assert((int)OP_COUNT == (int)PML_OP_COUNT, "compiler and runtime op lists differ");

typedef struct graph_eval {
    pmlc_graph *g;
    pml_view *v; /* per node; floats in f64, i32 as i32 */
} graph_eval;

static int64_t numel(const pml_view *v)
{
    int64_t n = 1;
    for (int k = 0; k < v->rank; k++) n *= v->dims[k];
    return n;
}

static int alloc_views(graph_eval *ev, const int64_t *binding)
{
    pmlc_graph *g = ev->g;
    ev->v = calloc((size_t)g->nodes.n, sizeof *ev->v);
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = &g->nodes.v[i];
        pml_view *v = &ev->v[i];
        v->dtype = pmlc_dtype_is_float(n->dtype) ? PML_F64 : PML_I32;
        v->rank = n->rank;
        for (int k = 0; k < n->rank; k++)
            if (pmlc_size_eval(n->shape[k], binding, &v->dims[k])) return 1;
        v->data = calloc((size_t)(numel(v) ? numel(v) : 1), pml_dtype_size(v->dtype));
        if (!v->data) return 1;
    }
    return 0;
}

/* Runs nodes [0, upto); inputs and parameters hold their values already. */
static int run(graph_eval *ev, int upto)
{
    pmlc_graph *g = ev->g;
    pml_view in[64];
    for (int i = 0; i < upto; i++) {
        const ir_node *n = &g->nodes.v[i];
        if (n->op == OP_INPUT || n->op == OP_PARAM) continue;
        for (int k = 0; k < n->n_in && k < 64; k++) in[k] = ev->v[n->in[k]];
        int64_t cast_to = PML_F64;
        pml_op_call c = {0};
        c.op = (pml_opcode)n->op;
        c.attr = n->attr;
        c.n_attr = n->n_attr;
        if (n->op == OP_CAST && pmlc_dtype_is_float((pmlc_dtype)n->attr[0])) c.attr = &cast_to; /* floats run in f64 */
        c.fval = n->fval;
        c.n_in = n->n_in;
        c.in = in;
        c.out = ev->v[i];
        c.seed = 1234;
        c.threads = 1;
        pml_err err = {0};
        if (pml_cpu_run(&c, &err) != PML_OK) {
            fprintf(stderr, "node %d (%s): %s\n", i, pmlc_ops[n->op].name, err.msg);
            return 1;
        }
    }
    return 0;
}

static double loss_of(graph_eval *ev) { return ((const double *)ev->v[ev->g->loss].data)[0]; }

/* Inputs: floats from N(0, 1); indices and labels uniform in [0, vocab). */
static void fill_inputs(graph_eval *ev, int64_t vocab)
{
    pmlc_graph *g = ev->g;
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = &g->nodes.v[i];
        if (n->op != OP_INPUT && n->op != OP_PARAM) continue;
        pml_view *v = &ev->v[i];
        int64_t count = numel(v);
        for (int64_t j = 0; j < count; j++) {
            if (v->dtype == PML_F64)
                ((double *)v->data)[j] = pml_rng_normal(42, (uint64_t)i, (uint64_t)j);
            else
                ((int32_t *)v->data)[j] = (int32_t)pml_rng_below(42, (uint64_t)i, (uint64_t)j, (uint64_t)vocab);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_gradients CASE.pml\n");
        return 2;
    }
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *s = pmlc_session_create(&opt);
    const pmlc_plan *plan = NULL;
    pmlc_graph *g = pmlc_session_check_file(s, argv[1]) ? NULL : pmlc_session_graph(s, &plan);
    if (!g || g->loss < 0 || !g->n_forward) {
        fprintf(stderr, "%s: no trained model with a backward pass\n", argv[1]);
        return 1;
    }
    graph_eval ev = {g, NULL};
    int64_t vocab = plan->train->vocab > 0 ? plan->train->vocab : 2;
    if (alloc_views(&ev, plan->binding)) return 1;
    fill_inputs(&ev, vocab);
    if (run(&ev, g->nodes.n)) return 1;

    const double h = 1e-5;
    int checks = 0, failures = 0;
    for (int p = 0; p < g->params.n; p++) {
        const ir_param *prm = &g->params.v[p];
        int32_t gn = g->param_grad[p];
        if (gn < 0) {
            fprintf(stderr, "%s: parameter %s has no gradient\n", argv[1], prm->name);
            failures++;
            continue;
        }
        double *theta = ev.v[prm->node].data;
        const double *grad = ev.v[gn].data;
        double *analytic = malloc(sizeof(double) * (size_t)prm->numel);
        memcpy(analytic, grad, sizeof(double) * (size_t)prm->numel);
        int samples = prm->numel < 6 ? (int)prm->numel : 6;
        for (int q = 0; q < samples; q++) {
            int64_t j = (int64_t)pml_rng_below(7, (uint64_t)p, (uint64_t)q, (uint64_t)prm->numel);
            double orig = theta[j], lp, lm;
            theta[j] = orig + h;
            if (run(&ev, g->n_forward)) return 1;
            lp = loss_of(&ev);
            theta[j] = orig - h;
            if (run(&ev, g->n_forward)) return 1;
            lm = loss_of(&ev);
            theta[j] = orig;
            double numeric = (lp - lm) / (2 * h), ana = analytic[j];
            checks++;
            if (!(fabs(numeric - ana) <= 1e-6 + 1e-5 * fabs(numeric))) {
                failures++;
                fprintf(stderr, "%s: d loss / d %s[%lld]: finite differences %.10g, autodiff %.10g\n", argv[1],
                        prm->name, (long long)j, numeric, ana);
            }
        }
        free(analytic);
    }
    printf("%s: %d parameters, %d gradient checks, %d failed\n", argv[1], g->params.n, checks, failures);
    for (int i = 0; i < g->nodes.n; i++) free(ev.v[i].data);
    free(ev.v);
    pmlc_session_destroy(s);
    return failures != 0;
}
