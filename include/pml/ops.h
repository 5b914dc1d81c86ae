/* pml/ops.h — the words pml/ops.def's rows are written in: an op's flags and what its
 * backward pass keeps. Include it before including pml/ops.def. */
#ifndef PML_OPS_H
#define PML_OPS_H

#include <stddef.h> /* NULL: a row without attributes */
#include <stdint.h>
#include <string.h>

/* FLAGS */
enum {
    PML_OPF_FLOAT = 1, /* floating-point element types only: no backend has an i32 kernel */
    PML_OPF_NOGRAD = 2 /* no gradient flows through it (sources, comparisons, backward ops) */
};

/* SAVES: what the op's backward pass needs, input i or the output. */
#define PML_SAVES_IN(i) (1u << (i))
#define PML_SAVES_OUT 0x80u

/* An attention op's dropout probability as its attr[3] (pml/ops.def): the double's bits,
 * so the plan carries p exactly; and back, 0 when the op has none (fewer than four
 * attributes, or key and p absent). */
static inline int64_t pml_attention_dropout_attr(double p)
{
    int64_t a;
    memcpy(&a, &p, sizeof a);
    return a;
}

static inline double pml_attention_dropout(const int64_t *attr, int n_attr)
{
    double p = 0;
    if (n_attr >= 4) memcpy(&p, &attr[3], sizeof p);
    return p > 0 && p < 1 ? p : 0;
}

#endif
