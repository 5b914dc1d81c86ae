/* ast.h — the syntax tree the parser builds. Nodes live in the session arena.
 *
 * One node type with a kind tag; which fields a kind uses is listed beside it. The
 * parser only builds trees (no checking); everything semantic happens in elab.c. */
#ifndef PMLC_AST_H
#define PMLC_AST_H

#include "front/source.h"

typedef enum ast_kind {
    /* expressions */
    AST_INT,    /* ival */
    AST_FLOAT,  /* fval */
    AST_STRING, /* name = the string's value */
    AST_BOOL,   /* ival */
    AST_NAME,   /* name */
    AST_DEVICE, /* name = "cuda" | "cpu", ival = index */
    AST_UNARY,  /* op ('-' or TOK_NOT), a */
    AST_BINARY, /* op, a, b */
    AST_CALL,   /* name = callee (name_loc), list = args (exprs or AST_KWARG), label? (label_loc) */
    AST_KWARG,  /* name (name_loc), a = value */
    AST_INDEX,  /* a = base, list = items (exprs or AST_SLICE) */
    AST_SLICE,  /* a = start?, b = stop?, c = step? */
    AST_LIST,   /* list = elements */
    AST_TYPE,   /* name = dtype or NULL, list = dims, ival = 1 when dims were written */
    /* statements */
    AST_BLOCK,     /* list = statements */
    AST_ASSIGN,    /* name (name_loc), a */
    AST_EXPR_STMT, /* a */
    AST_RETURN,    /* a? */
    AST_PARAM,     /* name (name_loc), a = AST_TYPE, b = initializer */
    AST_IF,        /* a = cond, b = then block, c = else (AST_BLOCK, AST_IF or NULL) */
    AST_REPEAT,    /* a = count, b = block */
    AST_FOR,       /* name = variable (name_loc), a = iterable or range start, c = range end?, b = block */
    AST_STAGE,     /* a = index, b = block */
    AST_PLACE,     /* a = value */
    AST_ASSERT,    /* a = cond, b = message? */
    AST_FIELD,     /* name = key (name_loc), a = value — in train/distill blocks */
    AST_FREEZE,    /* list = patterns (AST_STRING), a = after-steps?, b = auto call? */
    AST_RECOMPUTE, /* list = patterns (AST_STRING): calls whose forward the backward pass recomputes */
    /* declarations */
    AST_FILE,   /* list = declarations */
    AST_IMPORT, /* name = module (name_loc) */
    AST_CONST,  /* name (name_loc), a */
    AST_FN,     /* name (name_loc), list = AST_FPARAM, b = body */
    AST_FPARAM, /* name (name_loc), a = AST_TYPE?, b = default? */
    AST_MODEL,  /* name (name_loc), list = inputs (AST_FPARAM with type), a = output type, b = body */
    AST_TRAIN,  /* name = model (name_loc), list = AST_FIELD / AST_FREEZE / AST_RECOMPUTE */
    AST_DISTILL /* name = student (name_loc), label = teacher (label_loc), list2 = teacher args, list = fields */
} ast_kind;

typedef struct ast ast;
typedef PMLC_VEC(ast *) ast_list;

struct ast {
    ast_kind kind;
    int op;
    int depth;    /* expression nesting, bounded by the parser */
    pmlc_loc loc; /* the whole construct */
    const char *name;
    pmlc_loc name_loc;
    const char *label;
    pmlc_loc label_loc;
    int64_t ival;
    double fval;
    ast *a, *b, *c;
    ast_list list, list2;
};

/* Deepest expression nesting accepted (bracket nesting has its own limit in the lexer). */
#define PMLC_MAX_EXPR_DEPTH 1000

ast *ast_new(pmlc_arena *ar, ast_kind kind, pmlc_loc loc);
const char *ast_kind_name(ast_kind kind);
/* A short description of what an operator token means, for messages: "+", "@", "and". */
const char *ast_op_text(int op);

#endif
