/* test_fuse.c — fusion groups what a person would fuse by hand: softmax and layernorm
 * are one row kernel each, a GELU written in element-wise ops (the stdlib's is one op,
 * gelu_tanh) one element-wise kernel, each matmul its own kernel,
 * reshapes no code; nothing crosses a stage or a pass; kernels are numbered in an order
 * they can run in; and only values read outside their kernel (or saved, sent, output)
 * are written to memory. */
#include <string.h>

#include "check.h"
#include "ir/fuse.h"
#include "session_int.h"

static const char program[] =
    "import \"nn\"\n"
    "fn tanh_gelu(x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) }\n"
    "model m(x: f32[B, 8]) -> f32[B, 8] {\n"
    "    stage 0 { h = tanh_gelu(linear(x, 16) as fc) }\n"
    "    stage 1 {\n"
    "        h = layernorm(reshape(h, [B, 16])) as norm\n"
    "        return softmax(linear(h, 8) as head)\n"
    "    }\n"
    "}\n"
    "train m { data = \"x.npy\", labels = \"y.npy\", loss = mse, optimizer = sgd(lr = 0.1), batch = 4 }\n";

/* The kernel of the first node made by `op` after node `from`. */
static int group_of(const pmlc_graph *g, const pmlc_fusion *f, pmlc_opcode op, int from, int *at)
{
    for (int i = from; i < g->n_forward; i++)
        if (g->nodes.v[i].op == op) return *at = i, f->group[i];
    return *at = -1, -2;
}

int main(void)
{
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *s = pmlc_session_create(&opt);
    const pmlc_plan *pl = NULL;
    pmlc_graph *g =
        pmlc_session_check_text(s, "fuse.pml", program, strlen(program)) ? NULL : pmlc_session_graph(s, &pl);
    CHECK(g != NULL);
    if (!g) return check_summary("fuse");
    pmlc_fusion f;
    pmlc_fuse(&pmlc_session_program(s)->arena, g, &f);

    /* group_of sets each where it finds the op (-O3 cannot see that it does) */
    int at = 0, tanh_at = 0, max_at = 0, sum_at = 0, mean_at = 0, mean2_at = 0, rsqrt_at = 0;
    int mm1 = group_of(g, &f, OP_MATMUL, 0, &at);
    int gelu = group_of(g, &f, OP_TANH, 0, &tanh_at);
    CHECK(gelu >= 0 && gelu != mm1 && f.kind[gelu] == PMLC_KERNEL_ELEMWISE);
    /* GELU's arithmetic after tanh, 0.5 * x * (1 + tanh(...)), is in its kernel. */
    int add_at = 0, mul_at = 0;
    CHECK(group_of(g, &f, OP_ADD, tanh_at, &add_at) == gelu && group_of(g, &f, OP_MUL, add_at, &mul_at) == gelu);
    int ln = group_of(g, &f, OP_MEAN, 0, &mean_at);
    CHECK(group_of(g, &f, OP_MEAN, mean_at + 1, &mean2_at) == ln);
    CHECK(group_of(g, &f, OP_RSQRT, 0, &rsqrt_at) == ln && f.kind[ln] == PMLC_KERNEL_ROW);
    int sm = group_of(g, &f, OP_MAX, 0, &max_at);
    CHECK(sm >= 0 && sm != ln && f.kind[sm] == PMLC_KERNEL_ROW);
    CHECK(group_of(g, &f, OP_SUM, max_at, &sum_at) == sm);
    CHECK(group_of(g, &f, OP_EXP, max_at, &at) == sm);
    int mm2 = group_of(g, &f, OP_MATMUL, mean_at, &at);
    CHECK(mm2 >= 0 && f.kind[mm2] == PMLC_KERNEL_SINGLE && mm2 != sm && mm2 != ln);
    int view = group_of(g, &f, OP_RESHAPE, 0, &at);
    CHECK(view >= 0 && f.kind[view] == PMLC_KERNEL_NONE);
    /* Kernels stay within one stage and one pass. */
    for (int i = 0; i < g->nodes.n; i++)
        for (int j = 0; j < g->nodes.v[i].n_in; j++) {
            int p = g->nodes.v[i].in[j];
            if (f.group[p] >= 0 && f.group[p] == f.group[i])
                CHECK(g->nodes.v[p].stage == g->nodes.v[i].stage && g->nodes.v[p].pass == g->nodes.v[i].pass);
        }
    /* Kernels are numbered in a running order: none reads a later one, and their last
     * nodes ascend with their numbers. */
    int last_seen = -1, ordered = 1;
    for (int i = 0; i < g->nodes.n; i++) {
        for (int j = 0; j < g->nodes.v[i].n_in; j++) ordered &= f.group[g->nodes.v[i].in[j]] <= f.group[i];
        int is_last = 1;
        for (int k = i + 1; k < g->nodes.n && is_last; k++) is_last = f.group[k] != f.group[i];
        if (is_last) ordered &= f.group[i] == last_seen + 1, last_seen = f.group[i];
    }
    CHECK(ordered && last_seen == f.n_groups - 1);
    /* Softmax's exponentials never leave the kernel unless the backward pass reads them. */
    int exp_at;
    group_of(g, &f, OP_EXP, max_at, &exp_at);
    int read_outside = 0;
    for (int i = 0; i < g->nodes.n; i++)
        for (int j = 0; j < g->nodes.v[i].n_in; j++)
            if (g->nodes.v[i].in[j] == exp_at && f.group[i] != sm) read_outside = 1;
    CHECK(f.materialized[exp_at] == read_outside);
    CHECK(f.materialized[g->output] && f.materialized[g->loss]);
    /* GELU keeps nothing for the backward pass but its input: the backward pass
     * recomputes tanh and the products around it (autodiff.c, mark_cheap) inside its own
     * kernel, so the forward kernel writes only GELU's input (the bias add, which it
     * fuses) and output, and the backward one is a single kernel that writes only the
     * gradient. */
    int fwd_written = 0, bwd_tanh = -1, bwd_written = 0, bwd_tanhs = 0;
    for (int i = 0; i < g->n_forward; i++)
        if (f.group[i] == gelu && f.materialized[i]) {
            fwd_written++;
            CHECK(g->nodes.v[i].op == OP_ADD || i == mul_at);
        }
    CHECK(fwd_written == 2);
    for (int i = g->n_forward; i < g->nodes.n; i++)
        if (g->nodes.v[i].op == OP_TANH) bwd_tanh = i, bwd_tanhs++;
    CHECK(bwd_tanhs == 1 && f.kind[f.group[bwd_tanh]] == PMLC_KERNEL_ELEMWISE);
    for (int i = g->n_forward; i < g->nodes.n && bwd_tanh >= 0; i++)
        bwd_written += f.group[i] == f.group[bwd_tanh] && f.materialized[i];
    CHECK(bwd_written == 1);
    pmlc_session_destroy(s);
    return check_summary("fuse");
}
