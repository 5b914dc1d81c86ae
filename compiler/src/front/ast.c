/* ast.c — node construction and names for messages. */
#include "front/ast.h"

#include "pml_parser.h"

ast *ast_new(pmlc_arena *ar, ast_kind kind, pmlc_loc loc)
{
    ast *n = pmlc_arena_alloc(ar, sizeof *n);
    n->kind = kind;
    n->loc = loc;
    n->name_loc = loc;
    n->label_loc = loc;
    n->depth = 1;
    return n;
}

const char *ast_op_text(int op)
{
    switch (op) {
    case TOK_LE:
        return "<=";
    case TOK_GE:
        return ">=";
    case TOK_EQ:
        return "==";
    case TOK_NE:
        return "!=";
    case TOK_AND:
        return "and";
    case TOK_OR:
        return "or";
    case TOK_NOT:
        return "not";
    case '+':
        return "+";
    case '-':
        return "-";
    case '*':
        return "*";
    case '/':
        return "/";
    case '%':
        return "%";
    case '@':
        return "@";
    case '<':
        return "<";
    case '>':
        return ">";
    default:
        return "?";
    }
}

const char *ast_kind_name(ast_kind kind)
{
    static const char *const names[] = {"integer",    "float",      "string", "boolean", "name",
                                        "device",     "unary",      "binary", "call",    "keyword argument",
                                        "index",      "slice",      "list",   "type",    "block",
                                        "assignment", "expression", "return", "param",   "if",
                                        "repeat",     "for",        "stage",  "place",   "assert",
                                        "field",      "freeze",     "file",   "import",  "const",
                                        "fn",         "parameter",  "model",  "train",   "distill"};
    return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "?";
}
