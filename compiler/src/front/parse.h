/* parse.h — the state shared by the flex scanner (grammar/pml.l) and the bison
 * parser (grammar/pml.y), and the one entry point that runs them on a source file. */
#ifndef PMLC_PARSE_H
#define PMLC_PARSE_H

#include "front/ast.h"
#include "front/diag.h"

/* A byte range in the file being parsed; bison's location type. */
typedef struct pmlc_span {
    uint32_t begin, end;
} pmlc_span;

/* Deepest nesting of ( [ { accepted by the scanner. */
#define PMLC_MAX_NESTING 256
/* Longest identifier and string literal accepted. */
#define PMLC_MAX_IDENT 256
#define PMLC_MAX_STRING 65536

typedef struct pmlc_parser {
    pmlc_arena *arena;
    pmlc_diag *diag;
    pmlc_sources *sources;
    int file;
    uint32_t pos;    /* byte offset of the scanner */
    int paren;       /* open ( and [ since the last { or }: newlines are ignored inside */
    int nesting;     /* open ( [ { in all */
    int start_token; /* injected first token: selects what is parsed */
    int fatal;       /* a limit was hit: stop without further messages */
    int depth_reported;
    uint32_t comment_begin;
    int comment_nl;
    ast *result;
} pmlc_parser;

enum { PMLC_PARSE_FILE, PMLC_PARSE_FIELD };

/* Parses source `file` as a whole file (AST_FILE) or a single `key = value` field
 * (AST_FIELD, for --set). Returns NULL when nothing usable was parsed; syntax errors
 * are reported through `d` either way. */
ast *pmlc_parse(pmlc_arena *a, pmlc_diag *d, pmlc_sources *srcs, int file, int what);

static inline pmlc_loc pmlc_span_loc(const pmlc_parser *P, pmlc_span s) { return (pmlc_loc){P->file, s.begin, s.end}; }

#endif
