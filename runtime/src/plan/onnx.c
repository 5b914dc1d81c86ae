/* onnx.c — a plan's model forward as an ONNX ModelProto (onnx.h).
 *
 * Field numbers are onnx.proto's (ONNX 1.14, IR version 8): each message kind has its
 * enum of fields below. Every plan node the output needs becomes one value named
 * after it (`v<index>`, a parameter by its plan name, an input by its input name), made
 * by one or a few ONNX nodes; helper values are `t<k>` and constants `c<k>`. */
#include "plan/onnx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "plan/ops.h"
#include "pml/gelu.h"

enum { ONNX_IR_VERSION = 8, ONNX_OPSET = 17 };

/* onnx.proto's field numbers, per message. */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER = 2, MODEL_PRODUCER_VERSION = 3, MODEL_GRAPH = 7, MODEL_OPSET = 8 };
enum { OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INIT = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP = 4, NODE_ATTR = 5 };
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_S = 4, ATTR_T = 5, ATTR_INTS = 8, ATTR_TYPE = 20 };
enum { ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_STRING = 3, ATTR_TYPE_TENSOR = 4, ATTR_TYPE_INTS = 7 };
enum { TENSOR_DIMS = 1, TENSOR_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW = 9 };
enum { VALUE_NAME = 1, VALUE_TYPE = 2, TYPE_TENSOR = 1, TT_ELEM = 1, TT_SHAPE = 2, SHAPE_DIM = 1, DIM_VALUE = 1 };
/* TensorProto.DataType */
enum { DT_FLOAT = 1, DT_INT8 = 3, DT_INT32 = 6, DT_INT64 = 7, DT_BOOL = 9, DT_FLOAT16 = 10, DT_BFLOAT16 = 16 };

/* Protobuf's hard limit on one message. */
#define ONNX_MAX_BYTES ((size_t)INT32_MAX)

typedef struct onnx_writer {
    const pml_plan *plan;
    pml_pb graph, node, scratch; /* node: the NodeProto being written */
    char **name;                 /* per plan node, its value's name (NULL: not needed) */
    int tmp;                     /* helper values made */
    const int8_t *const *q8;     /* per parameter: its int8 values, or NULL (f32) */
    const float *const *q8s;     /* and its per-output-channel scales */
    const float *q8a;            /* per parameter: its static activation scale, 0 (or q8a NULL): dynamic */
    pml_err *err;
} onnx_writer;

static int onnx_type(uint8_t dtype)
{
    switch ((pml_dtype)dtype) {
    case PML_F32: return DT_FLOAT;
    case PML_BF16: return DT_BFLOAT16;
    case PML_F16: return DT_FLOAT16;
    case PML_I32: return DT_INT32;
    default: return 0;
    }
}

/* A fresh helper value's name, in `buf` (cap 24). */
static const char *fresh(onnx_writer *w, char prefix, char buf[24])
{
    snprintf(buf, 24, "%c%d", prefix, w->tmp++);
    return buf;
}

/* ---- nodes ---------------------------------------------------------------------------
 * begin(op, out, inputs...) opens a NodeProto; attr_*() add to it; end() appends it. */
static void begin(onnx_writer *w, const char *op, const char *out, int n_in, const char *const *in)
{
    pml_pb_reset(&w->node);
    for (int k = 0; k < n_in; k++) pml_pb_string(&w->node, NODE_INPUT, in[k]);
    pml_pb_string(&w->node, NODE_OUTPUT, out);
    pml_pb_string(&w->node, NODE_NAME, out);
    pml_pb_string(&w->node, NODE_OP, op);
}

static void end(onnx_writer *w) { pml_pb_message(&w->graph, GRAPH_NODE, &w->node); }

static void attr_int(onnx_writer *w, const char *name, int64_t v)
{
    pml_pb *a = &w->scratch;
    pml_pb_reset(a);
    pml_pb_string(a, ATTR_NAME, name);
    pml_pb_varint(a, ATTR_I, (uint64_t)v);
    pml_pb_varint(a, ATTR_TYPE, ATTR_TYPE_INT);
    pml_pb_message(&w->node, NODE_ATTR, a);
}

static void attr_ints(onnx_writer *w, const char *name, const int64_t *v, int n)
{
    pml_pb *a = &w->scratch;
    pml_pb_reset(a);
    pml_pb_string(a, ATTR_NAME, name);
    for (int k = 0; k < n; k++) pml_pb_varint(a, ATTR_INTS, (uint64_t)v[k]);
    pml_pb_varint(a, ATTR_TYPE, ATTR_TYPE_INTS);
    pml_pb_message(&w->node, NODE_ATTR, a);
}

static void attr_string(onnx_writer *w, const char *name, const char *s)
{
    pml_pb *a = &w->scratch;
    pml_pb_reset(a);
    pml_pb_string(a, ATTR_NAME, name);
    pml_pb_string(a, ATTR_S, s);
    pml_pb_varint(a, ATTR_TYPE, ATTR_TYPE_STRING);
    pml_pb_message(&w->node, NODE_ATTR, a);
}

/* A TensorProto into `t` (reset first). */
static void tensor(pml_pb *t, const char *name, int type, const int64_t *dims, int rank, const void *raw, size_t bytes)
{
    pml_pb_reset(t);
    for (int k = 0; k < rank; k++) pml_pb_varint(t, TENSOR_DIMS, (uint64_t)dims[k]);
    pml_pb_varint(t, TENSOR_TYPE, (uint64_t)type);
    if (name) pml_pb_string(t, TENSOR_NAME, name);
    pml_pb_bytes(t, TENSOR_RAW, raw, bytes);
}

/* ConstantOfShape's `value`: a one-element tensor. */
static void attr_value(onnx_writer *w, int type, const void *raw, size_t bytes)
{
    pml_pb t = {0};
    int64_t one = 1;
    tensor(&t, NULL, type, &one, 1, raw, bytes);
    pml_pb *a = &w->scratch;
    pml_pb_reset(a);
    pml_pb_string(a, ATTR_NAME, "value");
    pml_pb_message(a, ATTR_T, &t);
    pml_pb_varint(a, ATTR_TYPE, ATTR_TYPE_TENSOR);
    pml_pb_message(&w->node, NODE_ATTR, a);
    pml_pb_free(&t);
}

static void unary(onnx_writer *w, const char *op, const char *out, const char *x)
{
    begin(w, op, out, 1, &x);
    end(w);
}

static void binary(onnx_writer *w, const char *op, const char *out, const char *a, const char *b)
{
    const char *in[2] = {a, b};
    begin(w, op, out, 2, in);
    end(w);
}

static void cast(onnx_writer *w, const char *out, const char *x, int to)
{
    begin(w, "Cast", out, 1, &x);
    attr_int(w, "to", to);
    end(w);
}

/* ---- initializers -------------------------------------------------------------------- */
static void initializer(onnx_writer *w, const char *name, int type, const int64_t *dims, int rank, const void *raw,
                        size_t bytes)
{
    tensor(&w->scratch, name, type, dims, rank, raw, bytes);
    pml_pb_message(&w->graph, GRAPH_INIT, &w->scratch);
}

/* An int64 vector constant (shapes, axes, slice bounds); its name in `buf`. */
static const char *i64s(onnx_writer *w, const int64_t *v, int n, char buf[24])
{
    int64_t len = n;
    unsigned char raw[8 * PML_PLAN_MAX_RANK * 2];
    for (int k = 0; k < n; k++)
        for (int b = 0; b < 8; b++) raw[8 * k + b] = (unsigned char)((uint64_t)v[k] >> (8 * b));
    initializer(w, fresh(w, 'c', buf), DT_INT64, &len, 1, raw, 8 * (size_t)n);
    return buf;
}

static const char *dims_of(onnx_writer *w, const pml_plan_node *n, char buf[24]) { return i64s(w, n->dims, n->rank, buf); }

static void put_f32(unsigned char *raw, float f)
{
    uint32_t u = pml_f32_bits(f);
    for (int b = 0; b < 4; b++) raw[b] = (unsigned char)(u >> (8 * b));
}

static void put_i32(unsigned char *raw, int32_t v)
{
    for (int b = 0; b < 4; b++) raw[b] = (unsigned char)((uint32_t)v >> (8 * b));
}


/* `v` in dtype `dt` as a scalar (rank 0) or, with `shape`, filled to a plan node's
 * shape, into the value `out`. 16-bit types are an f32 constant cast. */
static void constant(onnx_writer *w, const char *out, uint8_t dt, double v, const pml_plan_node *shape)
{
    unsigned char raw[4];
    int i32 = dt == PML_I32, type = i32 ? DT_INT32 : DT_FLOAT, narrow = !i32 && dt != PML_F32;
    if (i32)
        put_i32(raw, pml_i32_of(v));
    else
        put_f32(raw, (float)v);
    char mid[24], sh[24];
    const char *to = narrow ? fresh(w, 't', mid) : out;
    if (shape && shape->rank > 0) {
        const char *s = dims_of(w, shape, sh);
        begin(w, "ConstantOfShape", to, 1, &s);
        attr_value(w, type, raw, 4);
        end(w);
    } else {
        initializer(w, to, type, NULL, 0, raw, 4);
    }
    if (narrow) cast(w, out, to, onnx_type(dt));
}

/* ---- ops ------------------------------------------------------------------------------ */
static const char *unary_op(uint16_t op)
{
    switch ((pml_opcode)op) {
    case PML_OP_NEG: return "Neg";
    case PML_OP_EXP: return "Exp";
    case PML_OP_LOG: return "Log";
    case PML_OP_SQRT: return "Sqrt";
    case PML_OP_TANH: return "Tanh";
    case PML_OP_SIGMOID: return "Sigmoid";
    case PML_OP_RELU: return "Relu";
    case PML_OP_ERF: return "Erf";
    case PML_OP_RECIP: return "Reciprocal";
    case PML_OP_ABS: return "Abs";
    case PML_OP_ADD: return "Add";
    case PML_OP_SUB: return "Sub";
    case PML_OP_MUL: return "Mul";
    case PML_OP_DIV: return "Div";
    case PML_OP_MAXIMUM: return "Max";
    case PML_OP_MINIMUM: return "Min";
    case PML_OP_POW: return "Pow";
    case PML_OP_LT: return "Less";
    case PML_OP_LE: return "LessOrEqual";
    case PML_OP_GT: return "Greater";
    case PML_OP_GE: return "GreaterOrEqual";
    case PML_OP_EQ:
    case PML_OP_NE: return "Equal";
    default: return NULL;
    }
}

/* A reduction down to the node's shape: over `axes` (none: every axis) with the axes
 * kept, then reshaped, which covers keepdim both ways and sum_to's leading axes. */
static void reduce(onnx_writer *w, const char *op, int i, const char *x, const int64_t *axes, int n_axes)
{
    const pml_plan_node *n = &w->plan->nodes[i];
    char t[24], c[24], s[24];
    const char *mid = fresh(w, 't', t);
    if (!strcmp(op, "ReduceSum")) {
        const char *in[2] = {x, n_axes ? i64s(w, axes, n_axes, c) : ""};
        begin(w, op, mid, n_axes ? 2 : 1, in);
    } else {
        begin(w, op, mid, 1, &x);
        if (n_axes) attr_ints(w, "axes", axes, n_axes);
    }
    attr_int(w, "keepdims", 1);
    end(w);
    binary(w, "Reshape", w->name[i], mid, dims_of(w, n, s));
}

/* idx with a last axis of 1 (GatherElements', ScatterElements' and ScatterND's index form). */
static const char *unsqueeze_last(onnx_writer *w, const char *x, char buf[24])
{
    char c[24];
    int64_t last = -1;
    binary(w, "Unsqueeze", fresh(w, 't', buf), x, i64s(w, &last, 1, c));
    return buf;
}

static pml_status refuse(onnx_writer *w, int i, const char *why)
{
    const pml_plan_node *n = &w->plan->nodes[i];
    return pml_err_set(w->err, PML_ERR_UNSUPPORTED, "op '%s' (node %d%s%s%s) has no ONNX form%s%s",
                       pml_op_name((pml_opcode)n->op), i, n->label ? ", the value '" : "", n->label ? n->label : "",
                       n->label ? "'" : "", why ? ": " : "", why ? why : "");
}

/* x with fill above the diagonal of its last two axes [rows, cols]: row r keeps columns
 * 0..r (the CPU kernel's rule), as a Where over a constant mask. */
static pml_status causal_mask(onnx_writer *w, const char *out, const char *x, int64_t rows, int64_t cols, uint8_t dtype,
                              double fill)
{
    char c1[24], c2[24];
    int64_t md[2] = {rows, cols};
    unsigned char *mask = malloc((size_t)(rows * cols) + 1);
    if (!mask) return pml_err_set(w->err, PML_ERR_NOMEM, "out of memory");
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) mask[r * cols + c] = c > r;
    initializer(w, fresh(w, 'c', c1), DT_BOOL, md, 2, mask, (size_t)(rows * cols));
    free(mask);
    constant(w, fresh(w, 'c', c2), dtype, fill, NULL);
    const char *in[3] = {c1, c2, x};
    begin(w, "Where", out, 3, in);
    end(w);
    return PML_OK;
}

/* ---- int8 weights ---------------------------------------------------------------------
 * A linear layer's int8 weight W [out, in] (quant/int8.h) is read by one transpose whose
 * readers are forward f32 matmuls x @ transpose(W); each of those becomes the CPU
 * backend's int8 product (cpu/gemm_int8.h's pml_cpu_linear_i8), op for op in f32:
 *   mx = ReduceMax(|x|, last axis); inv = mx > 0 ? 127 / mx : 0; s = mx > 0 ? mx / 127 : 0
 *   xq = int8(Clip(Round(x * inv), -127, 127))       (Round: ties to even, as nearbyintf)
 *   y = (float(MatMulInteger(xq, transpose(Wq))) * s) * scale[j]
 * and the bias add after it is the plan's own Add, as the kernel's epilogue adds it.
 * The divisors are where(mx > 0, mx, 1) so that no inf is ever made. A weight with a
 * static activation scale a (a calibrated file) has an initializer <name>.input_scale
 * [1] instead of the row maxima: inv = 1 / a (Div, as the kernel's 1.0f / a) and s = a. */

/* The parameter index of node i when it is an int8 weight, else -1. */
static int int8_param(const onnx_writer *w, int i)
{
    const pml_plan *pl = w->plan;
    if (!w->q8 || pl->nodes[i].op != PML_OP_PARAM) return -1;
    for (int q = 0; q < pl->n_params; q++)
        if (pl->params[q].node == i) return w->q8[q] ? q : -1;
    return -1;
}

/* Node i: a 2-D transpose of an int8 weight (its parameter index), else -1. */
static int int8_transpose(const onnx_writer *w, int i)
{
    const pml_plan_node *n = &w->plan->nodes[i];
    if (n->op != PML_OP_PERMUTE || n->rank != 2 || n->n_in != 1 || n->n_attr != 2 || n->attr[0] != 1 || n->attr[1] != 0)
        return -1;
    return int8_param(w, n->in[0]);
}

/* Every reader the output needs of an int8 weight is that pattern, else refused naming it. */
static pml_status int8_readers(onnx_writer *w, const unsigned char *need)
{
    const pml_plan *pl = w->plan;
    for (int i = 0; i <= pl->output; i++) {
        if (!need[i]) continue;
        const pml_plan_node *n = &pl->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            int q = int8_param(w, n->in[k]), t = int8_transpose(w, n->in[k]);
            const char *why = NULL;
            if (q >= 0 && int8_transpose(w, i) < 0)
                why = "it is read other than transposed";
            else if (q >= 0 && pl->nodes[n->in[k]].dtype != PML_F32)
                why = "it is stored in 16 bits";
            else if (t >= 0 && (n->op != PML_OP_MATMUL || k != 1 || n->n_in != 2 || n->pass != 0))
                why = "its transpose is read by something other than a matmul's right operand";
            else if (t >= 0 && (n->dtype != PML_F32 || pl->nodes[n->in[0]].dtype != PML_F32))
                why = "its matmul is not an f32 one";
            if (why)
                return pml_err_set(w->err, PML_ERR_UNSUPPORTED,
                                   "int8 weight '%s' has no ONNX form: %s (node %d, op '%s'), and only a linear "
                                   "layer's x @ transpose(W) exports as int8 products",
                                   pl->params[q >= 0 ? q : t].name, why, i, pml_op_name((pml_opcode)n->op));
        }
    }
    return PML_OK;
}

/* Node i, a matmul x @ transpose(W) with W parameter q int8: the sequence above. */
static void int8_matmul(onnx_writer *w, int i, int q)
{
    const pml_plan_node *n = &w->plan->nodes[i];
    const char *x = w->name[n->in[0]], *wt = w->name[n->in[1]];
    char mx[24], pos[24], d[24], inv[24], s[24], t[6][24], c0[24], c1[24], c127[24], cm[24], scale[1100];
    int64_t last = -1;
    snprintf(scale, sizeof scale, "%s.scale", w->plan->params[q].name);
    constant(w, fresh(w, 'c', c1), PML_F32, 1, NULL);
    constant(w, fresh(w, 'c', c127), PML_F32, 127, NULL);
    constant(w, fresh(w, 'c', cm), PML_F32, -127, NULL);
    if (w->q8a && w->q8a[q] > 0) { /* static: the file's scale */
        char a[1100];
        snprintf(a, sizeof a, "%s%s", w->plan->params[q].name, ".input_scale");
        binary(w, "Div", fresh(w, 't', inv), c1, a);
        unary(w, "Identity", fresh(w, 't', s), a);
    } else {
        constant(w, fresh(w, 'c', c0), PML_F32, 0, NULL);
        unary(w, "Abs", fresh(w, 't', t[0]), x);
        begin(w, "ReduceMax", fresh(w, 't', mx), 1, (const char *[]){t[0]});
        attr_ints(w, "axes", &last, 1);
        attr_int(w, "keepdims", 1);
        end(w);
        binary(w, "Greater", fresh(w, 't', pos), mx, c0);
        begin(w, "Where", fresh(w, 't', d), 3, (const char *[]){pos, mx, c1});
        end(w);
        binary(w, "Div", fresh(w, 't', t[1]), c127, d);
        begin(w, "Where", fresh(w, 't', inv), 3, (const char *[]){pos, t[1], c0});
        end(w);
        binary(w, "Div", fresh(w, 't', t[2]), d, c127);
        begin(w, "Where", fresh(w, 't', s), 3, (const char *[]){pos, t[2], c0});
        end(w);
    }
    binary(w, "Mul", fresh(w, 't', t[3]), x, inv);
    unary(w, "Round", fresh(w, 't', t[4]), t[3]);
    begin(w, "Clip", fresh(w, 't', t[5]), 3, (const char *[]){t[4], cm, c127});
    end(w);
    cast(w, fresh(w, 't', t[0]), t[5], DT_INT8);
    binary(w, "MatMulInteger", fresh(w, 't', t[1]), t[0], wt);
    cast(w, fresh(w, 't', t[2]), t[1], DT_FLOAT);
    binary(w, "Mul", fresh(w, 't', t[3]), t[2], s);
    binary(w, "Mul", w->name[i], t[3], scale);
}

/* The ONNX nodes that make plan node i's value. */
/* out = softmax(q kᵀ · scale, causal mask) v over the last two axes of rank-`rank`
 * tensors, T rows each (opset 17 has no Attention). */
static pml_status attention(onnx_writer *w, const char *out, const char *q, const char *k, const char *v, int rank,
                            int64_t T, uint8_t dtype, double scale, int causal)
{
    char t1[24], t2[24], t3[24], c1[24];
    int64_t perm[PML_PLAN_MAX_RANK];
    for (int x = 0; x < rank; x++) perm[x] = x;
    perm[rank - 2] = rank - 1, perm[rank - 1] = rank - 2;
    begin(w, "Transpose", fresh(w, 't', t1), 1, &k);
    attr_ints(w, "perm", perm, rank);
    end(w);
    binary(w, "MatMul", fresh(w, 't', t2), q, t1);
    constant(w, fresh(w, 'c', c1), dtype, scale, NULL);
    binary(w, "Mul", fresh(w, 't', t3), t2, c1);
    const char *s = t3;
    if (causal) {
        pml_status st = causal_mask(w, fresh(w, 't', t1), t3, T, T, dtype, -INFINITY);
        if (st) return st;
        s = t1;
    }
    begin(w, "Softmax", fresh(w, 't', t2), 1, &s);
    attr_int(w, "axis", -1);
    end(w);
    binary(w, "MatMul", out, t2, v);
    return PML_OK;
}

/* attention_qkv node i: x [..., T, 3C] reshaped to [..., T, 3·heads, d], its T and
 * head axes swapped, cut into q, k and v along the heads; attention; the axes swapped
 * back and the heads merged into [..., T, C]. */
static pml_status attention_qkv(onnx_writer *w, int i)
{
    const pml_plan_node *n = &w->plan->nodes[i];
    int r = n->rank;
    if (r + 1 > PML_PLAN_MAX_RANK || n->n_attr < 2 || n->attr[1] < 1) return refuse(w, i, NULL);
    int64_t heads = n->attr[1], C = n->dims[r - 1], T = n->dims[r - 2], dims[PML_PLAN_MAX_RANK + 1];
    int64_t perm[PML_PLAN_MAX_RANK + 1];
    char t1[24], t2[24], t3[24], c1[24], c2[24], c3[24], c4[24], part[3][24];
    memcpy(dims, n->dims, sizeof(int64_t) * (size_t)(r - 1));
    dims[r - 1] = 3 * heads, dims[r] = C / heads;
    for (int x = 0; x <= r; x++) perm[x] = x;
    perm[r - 2] = r - 1, perm[r - 1] = r - 2; /* T and the heads: its own inverse */
    binary(w, "Reshape", fresh(w, 't', t1), w->name[n->in[0]], i64s(w, dims, r + 1, c1));
    begin(w, "Transpose", fresh(w, 't', t2), 1, (const char *[]){t1});
    attr_ints(w, "perm", perm, r + 1);
    end(w);
    int64_t axis = r - 2, one = 1;
    for (int p = 0; p < 3; p++) {
        int64_t start = p * heads, stop = (p + 1) * heads;
        const char *in[5] = {t2, i64s(w, &start, 1, c1), i64s(w, &stop, 1, c2), i64s(w, &axis, 1, c3),
                             i64s(w, &one, 1, c4)};
        begin(w, "Slice", fresh(w, 't', part[p]), 5, in);
        end(w);
    }
    pml_status st =
        attention(w, fresh(w, 't', t3), part[0], part[1], part[2], r + 1, T, n->dtype, n->fval, n->attr[0] != 0);
    if (st) return st;
    begin(w, "Transpose", fresh(w, 't', t1), 1, (const char *[]){t3});
    attr_ints(w, "perm", perm, r + 1);
    end(w);
    binary(w, "Reshape", w->name[i], t1, dims_of(w, n, c1));
    return PML_OK;
}

static pml_status emit(onnx_writer *w, int i)
{
    const pml_plan *pl = w->plan;
    const pml_plan_node *n = &pl->nodes[i];
    const char *out = w->name[i];
    const char *a = n->n_in > 0 ? w->name[n->in[0]] : NULL, *b = n->n_in > 1 ? w->name[n->in[1]] : NULL;
    char t1[24], t2[24], t3[24], c1[24], c2[24], c3[24], c4[24];
    switch ((pml_opcode)n->op) {
    case PML_OP_INPUT:
    case PML_OP_PARAM:
        return PML_OK; /* graph inputs and initializers, written apart */
    case PML_OP_CONST:
        constant(w, out, n->dtype, n->fval, n);
        return PML_OK;
    case PML_OP_ARANGE: {
        unsigned char *raw = malloc((size_t)n->numel * 4 + 1);
        if (!raw) return pml_err_set(w->err, PML_ERR_NOMEM, "out of memory");
        for (int64_t k = 0; k < n->numel; k++)
            if (n->dtype == PML_I32)
                put_i32(raw + 4 * k, (int32_t)k);
            else
                put_f32(raw + 4 * k, (float)k);
        int narrow = n->dtype != PML_I32 && n->dtype != PML_F32;
        initializer(w, narrow ? fresh(w, 't', t1) : out, n->dtype == PML_I32 ? DT_INT32 : DT_FLOAT, n->dims, n->rank,
                    raw, (size_t)n->numel * 4);
        free(raw);
        if (narrow) cast(w, out, t1, onnx_type(n->dtype));
        return PML_OK;
    }
    case PML_OP_RSQRT:
        unary(w, "Sqrt", fresh(w, 't', t1), a);
        unary(w, "Reciprocal", out, t1);
        return PML_OK;
    case PML_OP_NEG:
    case PML_OP_EXP:
    case PML_OP_LOG:
    case PML_OP_SQRT:
    case PML_OP_TANH:
    case PML_OP_SIGMOID:
    case PML_OP_RELU:
    case PML_OP_ERF:
    case PML_OP_RECIP:
    case PML_OP_ABS:
        unary(w, unary_op(n->op), out, a);
        return PML_OK;
    case PML_OP_ADD:
    case PML_OP_SUB:
    case PML_OP_MUL:
    case PML_OP_DIV:
    case PML_OP_MAXIMUM:
    case PML_OP_MINIMUM:
    case PML_OP_POW:
        binary(w, unary_op(n->op), out, a, b);
        return PML_OK;
    case PML_OP_LT:
    case PML_OP_LE:
    case PML_OP_GT:
    case PML_OP_GE:
    case PML_OP_EQ:
    case PML_OP_NE: /* a bool in ONNX, 1 or 0 in the inputs' type in PML */
        binary(w, unary_op(n->op), fresh(w, 't', t1), a, b);
        if (n->op == PML_OP_NE) unary(w, "Not", fresh(w, 't', t2), t1);
        cast(w, out, n->op == PML_OP_NE ? t2 : t1, onnx_type(n->dtype));
        return PML_OK;
    case PML_OP_WHERE: {
        cast(w, fresh(w, 't', t1), a, DT_BOOL); /* nonzero is true */
        const char *in[3] = {t1, b, w->name[n->in[2]]};
        begin(w, "Where", out, 3, in);
        end(w);
        return PML_OK;
    }
    case PML_OP_CAST:
        cast(w, out, a, onnx_type(n->dtype));
        return PML_OK;
    case PML_OP_DROPOUT: /* off in inference */
        unary(w, "Identity", out, a);
        return PML_OK;
    case PML_OP_CAUSAL_MASK:
        return causal_mask(w, out, a, n->dims[n->rank - 2], n->dims[n->rank - 1], n->dtype, n->fval);
    case PML_OP_ATTENTION:
        return attention(w, out, a, b, w->name[n->in[2]], n->rank, n->dims[n->rank - 2], n->dtype, n->fval,
                         n->n_attr >= 1 && n->attr[0]);
    case PML_OP_ATTENTION_QKV:
        return attention_qkv(w, i);
    case PML_OP_SUM:
    case PML_OP_MAX:
    case PML_OP_MEAN: {
        const char *op = n->op == PML_OP_SUM ? "ReduceSum" : n->op == PML_OP_MAX ? "ReduceMax" : "ReduceMean";
        int64_t axis = n->attr[0];
        reduce(w, op, i, a, &axis, axis < 0 ? 0 : 1);
        return PML_OK;
    }
    case PML_OP_SUM_TO: { /* the leading axes, and those the output holds as 1 */
        const pml_plan_node *x = &pl->nodes[n->in[0]];
        int lead = x->rank - n->rank;
        int64_t axes[PML_PLAN_MAX_RANK];
        int na = 0;
        for (int k = 0; k < x->rank; k++)
            if (k < lead || (n->dims[k - lead] == 1 && x->dims[k] != 1)) axes[na++] = k;
        if (na)
            reduce(w, "ReduceSum", i, a, axes, na);
        else
            binary(w, "Reshape", out, a, dims_of(w, n, c1));
        return PML_OK;
    }
    case PML_OP_RESHAPE:
        binary(w, "Reshape", out, a, dims_of(w, n, c1));
        return PML_OK;
    case PML_OP_EXPAND:
        binary(w, "Expand", out, a, dims_of(w, n, c1));
        return PML_OK;
    case PML_OP_PERMUTE:
        begin(w, "Transpose", out, 1, &a);
        attr_ints(w, "perm", n->attr, n->rank);
        end(w);
        return PML_OK;
    case PML_OP_SLICE: { /* element k is start + k step: ONNX's end is one past the last */
        int64_t axis = n->attr[0], start = n->attr[1], step = n->attr[3], m = n->dims[axis];
        int64_t stop = start + (m > 0 ? (m - 1) * step + 1 : 0);
        const char *in[5] = {a, i64s(w, &start, 1, c1), i64s(w, &stop, 1, c2), i64s(w, &axis, 1, c3),
                             i64s(w, &step, 1, c4)};
        begin(w, "Slice", out, 5, in);
        end(w);
        return PML_OK;
    }
    case PML_OP_PAD: {
        const pml_plan_node *x = &pl->nodes[n->in[0]];
        int64_t axis = n->attr[0], start = n->attr[1], step = n->attr[3];
        if (step != 1 && x->dims[axis] > 1) return refuse(w, i, "a pad with a step");
        int64_t pads[2 * PML_PLAN_MAX_RANK] = {0};
        pads[axis] = start;
        pads[n->rank + axis] = n->dims[axis] - start - x->dims[axis];
        binary(w, "Pad", out, a, i64s(w, pads, 2 * n->rank, c1));
        return PML_OK;
    }
    case PML_OP_CONCAT: {
        const char *in[64];
        if (n->n_in > 64) return refuse(w, i, "a concat of more than 64 values");
        for (int k = 0; k < n->n_in; k++) in[k] = w->name[n->in[k]];
        begin(w, "Concat", out, n->n_in, in);
        attr_int(w, "axis", n->attr[0]);
        end(w);
        return PML_OK;
    }
    case PML_OP_GATHER: /* table[N, C] rows at idx[...] */
        begin(w, "Gather", out, 2, (const char *[]){a, b});
        attr_int(w, "axis", 0);
        end(w);
        return PML_OK;
    case PML_OP_PICK: { /* x[..., V] at idx[...] */
        const char *in[2] = {a, unsqueeze_last(w, b, t1)};
        begin(w, "GatherElements", fresh(w, 't', t2), 2, in);
        attr_int(w, "axis", -1);
        end(w);
        binary(w, "Reshape", out, t2, dims_of(w, n, c1));
        return PML_OK;
    }
    case PML_OP_SCATTER_ADD: { /* dy[..., C] added into zeros[N, C] at rows idx[...] */
        constant(w, fresh(w, 't', t1), n->dtype, 0, n);
        cast(w, fresh(w, 't', t3), unsqueeze_last(w, b, t2), DT_INT64);
        const char *in[3] = {t1, t3, a};
        begin(w, "ScatterND", out, 3, in);
        attr_string(w, "reduction", "add");
        end(w);
        return PML_OK;
    }
    case PML_OP_UNPICK: { /* dy[...] into zeros[..., V] at idx[...] */
        constant(w, fresh(w, 't', t1), n->dtype, 0, n);
        const char *in[3] = {t1, unsqueeze_last(w, b, t2), unsqueeze_last(w, a, t3)};
        begin(w, "ScatterElements", out, 3, in);
        attr_int(w, "axis", -1);
        end(w);
        return PML_OK;
    }
    case PML_OP_MATMUL:
        if (n->n_in == 2 && int8_transpose(w, n->in[1]) >= 0)
            int8_matmul(w, i, int8_transpose(w, n->in[1]));
        else
            binary(w, "MatMul", out, a, b);
        return PML_OK;
    case PML_OP_GELU_TANH: { /* as the CPU kernel computes it (cpu/math_f32.h), node for node */
        char v[8][24], k[4][24];
        constant(w, fresh(w, 'c', k[0]), n->dtype, 0.5, NULL);
        constant(w, fresh(w, 'c', k[1]), n->dtype, PML_GELU_C, NULL);
        constant(w, fresh(w, 'c', k[2]), n->dtype, PML_GELU_K, NULL);
        constant(w, fresh(w, 'c', k[3]), n->dtype, 1.0, NULL);
        binary(w, "Mul", fresh(w, 't', v[0]), k[0], a);    /* h = 0.5 x */
        binary(w, "Mul", fresh(w, 't', v[1]), k[1], a);    /* 0.044715 x */
        binary(w, "Mul", fresh(w, 't', v[2]), v[1], a);    /* ... x */
        binary(w, "Mul", fresh(w, 't', v[3]), v[2], a);    /* ... x */
        binary(w, "Add", fresh(w, 't', v[4]), a, v[3]);    /* x + 0.044715 x^3 */
        binary(w, "Mul", fresh(w, 't', v[5]), k[2], v[4]); /* k (...) */
        unary(w, "Tanh", fresh(w, 't', v[6]), v[5]);
        binary(w, "Add", fresh(w, 't', v[7]), k[3], v[6]); /* 1 + tanh(...) */
        binary(w, "Mul", out, v[0], v[7]);
        return PML_OK;
    }
    case PML_OP_XENT:
    case PML_OP_XENT_GRAD:
        return refuse(w, i, "a loss is training's, not the model's");
    case PML_OP_GELU_TANH_GRAD:
    case PML_OP_ATTENTION_GRAD:
    case PML_OP_ATTENTION_QKV_GRAD:
        return refuse(w, i, "a gradient is training's, not the model's");
    case PML_OP_COUNT:
        break;
    }
    return refuse(w, i, NULL);
}

/* A graph input or output: name, element type and the plan's dims. */
static void value_info(onnx_writer *w, int field, const char *name, int type, const pml_plan_node *n)
{
    pml_pb dim = {0}, shape = {0}, tt = {0}, ty = {0}, vi = {0};
    for (int k = 0; k < n->rank; k++) {
        pml_pb_reset(&dim);
        pml_pb_varint(&dim, DIM_VALUE, (uint64_t)n->dims[k]);
        pml_pb_message(&shape, SHAPE_DIM, &dim);
    }
    pml_pb_varint(&tt, TT_ELEM, (uint64_t)type);
    pml_pb_message(&tt, TT_SHAPE, &shape);
    pml_pb_message(&ty, TYPE_TENSOR, &tt);
    pml_pb_string(&vi, VALUE_NAME, name);
    pml_pb_message(&vi, VALUE_TYPE, &ty);
    pml_pb_message(&w->graph, field, &vi);
    if (vi.oom || dim.oom) w->graph.oom = 1;
    pml_pb_free(&dim), pml_pb_free(&shape), pml_pb_free(&tt), pml_pb_free(&ty), pml_pb_free(&vi);
}

/* Marks what the output needs in the forward pass (inputs precede users). */
static unsigned char *needed(const pml_plan *pl)
{
    unsigned char *need = calloc((size_t)pl->n_nodes + 1, 1);
    if (!need) return NULL;
    need[pl->output] = 1;
    for (int i = pl->output; i >= 0; i--)
        if (need[i])
            for (int k = 0; k < pl->nodes[i].n_in; k++) need[pl->nodes[i].in[k]] = 1;
    return need;
}

static pml_status graph(onnx_writer *w, const float *const *params, const unsigned char *need)
{
    const pml_plan *pl = w->plan;
    char buf[24];
    pml_status st8 = int8_readers(w, need);
    if (st8) return st8;
    for (int k = 0; k < pl->n_inputs; k++) {
        int i = pl->input_nodes[k];
        if (!need[i]) continue;
        if (!onnx_type(pl->nodes[i].dtype))
            return pml_err_set(w->err, PML_ERR_UNSUPPORTED, "input '%s' has a type ONNX is not given here",
                               pl->input_names[k]);
        w->name[i] = strdup(pl->input_names[k]);
        value_info(w, GRAPH_INPUT, pl->input_names[k], onnx_type(pl->nodes[i].dtype), &pl->nodes[i]);
    }
    for (int k = 0; k < 2 * pl->n_params; k++) { /* the parameters, then tied weights' copies */
        int q = k % pl->n_params, i = pl->params[q].node, root = pl->params[q].tie;
        const pml_plan_node *n = &pl->nodes[i];
        if (!need[i] || (root >= 0) != (k >= pl->n_params)) continue;
        if (root >= 0 && w->name[pl->params[root].node]) { /* one initializer, the root's, for every stage's reads */
            if (!(w->name[i] = strdup(w->name[pl->params[root].node])))
                return pml_err_set(w->err, PML_ERR_NOMEM, "out of memory");
            continue;
        }
        if (w->q8 && w->q8[q]) { /* int8 [out, in] and its scales [out] */
            char scale[1100];
            snprintf(scale, sizeof scale, "%s.scale", pl->params[q].name);
            if (!(w->name[i] = strdup(pl->params[q].name))) continue;
            initializer(w, w->name[i], DT_INT8, n->dims, 2, w->q8[q], (size_t)n->numel);
            initializer(w, scale, DT_FLOAT, n->dims, 1, w->q8s[q], (size_t)n->dims[0] * 4);
            if (w->q8a && w->q8a[q] > 0) { /* the static activation scale, [1] */
                static const int64_t one = 1;
                snprintf(scale, sizeof scale, "%s.input_scale", pl->params[q].name);
                initializer(w, scale, DT_FLOAT, &one, 1, &w->q8a[q], 4);
            }
            continue;
        }
        if (!params[q])
            return pml_err_set(w->err, PML_ERR_INVALID_ARG, "parameter '%s' has no values", pl->params[q].name);
        /* The stored values are f32 little-endian, as the x86-64 and ARM hosts PML runs on hold them. */
        int narrow = n->dtype != PML_F32;
        w->name[i] = strdup(narrow ? fresh(w, 't', buf) : pl->params[q].name);
        if (w->name[i])
            initializer(w, narrow ? pl->params[q].name : w->name[i], DT_FLOAT, n->dims, n->rank, params[q],
                        (size_t)n->numel * 4);
        if (narrow && w->name[i]) cast(w, w->name[i], pl->params[q].name, onnx_type(n->dtype));
    }
    for (int i = 0; i <= pl->output; i++) {
        if (!need[i] || w->name[i] || pl->nodes[i].op == PML_OP_INPUT || pl->nodes[i].op == PML_OP_PARAM) continue;
        snprintf(buf, sizeof buf, "v%d", i);
        if (!(w->name[i] = strdup(buf))) return pml_err_set(w->err, PML_ERR_NOMEM, "out of memory");
        pml_status st = emit(w, i);
        if (st) return st;
    }
    for (int i = 0; i <= pl->output; i++)
        if (need[i] && !w->name[i]) return pml_err_set(w->err, PML_ERR_NOMEM, "out of memory");
    /* The output as pmlc infer gives it: f32, or i32. */
    const pml_plan_node *o = &pl->nodes[pl->output];
    int otype = o->dtype == PML_I32 ? DT_INT32 : DT_FLOAT;
    if (otype == onnx_type(o->dtype))
        unary(w, "Identity", "output", w->name[pl->output]);
    else
        cast(w, "output", w->name[pl->output], otype);
    value_info(w, GRAPH_OUTPUT, "output", otype, o);
    pml_pb_string(&w->graph, GRAPH_NAME, "pml");
    return PML_OK;
}

pml_status pml_onnx_model(const pml_plan *plan, const float *const *params, const int8_t *const *q8,
                          const float *const *q8_scale, const float *q8_in_scale, pml_pb *out, pml_err *err)
{
    if (plan->output < 0)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "the plan has no model output to export");
    onnx_writer w = {.plan = plan, .q8 = q8, .q8s = q8_scale, .q8a = q8_in_scale, .err = err};
    unsigned char *need = needed(plan);
    w.name = calloc((size_t)plan->n_nodes + 1, sizeof *w.name);
    pml_status st = need && w.name ? graph(&w, params, need) : pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st) {
        pml_pb opset = {0};
        pml_pb_varint(out, MODEL_IR_VERSION, ONNX_IR_VERSION);
        pml_pb_string(out, MODEL_PRODUCER, "pml");
        pml_pb_string(out, MODEL_PRODUCER_VERSION, pml_version());
        pml_pb_string(&opset, OPSET_DOMAIN, "");
        pml_pb_varint(&opset, OPSET_VERSION, ONNX_OPSET);
        pml_pb_message(out, MODEL_OPSET, &opset);
        pml_pb_message(out, MODEL_GRAPH, &w.graph);
        pml_pb_free(&opset);
        if (out->oom || w.node.oom || w.scratch.oom)
            st = pml_err_set(err, PML_ERR_NOMEM, "out of memory for the ONNX model");
        else if (out->len > ONNX_MAX_BYTES)
            st = pml_err_set(err, PML_ERR_UNSUPPORTED,
                             "the ONNX model would take %zu bytes, past protobuf's 2 GiB limit (ONNX's external data "
                             "form is not written yet)",
                             out->len);
    }
    for (int i = 0; w.name && i < plan->n_nodes; i++) free(w.name[i]);
    free(w.name);
    free(need);
    pml_pb_free(&w.graph), pml_pb_free(&w.node), pml_pb_free(&w.scratch);
    return st;
}
