/* test_int8_layout.c — the copies an int8 product makes itself (cpu/stage_int8.c,
 * "layouts"): a transformer block's qkv product written straight into the three
 * permuted [B, heads, T, hd] values its slices and permutes made, and the attention
 * projection's rows gathered from the attention's output instead of its permute, and
 * the rows of a product after a layernorm normalised by the product itself (with the
 * residual sum before it, which it writes), instead of by the fused row group.
 *   skips_the_copies_and_keeps_the_bits: on a one-block GPT of width 48 (3 heads of 16,
 *     its attention written with permutes, not the stdlib's attention_qkv,
 *     T = 5, 3 rows a micro-batch: 15 product rows, 144 qkv columns), the CPU context
 *     skips exactly the 3 slices and 4 permutes and the 3 layernorm groups, and none
 *     when every node runs on its own (unfused: no layouts); the served outputs (poisoned first)
 *     are the unfused run's bits, at 1 and 2 threads, micro-batch after micro-batch;
 *   refuses_a_layout_not_in_runs_of_16: with 6 heads of 8 no 16 columns of the qkv
 *     product lie together in a permute's value, nor 16 of the projection's inputs in
 *     the attention's output: no copy is skipped (the layernorms still are), and the
 *     outputs are still the unfused run's bits.
 * Run again under PML_CPU_ISA=avx2 (int8 through oneDNN on the weights as given, the
 * scattered epilogue element by element). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/check.h"
#include "backend_ops.h"
#include "compile_plan.h"
#include "cpu/stage.h"
#include "exec/pipeline.h"
#include "quant/int8.h"

enum { T = 5, MB = 3, VOCAB = 20 };

/* The block written with the heads split off and merged by slices and permutes around
 * attention(q, k, v), as a model of one's own may (the stdlib's block reads the packed
 * product with attention_qkv, which makes no copies to skip). */
static const char model_fmt[] = "import \"nn\"\n"
                                "fn attn(x, heads) {\n"
                                "    B = dim(x, 0)\n"
                                "    T = dim(x, 1)\n"
                                "    C = dim(x, 2)\n"
                                "    hd = C / heads\n"
                                "    qkv = linear(x, 3 * C) as qkv\n"
                                "    q = permute(reshape(qkv[:, :, 0:C], [B, T, heads, hd]), [0, 2, 1, 3])\n"
                                "    k = permute(reshape(qkv[:, :, C:2 * C], [B, T, heads, hd]), [0, 2, 1, 3])\n"
                                "    v = permute(reshape(qkv[:, :, 2 * C:3 * C], [B, T, heads, hd]), [0, 2, 1, 3])\n"
                                "    y = permute(attention(q, k, v, scale = 1.0 / sqrt(float(hd))), [0, 2, 1, 3])\n"
                                "    return linear(reshape(y, [B, T, C]), C) as proj\n"
                                "}\n"
                                "fn blk(x, heads) {\n"
                                "    x = x + attn(layernorm(x) as ln_1, heads) as attn\n"
                                "    return x + mlp(layernorm(x) as ln_2, 4 * dim(x, 2)) as mlp\n"
                                "}\n"
                                "model g(idx: i32[B, T]) -> f32[B, T, 20] {\n"
                                "    h = embedding(idx, 20, 48) as wte\n"
                                "    h = blk(h, %d) as b0\n"
                                "    return linear(layernorm(h) as lnf, 20, has_bias = false) as head\n"
                                "}\n"
                                "train g {\n"
                                "    data = markov(vocab = 20, order = 2, seed = 1)\n"
                                "    loss = cross_entropy\n"
                                "    optimizer = adamw(lr = 0.001)\n"
                                "    batch = 6, microbatches = 2\n"
                                "    place = cpu\n"
                                "    steps = 1, seed = 7\n"
                                "    T = 5\n"
                                "}\n";

/* Every matrix parameter of the pipeline served in int8 from its own (initial) values. */
static int serve_int8(const pml_plan *pl, pml_pipeline *pipe, pml_backend_inst *b, pml_err *err)
{
    int total = 0;
    for (int q = 0; q < pl->n_params; q++) {
        const pml_plan_node *w = &pl->nodes[pl->params[q].node];
        if (w->rank != 2) continue;
        float *f = pipe ? pml_pipeline_param(pipe, q) : pml_backend_host_param(b, q, 0);
        int8_t *wq = malloc((size_t)w->numel);
        float *s = malloc(sizeof(float) * (size_t)w->dims[0]);
        int served = 0, ok = f && wq && s;
        if (ok) pml_quant_rows_i8(f, w->dims[0], w->dims[1], wq, s);
        if (ok)
            ok = (pipe ? pml_pipeline_param_int8(pipe, q, wq, s, 0, &served, err)
                       : pml_backend_param_int8(b, q, wq, s, 0, &served, err)) == PML_OK;
        free(wq), free(s);
        if (!ok) return -1;
        total += served;
    }
    return total;
}

/* How many nodes the int8 context skips, the products made in their place: copies
 * (slices and permutes), or, with norms, layernorm groups (by their last node, an add). */
static int skipped(const pml_plan *pl, int unfused, int norms)
{
    pml_backend_inst b = {0};
    pml_backend_conf conf = {.seed = 7, .threads = 1, .unfused = unfused};
    pml_err err = {0};
    if (pml_backend_create(&pml_cpu_backend_ops, pl, &conf, &b, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    int n = serve_int8(pl, NULL, &b, &err), count = 0;
    CHECK(n >= 5); /* qkv, proj, fc, mlp proj, head */
    for (int i = 0; i < pl->n_nodes; i++) {
        if (!pml_cpu_ctx_int8_skips((const pml_cpu_ctx *)b.ctx, i)) continue;
        uint16_t op = pl->nodes[i].op;
        int copy = op == PML_OP_SLICE || op == PML_OP_PERMUTE;
        CHECK(copy || op == PML_OP_ADD);
        count += norms ? !copy : copy;
    }
    pml_backend_destroy(&b);
    return count;
}

/* Two micro-batches' outputs of the int8 pipeline (poisoned first). */
static int outputs(const pml_plan *pl, int unfused, int threads, float *y)
{
    pml_pipeline *pipe = NULL;
    pml_err err = {0};
    pml_pipeline_opts o = {.seed = 7, .threads = threads, .unfused = unfused};
    int ok = pml_pipeline_create(pl, &o, &pipe, &err) == PML_OK && serve_int8(pl, pipe, NULL, &err) >= 5;
    for (int r = 0; ok && r < 2; r++) {
        int32_t idx[MB * T];
        for (int i = 0; i < MB * T; i++) idx[i] = (i * 7 + r * 5 + i / 3) % VOCAB;
        float *out = y + (size_t)r * MB * T * VOCAB;
        for (int i = 0; i < MB * T * VOCAB; i++) out[i] = NAN;
        const void *in[1] = {idx};
        ok = pml_pipeline_forward(pipe, in, out, &err) == PML_OK;
    }
    if (!ok) fprintf(stderr, "int8 forward: %s\n", err.msg);
    pml_pipeline_destroy(pipe);
    return ok;
}

static int check_model(int heads, int want_skipped)
{
    char text[sizeof model_fmt + 16];
    snprintf(text, sizeof text, model_fmt, heads);
    pml_err err = {0};
    pml_plan *pl = test_compile_plan("layout.pml", text, NULL, &err);
    CHECK(pl != NULL);
    if (!pl) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int fused = skipped(pl, 0, 0), alone = skipped(pl, 1, 0), norms = skipped(pl, 0, 1), norms_alone = skipped(pl, 1, 1);
    printf("%d heads: %d copies and %d layernorms skipped (unfused: %d and %d)\n", heads, fused, norms, alone,
           norms_alone);
    CHECK(fused == want_skipped);
    CHECK(norms == 3); /* ln_1, ln_2 after the attention's residual add, lnf after the MLP's */
    CHECK(alone == 0 && norms_alone == 0);
    enum { N = 2 * MB * T * VOCAB };
    static float want[N], got[N];
    CHECK(outputs(pl, 1, 1, want));
    for (int i = 0; i < N; i++) CHECK(isfinite(want[i]));
    for (int threads = 1; threads <= 2; threads++) {
        CHECK(outputs(pl, 0, threads, got));
        int bad = 0;
        for (int i = 0; i < N; i++) bad += memcmp(&want[i], &got[i], sizeof(float)) != 0;
        if (bad) fprintf(stderr, "%d heads, %d threads: %d outputs differ from the unfused run\n", heads, threads, bad);
        CHECK(bad == 0);
    }
    pml_plan_free(pl);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    if (!strcmp(argv[1], "skips_the_copies_and_keeps_the_bits")) {
        check_model(3, 7);
        return check_summary("int8 layouts skip the copies and keep the bits");
    }
    if (!strcmp(argv[1], "refuses_a_layout_not_in_runs_of_16")) {
        check_model(6, 0);
        return check_summary("int8 layouts not in runs of 16 are refused");
    }
    return 2;
}
