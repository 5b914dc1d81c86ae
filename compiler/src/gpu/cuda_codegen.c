/* cuda_codegen.c — fused groups to CUDA C kernels (see cuda_codegen.h).
 *
 * Element-wise kernels: a grid-stride loop over the group's elements; each thread
 * takes 16 bytes of every operand read at its own index (one vector load) and
 * computes those elements in registers, with a scalar loop for the tail. Broadcast
 * operands are read at computed offsets.
 * Row kernels: a team (a warp, or a block for rows wider than 1024) per row. Each
 * reduction is one pass over the row that recomputes the element-wise values it needs
 * (the row stays in cache) and combines the team's partial results with shuffles, so
 * softmax, layernorm, rmsnorm, log-softmax and their backward are 2-3 passes and write
 * only their outputs. A final pass computes and writes the row's outputs.
 * Kernels are rendered to text first, then named by a hash of that text: identical
 * kernels become one function. The groups are the plan's own fusion (pl->fusion, what
 * the plan file's KERN section carries), never fused again here, so the GPU code and
 * the kernels a backend reads from the plan are one partition; the kernel list keeps
 * its numbering, an order the kernels can run in. */
#include <stdio.h>
#include <stdlib.h>

#include "gpu/cuda_attention.h"
#include "gpu/cuda_int.h"
#include "pml/hash.h"

static void text_append(cg *c, const cg_text *src)
{
    pmlc_loc keep = c->loc;
    size_t at = 0;
    for (int l = 0; l < src->lines.n; l++) {
        const char *nl = memchr(src->s + at, '\n', src->len - at);
        c->loc = src->lines.v[l];
        cg_emit(c, "%.*s\n", (int)(nl - (src->s + at)), src->s + at);
        at = (size_t)(nl - src->s) + 1;
    }
    c->loc = keep;
}

static void text_free(cg_text *t)
{
    free(t->s);
    memset(t, 0, sizeof *t);
}

/* The index type: 32 bits when every tensor the kernel touches is small enough. */
static const char *index_type(const cg *c, const int32_t *nodes, int n)
{
    for (int i = 0; i < n; i++) {
        const ir_node *x = &c->g->nodes.v[nodes[i]];
        if (c->numel[nodes[i]] >= INT32_MAX) return "long long";
        for (int k = 0; k < x->n_in; k++)
            if (c->numel[x->in[k]] >= INT32_MAX) return "long long";
    }
    return "int";
}

static void store(cg *c, int32_t n, const char *idx)
{
    const ir_node *x = &c->g->nodes.v[n];
    int a = cg_arg(c, n, 1);
    const char *v = cg_to_mem(c, x->dtype, pmlc_arena_printf(&c->P->arena, "v%d", cg_v(c, n)));
    if (c->vec)
        cg_emit(c, "      ((%s *)&w%d)[u] = %s;\n", cg_mtype(x->dtype), a, v);
    else
        cg_emit(c, "    a%d[%s] = %s;\n", a, idx, v);
}

static void compute(cg *c, int32_t n, const char *idx, const char *indent)
{
    const ir_node *x = &c->g->nodes.v[n];
    c->loc = x->loc;
    const char *e = cg_node_expr(c, n, idx);
    cg_emit(c, "%s%s v%d = %s;\n", indent, cg_ctype(x->dtype), cg_v(c, n), e);
}

static int vector_bytes(int elems, pmlc_dtype t) { return elems * pmlc_dtype_bytes(t); }

static const char *vector_type(int bytes)
{
    return bytes == 16 ? "uint4" : bytes == 8 ? "uint2" : bytes == 4 ? "unsigned" : "unsigned short";
}

/* Returns the elements each thread of the vector path takes. */
static int elementwise(cg *c, const int32_t *nodes, int n_nodes)
{
    int64_t N = c->numel[nodes[0]];
    int widest = 1;
    for (int i = 0; i < n_nodes; i++) {
        const ir_node *x = &c->g->nodes.v[nodes[i]];
        if (pmlc_dtype_bytes(x->dtype) > widest) widest = pmlc_dtype_bytes(x->dtype);
        for (int k = 0; k < x->n_in; k++)
            if (pmlc_dtype_bytes(c->g->nodes.v[x->in[k]].dtype) > widest)
                widest = pmlc_dtype_bytes(c->g->nodes.v[x->in[k]].dtype);
    }
    int V = 16 / widest;
    int64_t chunks = N / V;
    cg_emit(c, "  typedef %s pml_ix;\n", index_type(c, nodes, n_nodes));
    cg_emit(c, "  const pml_ix stride = (pml_ix)gridDim.x * blockDim.x, tid = (pml_ix)blockIdx.x * blockDim.x + "
               "threadIdx.x;\n");
    if (chunks > 0) {
        /* The vector path: render the per-element body first, to learn which operands
         * are read whole (they are loaded before it as vectors). */
        cg_text body = {0}, *outer = c->t;
        c->t = &body;
        c->vec = V;
        c->vloaded = pmlc_arena_alloc(&c->P->arena, 8 + (size_t)n_nodes * (PMLC_GRAPH_MAX_IN + 2));
        for (int i = 0; i < n_nodes; i++) {
            compute(c, nodes[i], "i", "      ");
            if (c->fu->materialized[nodes[i]]) store(c, nodes[i], "i");
        }
        c->vec = 0;
        c->t = outer;
        c->loc = PMLC_NOLOC;
        cg_emit(c, "  for (pml_ix c0 = tid; c0 < %lld; c0 += stride) {\n", (long long)chunks);
        cg_emit(c, "    const pml_ix i0 = c0 * %d;\n", V);
        for (int a = 0; a < c->args.n; a++) {
            pmlc_dtype t = c->g->nodes.v[c->args.v[a].node].dtype;
            const char *vt = vector_type(vector_bytes(V, t));
            if (c->args.v[a].out)
                cg_emit(c, "    %s w%d;\n", vt, a);
            else if (c->vloaded[a])
                cg_emit(c, "    const %s r%d = *(const %s *)(a%d + i0);\n", vt, a, vt, a);
        }
        cg_emit(c, "#pragma unroll\n    for (int u = 0; u < %d; u++) {\n      const pml_ix i = i0 + u;\n", V);
        text_append(c, &body);
        text_free(&body);
        cg_emit(c, "    }\n");
        for (int a = 0; a < c->args.n; a++)
            if (c->args.v[a].out) {
                const char *vt = vector_type(vector_bytes(V, c->g->nodes.v[c->args.v[a].node].dtype));
                cg_emit(c, "    *(%s *)(a%d + i0) = w%d;\n", vt, a, a);
            }
        cg_emit(c, "  }\n");
    }
    if (N % V) {
        cg_emit(c, "  for (pml_ix i = %lld + tid; i < %lld; i += stride) {\n", (long long)(chunks * V), (long long)N);
        for (int i = 0; i < n_nodes; i++) {
            compute(c, nodes[i], "i", "    ");
            if (c->fu->materialized[nodes[i]]) store(c, nodes[i], "i");
        }
        c->loc = PMLC_NOLOC;
        cg_emit(c, "  }\n");
    }
    return V;
}

/* Row kernels: which nodes hold one value per row (reductions, and what is computed
 * from them alone) rather than one per element. */
static int per_row(const cg *c, int32_t n, int64_t rows, int64_t width)
{
    return pmlc_ops[c->g->nodes.v[n].op].cls == PMLC_OPC_REDUCE || (c->numel[n] == rows && width != 1);
}

/* Emits, in order, the per-element nodes of the group that `targets` need. */
static void row_elements(cg *c, const int32_t *nodes, int n_nodes, uint8_t *need, int64_t rows, int64_t width)
{
    for (int i = n_nodes - 1; i >= 0; i--) { /* reverse order: a node's readers come after it */
        int32_t n = nodes[i];
        if (!need[i]) continue;
        const ir_node *x = &c->g->nodes.v[n];
        for (int k = 0; k < x->n_in; k++)
            for (int j = 0; j < i; j++)
                if (nodes[j] == x->in[k] && !per_row(c, nodes[j], rows, width)) need[j] = 1;
    }
    for (int i = 0; i < n_nodes; i++)
        if (need[i]) compute(c, nodes[i], "i", "      ");
}

static void row_kernel(cg *c, const int32_t *nodes, int n_nodes, int64_t rows, int64_t width, uint32_t *block)
{
    int team = width > 1024 ? 256 : 32, rpb = team == 32 ? 4 : 1;
    *block = (uint32_t)(team * rpb);
    uint8_t *need = pmlc_arena_alloc(&c->P->arena, (size_t)n_nodes);
    cg_emit(c, "  typedef %s pml_ix;\n", index_type(c, nodes, n_nodes));
    if (team > 32) cg_emit(c, "  __shared__ float pml_sh[%d];\n", team / 32);
    cg_emit(c, "  const pml_ix lane = threadIdx.x %% %d;\n", team);
    cg_emit(c, "  for (pml_ix row = (pml_ix)blockIdx.x * %d + threadIdx.x / %d; row < %lld; row += (pml_ix)gridDim.x * "
               "%d) {\n",
            rpb, team, (long long)rows, rpb);
    for (int i = 0; i < n_nodes; i++) {
        int32_t n = nodes[i];
        const ir_node *x = &c->g->nodes.v[n];
        if (!per_row(c, n, rows, width)) continue;
        c->loc = x->loc;
        if (pmlc_ops[x->op].cls != PMLC_OPC_REDUCE) {
            compute(c, n, "row", "    ");
        } else {
            int is_max = x->op == OP_MAX;
            int v = cg_v(c, n);
            cg_emit(c, "    float v%d;\n    {\n      float acc = %s;\n", v, is_max ? "-__int_as_float(0x7f800000)" : "0.0f");
            cg_emit(c, "      for (pml_ix j = lane; j < %lld; j += %d) {\n      const pml_ix i = row * %lld + j;\n",
                    (long long)width, team, (long long)width);
            memset(need, 0, (size_t)n_nodes);
            for (int j = 0; j < i; j++)
                if (nodes[j] == x->in[0]) need[j] = 1;
            row_elements(c, nodes, n_nodes, need, rows, width);
            c->loc = x->loc;
            const char *in = cg_value_at(c, x->in[0], "i"); /* x is [rows, width]: element i */
            cg_emit(c, is_max ? "      acc = pml_maxn(acc, %s);\n" : "      acc += %s;\n", in);
            cg_emit(c, "      }\n");
            if (team == 32)
                cg_emit(c, "      v%d = pml_warp_%s(acc);\n", v, is_max ? "max" : "sum");
            else
                cg_emit(c, "      v%d = pml_block_%s(acc, pml_sh);\n", v, is_max ? "max" : "sum");
            if (x->op == OP_MEAN) cg_emit(c, "      v%d = v%d / %lld.0f;\n", v, v, (long long)width);
            cg_emit(c, "    }\n");
        }
        if (c->fu->materialized[n]) {
            int a = cg_arg(c, n, 1);
            cg_emit(c, "    if (lane == 0) a%d[row] = %s;\n", a,
                    cg_to_mem(c, x->dtype, pmlc_arena_printf(&c->P->arena, "v%d", cg_v(c, n))));
        }
    }
    memset(need, 0, (size_t)n_nodes);
    int outputs = 0;
    for (int i = 0; i < n_nodes; i++)
        if (c->fu->materialized[nodes[i]] && !per_row(c, nodes[i], rows, width)) need[i] = 1, outputs++;
    if (outputs) {
        c->loc = PMLC_NOLOC;
        cg_emit(c, "    for (pml_ix j = lane; j < %lld; j += %d) {\n      const pml_ix i = row * %lld + j;\n",
                (long long)width, team, (long long)width);
        uint8_t *out = pmlc_arena_alloc(&c->P->arena, (size_t)n_nodes);
        memcpy(out, need, (size_t)n_nodes);
        row_elements(c, nodes, n_nodes, need, rows, width);
        for (int i = 0; i < n_nodes; i++)
            if (out[i]) {
                c->loc = c->g->nodes.v[nodes[i]].loc;
                cg_emit(c, "  ");
                store(c, nodes[i], "i");
            }
        cg_emit(c, "    }\n");
    }
    c->loc = PMLC_NOLOC;
    cg_emit(c, "  }\n");
}

/* Rows and width of a row group: from its first reduction's input. */
static void row_space(const cg *c, const int32_t *nodes, int n_nodes, int64_t *rows, int64_t *width)
{
    for (int i = 0; i < n_nodes; i++) {
        const ir_node *x = &c->g->nodes.v[nodes[i]];
        if (pmlc_ops[x->op].cls != PMLC_OPC_REDUCE) continue;
        const pmlc_cshape *s = &c->shape[x->in[0]];
        *width = s->rank ? s->d[s->rank - 1] : 1;
        *rows = *width ? c->numel[x->in[0]] / *width : 0;
        return;
    }
    *rows = c->numel[nodes[0]], *width = 1;
}

/* The parameter list, then the body: the kernel's full code, its function named FUNC. */
static cg_text finish(cg *c, const cg_text *body)
{
    cg_text code = {0}, *keep = c->t;
    c->t = &code;
    c->loc = PMLC_NOLOC;
    cg_emit(c, "extern \"C\" __global__ void __launch_bounds__(256) FUNC(");
    for (int a = 0; a < c->args.n; a++) {
        pmlc_dtype t = c->g->nodes.v[c->args.v[a].node].dtype;
        cg_emit(c, "%s%s%s *__restrict__ a%d", a ? ", " : "", c->args.v[a].out ? "" : "const ", cg_mtype(t), a);
    }
    if (c->uses_seed) cg_emit(c, "%sunsigned long long seed", c->args.n ? ", " : "");
    if (c->checks_index) cg_emit(c, "%sunsigned int *err", c->args.n || c->uses_seed ? ", " : "");
    cg_emit(c, ") {\n");
    text_append(c, body);
    c->loc = PMLC_NOLOC;
    cg_emit(c, "}\n");
    c->t = keep;
    return code;
}

/* Renders group `gp` (nodes in order) into *code and fills k; returns 0 for a kernel
 * without outputs (nothing to run). */
static int render_group(cg *c, int gp, const int32_t *nodes, int n_nodes, pmlc_cuda_kernel *k, cg_text *code)
{
    memset(&c->args, 0, sizeof c->args);
    c->group = gp;
    for (int i = 0; i < n_nodes; i++) c->local[nodes[i]] = i;
    c->uses_seed = c->checks_index = c->zero_output = 0;
    cg_text body = {0};
    c->t = &body;
    k->block = 256;
    if (c->fu->kind[gp] == PMLC_KERNEL_ELEMWISE) {
        int V = elementwise(c, nodes, n_nodes);
        k->work = (c->numel[nodes[0]] + V - 1) / V;
    } else if (c->fu->kind[gp] == PMLC_KERNEL_ROW) {
        int64_t rows, width;
        row_space(c, nodes, n_nodes, &rows, &width);
        row_kernel(c, nodes, n_nodes, rows, width, &k->block);
        k->work = rows * (k->block == 128 ? 32 : 256);
    } else {
        k->work = cg_single(c, nodes[0]);
    }
    int has_out = 0;
    for (int a = 0; a < c->args.n; a++) has_out |= c->args.v[a].out;
    if (has_out) *code = finish(c, &body);
    text_free(&body);
    k->n_args = c->args.n;
    k->args = c->args.v;
    k->uses_seed = c->uses_seed;
    k->checks_index = c->checks_index;
    k->zero_output = c->zero_output;
    return has_out;
}

/* Adds the function for `code` (named FUNC in it) unless an identical one exists. */
typedef PMLC_VEC(pmlc_cuda_func) func_vec;
typedef PMLC_VEC(const char *) code_vec; /* per function: its code with the placeholder name */

static int add_func(cg *c, func_vec *funcs, code_vec *codes, const cg_text *lines, const int32_t *nodes,
                    int n_nodes)
{
    const char *code = lines->s;
    uint64_t h = pml_fnv1a(PML_FNV1A_SEED, code, lines->len); /* names a function by its code */
    char name[32];
    snprintf(name, sizeof name, "pml_%016llx", (unsigned long long)h);
    for (int f = 0, again = 0; f < funcs->n; f++) {
        if (strcmp(funcs->v[f].name, name)) continue;
        if (!strcmp(codes->v[f], code)) return f;
        /* A different kernel with the same hash: another name, and look again. */
        snprintf(name, sizeof name, "pml_%016llx_%d", (unsigned long long)h, ++again);
        f = -1;
    }
    PMLC_PUSH(&c->P->arena, *codes, pmlc_arena_strdup(&c->P->arena, code));
    cg_text t = {0}, *keep = c->t;
    c->t = &t;
    /* Where its ops come from, for people reading the code. */
    for (int i = 0; i < n_nodes; i++) {
        const ir_node *x = &c->g->nodes.v[nodes[i]];
        c->loc = x->loc;
        if (x->loc.file < 0) continue;
        pmlc_source *src = &c->P->sources.files.v[x->loc.file];
        int line, col;
        pmlc_source_linecol(&c->P->arena, src, x->loc.begin, &line, &col);
        cg_emit(c, "// v%d = %s at %s:%d:%d\n", i, pmlc_ops[x->op].name, src->path, line, col);
    }
    /* The code, its placeholder name replaced. */
    size_t at = 0;
    int l = 0;
    while (at < strlen(code)) {
        const char *nl = strchr(code + at, '\n');
        size_t len = (size_t)(nl - (code + at));
        c->loc = lines->lines.v[l++];
        const char *fn = strstr(code + at, "FUNC");
        if (fn && fn < nl)
            cg_emit(c, "%.*s%s%.*s\n", (int)(fn - (code + at)), code + at, name, (int)(nl - fn - 4), fn + 4);
        else
            cg_emit(c, "%.*s\n", (int)len, code + at);
        at += len + 1;
    }
    c->t = keep;
    pmlc_cuda_func f = {pmlc_arena_strdup(&c->P->arena, name), pmlc_arena_strndup(&c->P->arena, t.s, t.len),
                        t.lines.n, t.lines.v};
    free(t.s);
    PMLC_PUSH(&c->P->arena, *funcs, f);
    return funcs->n - 1;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The seed of the loss's gradient: autodiff's first backward node, when it is the
 * constant 1 on the loss's stage (the node the CPU backend scales: runtime/src/plan/
 * plan.h's pml_plan_loss_seed, on the plan this graph becomes), or -1. */
static int32_t loss_seed(const pmlc_graph *g)
{
    for (int32_t i = 0; i < g->nodes.n; i++) {
        const ir_node *x = &g->nodes.v[i];
        if (x->pass == PMLC_PASS_FORWARD) continue;
        return x->op == OP_CONST && x->fval == 1 && g->loss >= 0 && x->stage == g->nodes.v[g->loss].stage ? i : -1;
    }
    return -1;
}

int pmlc_cuda_codegen(pmlc_program *P, const pmlc_plan *pl, pmlc_cuda_module *out)
{
    memset(out, 0, sizeof *out);
    const pmlc_graph *g = pl->g;
    const pmlc_fusion *fu = &pl->fusion; /* the kernels the plan file's KERN section carries */
    int N = g->nodes.n;
    cg c;
    memset(&c, 0, sizeof c);
    c.P = P, c.g = g, c.fu = fu;
    /* bf16 and f16 (ir/precision.h): kernels read and write 16-bit storage and compute in
     * f32, the products run on cuBLAS's 16-bit tensor-core paths; f16's loss scale is the
     * prelude's pml_loss_scale, which the seed of the loss's gradient reads. */
    c.loss_seed = loss_seed(g);
    c.shape = pmlc_arena_alloc(&P->arena, sizeof(pmlc_cshape) * (size_t)(N ? N : 1));
    c.numel = pmlc_arena_alloc(&P->arena, sizeof(int64_t) * (size_t)(N ? N : 1));
    c.local = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)(N ? N : 1));
    for (int i = 0; i < N; i++) {
        const ir_node *x = &g->nodes.v[i];
        c.shape[i].rank = x->rank;
        c.numel[i] = 1;
        for (int k = 0; k < x->rank; k++) {
            int64_t v = 0;
            if (pmlc_size_eval(x->shape[k], pl->binding, &v) != PMLC_SIZE_OK || v < 0) {
                pmlc_error(&P->diag, x->loc, "the CUDA backend needs every size bound; this one is not");
                return 1;
            }
            c.shape[i].d[k] = v;
            c.numel[i] *= v;
        }
    }
    func_vec funcs = {0};
    code_vec codes = {0};
    pmlc_cuda_func optim = {"pml_optim", pmlc_cuda_optim_src, count_lines(pmlc_cuda_optim_src), NULL};
    optim.line_loc = pmlc_arena_alloc(&P->arena, sizeof(pmlc_loc) * (size_t)optim.n_lines);
    for (int l = 0; l < optim.n_lines; l++) optim.line_loc[l] = PMLC_NOLOC;
    PMLC_PUSH(&P->arena, funcs, optim);
    PMLC_PUSH(&P->arena, codes, pmlc_cuda_optim_src);
    PMLC_VEC(pmlc_cuda_kernel) kernels = {0};
    int32_t *nodes = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)(N ? N : 1));
    /* Groups are numbered in an order they can run in (fuse.h): kernels keep it. */
    int32_t *first = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)(fu->n_groups ? fu->n_groups : 1));
    for (int gp = 0; gp < fu->n_groups; gp++) first[gp] = -1;
    for (int i = N - 1; i >= 0; i--) first[fu->group[i]] = i;
    int attention = 0;
    for (int gp = 0; gp < fu->n_groups; gp++) {
        int i = first[gp];
        if (i < 0 || fu->kind[gp] == PMLC_KERNEL_NONE) continue; /* sources and views run no code */
        int n_nodes = 0;
        for (int j = i; j < N; j++)
            if (fu->group[j] == gp) nodes[n_nodes++] = j;
        pmlc_cuda_kernel k;
        memset(&k, 0, sizeof k);
        k.group = gp, k.kind = fu->kind[gp], k.stage = g->nodes.v[i].stage, k.pass = g->nodes.v[i].pass;
        k.func = -1, k.node = i;
        if (g->nodes.v[i].op == OP_MATMUL) {
            pmlc_cuda_arg *a = pmlc_arena_alloc(&P->arena, sizeof *a * 3);
            const ir_node *x = &g->nodes.v[i];
            int32_t ab[2] = {x->in[0], x->in[1]};
            for (int s = 0; s < 2; s++) {
                while (g->nodes.v[ab[s]].op == OP_RESHAPE) ab[s] = g->nodes.v[ab[s]].in[0];
                a[s] = (pmlc_cuda_arg){ab[s], 0};
            }
            a[2] = (pmlc_cuda_arg){i, 1};
            k.n_args = 3, k.args = a;
            PMLC_PUSH(&P->arena, kernels, k);
            continue;
        }
        /* An attention op is a group of its own, and attention_grad several launches in a row. */
        int parts = pmlc_ops[g->nodes.v[i].op].cls == PMLC_OPC_ATTENTION ? cg_attention_launches(&c, i) : 1;
        attention |= parts && pmlc_ops[g->nodes.v[i].op].cls == PMLC_OPC_ATTENTION;
        for (c.part = 0; c.part < parts; c.part++) {
            pmlc_cuda_kernel kp = k;
            cg_text code = {0};
            if (!render_group(&c, gp, nodes, n_nodes, &kp, &code)) continue;
            kp.func = add_func(&c, &funcs, &codes, &code, nodes, n_nodes);
            text_free(&code);
            PMLC_PUSH(&P->arena, kernels, kp);
        }
    }
    /* The attention kernels' templates only in programs that instantiate them. */
    out->prelude = attention ? pmlc_arena_printf(&P->arena, "%s%s", pmlc_cuda_prelude, pmlc_cuda_attention_src)
                             : pmlc_cuda_prelude;
    out->prelude_lines = count_lines(out->prelude);
    out->n_funcs = funcs.n, out->funcs = funcs.v;
    out->n_kernels = kernels.n, out->kernels = kernels.v;
    return c.errors;
}
