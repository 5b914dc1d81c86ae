/* stage_int8.h — private to cpu/stage_int8*.c: how an int8 product reads its rows and
 * writes its outputs when it does the work around it itself (stage_int8_layout.c, the
 * layouts; stage_int8.c runs them). */
#ifndef PML_CPU_STAGE_INT8_H
#define PML_CPU_STAGE_INT8_H

#include "cpu/stage.h"

#define I8_MAX_DEST 4 /* slices of one product's columns */

typedef struct pml_cpu_i8_layout {
    /* Output: written at the buffers of dest[], the product's permutes; (i, j) at
     * dest[cdest[j / 16]]'s data + row[i] + col16[j / 16] + j % 16 (n_dest = 0: none). */
    int n_dest, dest[I8_MAX_DEST];
    int64_t *row, *col16;
    uint8_t *cdest;
    /* Input: read from node src's buffer (the permute's input; -1: none), row i's
     * elements from p at xrow[i] + xcol16[p / 16] + p % 16. */
    int src;
    int64_t *xrow, *xcol16;
    /* Or its rows a layernorm's (ln_rows.c) of node ln_a's rows, or of ln_a + ln_b's,
     * whose sum it writes to node ln_h, as the fused row group it stands in for (not
     * run) would: weight and bias the param nodes ln_w, ln_bias (ln_a -1: none). */
    int ln_a, ln_b, ln_h, ln_w, ln_bias;
    float ln_eps;
} pml_cpu_i8_layout;

/* The node whose buffer node i reads (its alias root). */
static inline int pml_cpu_i8_root(const pml_cpu_ctx *p, int i) { return p->low[i].alias; }

/* Node n's layout (p->i8_layout[n], NULL when it has none; the nodes it stands in for
 * marked in p->i8_skip), for its product of m rows, out columns, depth k. */
pml_status pml_cpu_i8_choose_layout(pml_cpu_ctx *p, int n, int64_t m, int64_t out, int64_t k, pml_err *err);
void pml_cpu_i8_free_layout(pml_cpu_i8_layout *l);

#endif
