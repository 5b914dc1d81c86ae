/* pml/ops.h — the words pml/ops.def's rows are written in: an op's flags and what its
 * backward pass keeps. Include it before including pml/ops.def. */
#ifndef PML_OPS_H
#define PML_OPS_H

#include <stddef.h> /* NULL: a row without attributes */

/* FLAGS */
enum {
    PML_OPF_FLOAT = 1, /* floating-point element types only: no backend has an i32 kernel */
    PML_OPF_NOGRAD = 2 /* no gradient flows through it (sources, comparisons, backward ops) */
};

/* SAVES: what the op's backward pass needs, input i or the output. */
#define PML_SAVES_IN(i) (1u << (i))
#define PML_SAVES_OUT 0x80u

#endif
