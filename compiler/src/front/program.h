/* program.h — one compile: sources, diagnostics, loaded modules and the global
 * namespace they share. This is what a pmlc_session holds; passes take it as `P`. */
#ifndef PMLC_PROGRAM_H
#define PMLC_PROGRAM_H

#include "front/diag.h"
#include "ir/ir.h"
#include "pmlc.h"

typedef struct pmlc_module {
    const char *path; /* canonical path */
    int file;
    ast *root;
    int state;           /* 0 loading, 1 loaded */
    int parent;          /* module that first imported it, -1 for the main file */
    pmlc_loc import_loc; /* where it was first imported */
} pmlc_module;

typedef struct pmlc_program {
    pmlc_arena arena;
    pmlc_sources sources;
    pmlc_diag diag;
    pmlc_options opt;
    const char **include_dirs;
    int n_include_dirs;
    PMLC_VEC(pmlc_module) modules;
    pmlc_strmap module_by_path;
    pmlc_strmap globals; /* name → ast* (AST_FN, AST_CONST, AST_MODEL) */
    PMLC_VEC(ast *) models;
    PMLC_VEC(ast *) trains;
    PMLC_VEC(ast *) distills;
    pmlc_symtab syms;
    ast_list set_fields;     /* --set key=value, parsed as fields */
    pmlc_strmap const_cache; /* name → evaluated constant (pmlc_value*) */
    int checked;             /* check ran and found no error */
    struct pmlc_plan *plan;  /* built by check, printed by plan */
} pmlc_program;

/* Loads the main file and every import into P->modules and fills the namespace.
 * Returns 0 on success. */
int pmlc_load_program(pmlc_program *P, const char *path, const char *text, size_t len);

/* Symbol id for a symbolic dimension name (added on first use); -1 past the limit. */
int pmlc_symbol(pmlc_program *P, const char *name);

#endif
