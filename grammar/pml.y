/* pml.y — the PML grammar (bison). A pure, reentrant parser with locations that only
 * builds the AST; every semantic rule lives in compiler/src/sema/elab.c. Syntax errors are
 * reported with what was expected, and recovery resumes at the next statement, field
 * or declaration so one run reports several errors. The language reference is
 * docs/language.md. */

%require "3.8"
%define api.pure full
%define api.token.prefix {TOK_}
%define api.location.type {pmlc_span}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%lex-param {void *scanner}
%parse-param {void *scanner} {pmlc_parser *P}

%code requires {
#include "front/parse.h"
}

%code top {
#define YYMAXDEPTH 10000
}

%code {
#include <string.h>
#include "pml_lexer.h"
#define yylex pmlc_yylex /* the scanner is built with prefix pmlc_yy */

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                   \
    do {                                                              \
        if (N) {                                                      \
            (Cur).begin = YYRHSLOC(Rhs, 1).begin;                     \
            (Cur).end = YYRHSLOC(Rhs, N).end;                         \
        } else {                                                      \
            (Cur).begin = (Cur).end = YYRHSLOC(Rhs, 0).end;           \
        }                                                             \
    } while (0)

static void yyerror(pmlc_span *loc, void *scanner, pmlc_parser *P, const char *msg);
static ast *node(pmlc_parser *P, ast_kind k, pmlc_span s);
static ast *check_depth(pmlc_parser *P, ast *n);
static ast *unary(pmlc_parser *P, int op, ast *a, pmlc_span s);
static ast *binary(pmlc_parser *P, int op, ast *a, ast *b, pmlc_span s);
static ast *with(pmlc_parser *P, ast *list, ast *item);
#define L(s) pmlc_span_loc(P, (s))
}

%union {
    ast *node;
}

%token START_FILE START_FIELD
%token <node> IDENT "identifier" INT "integer" FLOAT "number" STRING "string"
%token <node> DEVICE "device" PATTERN "name pattern"
%token IMPORT "'import'" CONST "'const'" FN "'fn'" MODEL "'model'" TRAIN "'train'"
%token DISTILL "'distill'" FROM "'from'" PARAM "'param'" RETURN "'return'" IF "'if'"
%token ELSE "'else'" REPEAT "'repeat'" FOR "'for'" IN "'in'" AS "'as'" STAGE "'stage'"
%token PLACE "'place'" FREEZE "'freeze'" AFTER "'after'" ASSERT "'assert'" TRUE "'true'"
%token FALSE "'false'" AND "'and'" OR "'or'" NOT "'not'" RECOMPUTE "'recompute'"
%token ARROW "'->'" DOTDOT "'..'" LE "'<='" GE "'>='" EQ "'=='" NE "'!='"
%token NL "end of line" PCOMMA "','"

%type <node> top decl_seq decl fparams fparams_opt fparam type dims_opt exprs block body stmt_seq
%type <node> stmt if_stmt items item_seq item field patterns expr postfix primary args args_opt
%type <node> arg index_items index_item opt_expr list_opt

%left OR
%left AND
%precedence NOT
%nonassoc '<' '>' LE GE EQ NE
%left '+' '-'
%left '*' '/' '%' '@'
%precedence UMINUS

%%

start
    : START_FILE top            { P->result = $2; }
    | START_FIELD field seps_opt { P->result = $2; }
    ;

/* ---- files and declarations ---------------------------------------------------- */

top
    : seps_opt                  { $$ = node(P, AST_FILE, @$); }
    | seps_opt decl_seq seps_opt { $$ = $2; }
    ;

decl_seq
    : decl                      { $$ = with(P, node(P, AST_FILE, @$), $1); }
    | decl_seq seps decl        { $$ = with(P, $1, $3); }
    ;

seps: sep | seps sep ;
seps_opt: %empty | seps ;
sep: NL | ';' ;

decl
    : IMPORT STRING             { $$ = node(P, AST_IMPORT, @$); $$->name = $2->name; $$->name_loc = $2->loc; }
    | CONST IDENT '=' expr      { $$ = node(P, AST_CONST, @$); $$->name = $2->name; $$->name_loc = $2->loc; $$->a = $4; }
    | FN IDENT '(' fparams_opt ')' block
        { $$ = $4; $$->kind = AST_FN; $$->loc = L(@$); $$->name = $2->name; $$->name_loc = $2->loc; $$->b = $6; }
    | MODEL IDENT '(' fparams_opt ')' ARROW type block
        { $$ = $4; $$->kind = AST_MODEL; $$->loc = L(@$); $$->name = $2->name; $$->name_loc = $2->loc;
          $$->a = $7; $$->b = $8; }
    | TRAIN IDENT '{' items '}'
        { $$ = $4; $$->kind = AST_TRAIN; $$->loc = L(@$); $$->name = $2->name; $$->name_loc = $2->loc; }
    | DISTILL IDENT FROM IDENT '(' args_opt ')' '{' items '}'
        { $$ = $9; $$->kind = AST_DISTILL; $$->loc = L(@$); $$->name = $2->name; $$->name_loc = $2->loc;
          $$->label = $4->name; $$->label_loc = $4->loc; $$->list2 = $6->list; }
    | error                     { $$ = NULL; }
    ;

fparams_opt
    : %empty                    { $$ = node(P, AST_FN, @$); }
    | fparams
    | fparams ','
    ;

fparams
    : fparam                    { $$ = with(P, node(P, AST_FN, @$), $1); }
    | fparams ',' fparam        { $$ = with(P, $1, $3); }
    ;

fparam
    : IDENT                     { $$ = node(P, AST_FPARAM, @$); $$->name = $1->name; $$->name_loc = $1->loc; }
    | IDENT '=' expr            { $$ = node(P, AST_FPARAM, @$); $$->name = $1->name; $$->name_loc = $1->loc; $$->b = $3; }
    | IDENT ':' type            { $$ = node(P, AST_FPARAM, @$); $$->name = $1->name; $$->name_loc = $1->loc; $$->a = $3; }
    | IDENT ':' type '=' expr
        { $$ = node(P, AST_FPARAM, @$); $$->name = $1->name; $$->name_loc = $1->loc; $$->a = $3; $$->b = $5; }
    ;

type
    : IDENT                     { $$ = node(P, AST_TYPE, @$); $$->name = $1->name; }
    | IDENT '[' dims_opt ']'    { $$ = $3; $$->loc = L(@$); $$->name = $1->name; $$->name_loc = $1->loc; $$->ival = 1; }
    | '[' dims_opt ']'          { $$ = $2; $$->loc = L(@$); $$->ival = 1; }
    ;

dims_opt
    : %empty                    { $$ = node(P, AST_TYPE, @$); }
    | exprs                     { $$ = $1; $$->kind = AST_TYPE; }
    | exprs ','                 { $$ = $1; $$->kind = AST_TYPE; }
    ;

exprs
    : expr                      { $$ = with(P, node(P, AST_LIST, @$), $1); }
    | exprs ',' expr            { $$ = with(P, $1, $3); }
    ;

/* ---- statements ---------------------------------------------------------------- */

block
    : '{' body '}'              { $$ = $2; $$->loc = L(@$); }
    ;

body
    : seps_opt                  { $$ = node(P, AST_BLOCK, @$); }
    | seps_opt stmt_seq seps_opt { $$ = $2; }
    ;

stmt_seq
    : stmt                      { $$ = with(P, node(P, AST_BLOCK, @$), $1); }
    | stmt_seq seps stmt        { $$ = with(P, $1, $3); }
    ;

stmt
    : IDENT '=' expr            { $$ = node(P, AST_ASSIGN, @$); $$->name = $1->name; $$->name_loc = $1->loc; $$->a = $3; }
    | expr                      { $$ = node(P, AST_EXPR_STMT, @$); $$->a = $1; }
    | RETURN                    { $$ = node(P, AST_RETURN, @$); }
    | RETURN expr               { $$ = node(P, AST_RETURN, @$); $$->a = $2; }
    | PARAM IDENT ':' type '=' expr
        { $$ = node(P, AST_PARAM, @$); $$->name = $2->name; $$->name_loc = $2->loc; $$->a = $4; $$->b = $6; }
    | if_stmt
    | REPEAT expr block         { $$ = node(P, AST_REPEAT, @$); $$->a = $2; $$->b = $3; }
    | FOR IDENT IN expr block
        { $$ = node(P, AST_FOR, @$); $$->name = $2->name; $$->name_loc = $2->loc; $$->a = $4; $$->b = $5; }
    | FOR IDENT IN expr DOTDOT expr block
        { $$ = node(P, AST_FOR, @$); $$->name = $2->name; $$->name_loc = $2->loc; $$->a = $4; $$->c = $6; $$->b = $7; }
    | STAGE expr block          { $$ = node(P, AST_STAGE, @$); $$->a = $2; $$->b = $3; }
    | PLACE '=' expr            { $$ = node(P, AST_PLACE, @$); $$->a = $3; }
    | ASSERT expr               { $$ = node(P, AST_ASSERT, @$); $$->a = $2; }
    | ASSERT expr ',' expr      { $$ = node(P, AST_ASSERT, @$); $$->a = $2; $$->b = $4; }
    | error                     { $$ = NULL; }
    ;

if_stmt
    : IF expr block             { $$ = node(P, AST_IF, @$); $$->a = $2; $$->b = $3; }
    | IF expr block ELSE block  { $$ = node(P, AST_IF, @$); $$->a = $2; $$->b = $3; $$->c = $5; }
    | IF expr block ELSE if_stmt { $$ = node(P, AST_IF, @$); $$->a = $2; $$->b = $3; $$->c = $5; }
    ;

/* ---- train and distill blocks -------------------------------------------------- */

items
    : iseps_opt                 { $$ = node(P, AST_TRAIN, @$); }
    | iseps_opt item_seq iseps_opt { $$ = $2; }
    ;

item_seq
    : item                      { $$ = with(P, node(P, AST_TRAIN, @$), $1); }
    | item_seq iseps item       { $$ = with(P, $1, $3); }
    ;

iseps: isep | iseps isep ;
iseps_opt: %empty | iseps ;
isep: NL | ';' | ',' ;

item
    : field
    | FREEZE patterns           { $$ = $2; $$->loc = L(@$); }
    | FREEZE patterns AFTER expr IDENT
        { $$ = $2; $$->loc = L(@$); $$->a = $4; $$->name = $5->name; $$->name_loc = $5->loc; }
    | RECOMPUTE patterns        { $$ = $2; $$->kind = AST_RECOMPUTE; $$->loc = L(@$); }
    | FREEZE IDENT '(' args_opt ')'
        { $$ = node(P, AST_FREEZE, @$); $$->b = $4; $$->b->kind = AST_CALL; $$->b->loc = L(@$);
          $$->b->name = $2->name; $$->b->name_loc = $2->loc; }
    | IDENT '(' args_opt ')'    /* match(...) of a distill block */
        { $$ = $3; $$->kind = AST_CALL; $$->loc = L(@$); $$->name = $1->name; $$->name_loc = $1->loc; }
    | error                     { $$ = NULL; }
    ;

field
    : IDENT '=' expr            { $$ = node(P, AST_FIELD, @$); $$->name = $1->name; $$->name_loc = $1->loc; $$->a = $3; }
    | PLACE '=' expr            { $$ = node(P, AST_FIELD, @$); $$->name = "place"; $$->name_loc = L(@1); $$->a = $3; }
    | RECOMPUTE '=' expr        { $$ = node(P, AST_FIELD, @$); $$->name = "recompute"; $$->name_loc = L(@1); $$->a = $3; }
    ;

patterns
    : PATTERN                   { $$ = with(P, node(P, AST_FREEZE, @$), $1); }
    | patterns PCOMMA PATTERN   { $$ = with(P, $1, $3); }
    ;

/* ---- expressions --------------------------------------------------------------- */

expr
    : expr OR expr              { $$ = binary(P, TOK_OR, $1, $3, @$); }
    | expr AND expr             { $$ = binary(P, TOK_AND, $1, $3, @$); }
    | NOT expr                  { $$ = unary(P, TOK_NOT, $2, @$); }
    | expr '<' expr             { $$ = binary(P, '<', $1, $3, @$); }
    | expr '>' expr             { $$ = binary(P, '>', $1, $3, @$); }
    | expr LE expr              { $$ = binary(P, TOK_LE, $1, $3, @$); }
    | expr GE expr              { $$ = binary(P, TOK_GE, $1, $3, @$); }
    | expr EQ expr              { $$ = binary(P, TOK_EQ, $1, $3, @$); }
    | expr NE expr              { $$ = binary(P, TOK_NE, $1, $3, @$); }
    | expr '+' expr             { $$ = binary(P, '+', $1, $3, @$); }
    | expr '-' expr             { $$ = binary(P, '-', $1, $3, @$); }
    | expr '*' expr             { $$ = binary(P, '*', $1, $3, @$); }
    | expr '/' expr             { $$ = binary(P, '/', $1, $3, @$); }
    | expr '%' expr             { $$ = binary(P, '%', $1, $3, @$); }
    | expr '@' expr             { $$ = binary(P, '@', $1, $3, @$); }
    | '-' expr %prec UMINUS     { $$ = unary(P, '-', $2, @$); }
    | postfix
    ;

postfix
    : primary
    | postfix '[' index_items ']'
        { $$ = $3; $$->kind = AST_INDEX; $$->loc = L(@$); $$->a = $1;
          if ($1->depth + 1 > $$->depth) $$->depth = $1->depth + 1;
          $$ = check_depth(P, $$); }
    ;

primary
    : INT | FLOAT | STRING | DEVICE | IDENT
    | TRUE                      { $$ = node(P, AST_BOOL, @$); $$->ival = 1; }
    | FALSE                     { $$ = node(P, AST_BOOL, @$); $$->ival = 0; }
    | IDENT '(' args_opt ')'
        { $$ = $3; $$->kind = AST_CALL; $$->loc = L(@$); $$->name = $1->name; $$->name_loc = $1->loc; }
    | IDENT '(' args_opt ')' AS IDENT
        { $$ = $3; $$->kind = AST_CALL; $$->loc = L(@$); $$->name = $1->name; $$->name_loc = $1->loc;
          $$->label = $6->name; $$->label_loc = $6->loc; }
    | '(' expr ')'              { $$ = $2; }
    | '[' list_opt ']'          { $$ = $2; $$->loc = L(@$); }
    ;

list_opt
    : %empty                    { $$ = node(P, AST_LIST, @$); }
    | exprs
    | exprs ','
    ;

args_opt
    : %empty                    { $$ = node(P, AST_CALL, @$); }
    | args
    | args ','
    ;

args
    : arg                       { $$ = with(P, node(P, AST_CALL, @$), $1); }
    | args ',' arg              { $$ = with(P, $1, $3); }
    ;

arg
    : expr
    | IDENT '=' expr            { $$ = node(P, AST_KWARG, @$); $$->name = $1->name; $$->name_loc = $1->loc; $$->a = $3; }
    ;

index_items
    : index_item                { $$ = with(P, node(P, AST_INDEX, @$), $1); }
    | index_items ',' index_item { $$ = with(P, $1, $3); }
    ;

index_item
    : expr
    | opt_expr ':' opt_expr     { $$ = node(P, AST_SLICE, @$); $$->a = $1; $$->b = $3; }
    | opt_expr ':' opt_expr ':' opt_expr { $$ = node(P, AST_SLICE, @$); $$->a = $1; $$->b = $3; $$->c = $5; }
    ;

opt_expr
    : %empty                    { $$ = NULL; }
    | expr
    ;

%%

static ast *node(pmlc_parser *P, ast_kind k, pmlc_span s)
{
    return ast_new(P->arena, k, L(s));
}

/* Every expression node records its depth; past the limit one error is reported and
 * parsing goes on, so later passes never recurse that deep (the file has an error). */
static ast *check_depth(pmlc_parser *P, ast *n)
{
    if (n->depth > PMLC_MAX_EXPR_DEPTH && !P->depth_reported) {
        P->depth_reported = 1;
        pmlc_error(P->diag, n->loc, "expression nested too deeply (the limit is %d levels)", PMLC_MAX_EXPR_DEPTH);
    }
    return n;
}

static ast *unary(pmlc_parser *P, int op, ast *a, pmlc_span s)
{
    ast *n = node(P, AST_UNARY, s);
    n->op = op;
    n->a = a;
    n->depth = a->depth + 1;
    return check_depth(P, n);
}

static ast *binary(pmlc_parser *P, int op, ast *a, ast *b, pmlc_span s)
{
    ast *n = node(P, AST_BINARY, s);
    n->op = op;
    n->a = a;
    n->b = b;
    n->depth = (a->depth > b->depth ? a->depth : b->depth) + 1;
    return check_depth(P, n);
}

static ast *with(pmlc_parser *P, ast *list, ast *item)
{
    if (item) {
        PMLC_PUSH(P->arena, list->list, item);
        if (item->depth + 1 > list->depth) list->depth = item->depth + 1;
    }
    return list;
}

static void yyerror(pmlc_span *loc, void *scanner, pmlc_parser *P, const char *msg)
{
    (void)scanner;
    if (P->fatal) return;
    if (strstr(msg, "exhausted")) {
        P->fatal = 1;
        pmlc_error(P->diag, L(*loc), "nesting too deep: the parser's limit is %d open constructs", YYMAXDEPTH);
        return;
    }
    pmlc_error(P->diag, L(*loc), "%s", msg);
}

/* Names of tokens as a person reads them: quotes kept for punctuation and keywords. */
static void symbol_text(pmlc_parser *P, yysymbol_kind_t sym, const pmlc_span *loc, char *buf, size_t cap)
{
    const char *name = yysymbol_name(sym);
    if (sym == YYSYMBOL_YYEOF) {
        snprintf(buf, cap, "end of file");
        return;
    }
    if (sym == YYSYMBOL_IDENT && loc) {
        const char *text = P->sources->files.v[P->file].text + loc->begin;
        int n = (int)(loc->end - loc->begin);
        if (n > 40) {
            snprintf(buf, cap, "identifier '%.40s...'", text);
        } else {
            snprintf(buf, cap, "identifier '%.*s'", n, text);
        }
        return;
    }
    if (name[0] == '"') { /* "'import'" as bison spells it */
        size_t n = strlen(name);
        snprintf(buf, cap, "%.*s", (int)(n - 2), name + 1);
        return;
    }
    snprintf(buf, cap, "%s", name);
}

static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, pmlc_parser *P)
{
    (void)scanner;
    if (P->fatal) return 0;
    enum { MAX_LISTED = 4, MAX_EXPECTED = 128 };
    yysymbol_kind_t expected[MAX_EXPECTED];
    int n = yypcontext_expected_tokens(ctx, expected, MAX_EXPECTED);
    const pmlc_span *loc = yypcontext_location(ctx);
    int expr = 0, close_paren = 0, close_bracket = 0, decl = 0;
    for (int i = 0; i < n; i++) {
        decl |= expected[i] == YYSYMBOL_FN;
        expr |= expected[i] == YYSYMBOL_INT;
        close_paren |= !strcmp(yysymbol_name(expected[i]), "')'");
        close_bracket |= !strcmp(yysymbol_name(expected[i]), "']'");
    }
    char got[128], msg[640];
    symbol_text(P, yypcontext_token(ctx), loc, got, sizeof got);
    int len = snprintf(msg, sizeof msg, "unexpected %s", got);
    if (n > 0 && n <= MAX_LISTED) {
        len += snprintf(msg + len, sizeof msg - (size_t)len, ", expected ");
        for (int i = 0; i < n; i++) {
            char e[128];
            symbol_text(P, expected[i], NULL, e, sizeof e);
            len += snprintf(msg + len, sizeof msg - (size_t)len, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", e);
        }
    } else if (decl) {
        len += snprintf(msg + len, sizeof msg - (size_t)len,
                        ", expected a declaration: import, const, fn, model, train or distill");
    } else if (expr && n > MAX_LISTED && !close_paren && !close_bracket) {
        len += snprintf(msg + len, sizeof msg - (size_t)len, ", expected an expression");
    } else if (close_paren || close_bracket) {
        len += snprintf(msg + len, sizeof msg - (size_t)len, " (is a '%c' missing?)", close_paren ? ')' : ']');
    }
    pmlc_error(P->diag, L(*loc), "%s", msg);
    return 0;
}

ast *pmlc_parse(pmlc_arena *a, pmlc_diag *d, pmlc_sources *srcs, int file, int what)
{
    pmlc_parser P = {0};
    P.arena = a;
    P.diag = d;
    P.sources = srcs;
    P.file = file;
    P.start_token = what == PMLC_PARSE_FIELD ? TOK_START_FIELD : TOK_START_FILE;
    yyscan_t scanner;
    if (pmlc_yylex_init_extra(&P, &scanner)) return NULL;
    const pmlc_source *src = &srcs->files.v[file];
    YY_BUFFER_STATE buf = pmlc_yy_scan_bytes(src->text, (int)src->len, scanner);
    int rc = yyparse(scanner, &P);
    pmlc_yy_delete_buffer(buf, scanner);
    pmlc_yylex_destroy(scanner);
    return rc == 0 || P.result ? P.result : NULL;
}
