/* pml/op_cases.h — `case` labels for every op outside the classes a switch handles
 * itself, and for the op count, so that a switch over one class's ops needs no
 * `default:`. -Wswitch (an error in our code) then names any op of those classes that
 * the switch lacks: a row added to pml/ops.def is a compile error wherever it must be
 * handled, while the other classes' ops are listed here once.
 *
 *     switch (op) {
 *     case PML_OP_GATHER: ...
 *     case PML_OP_PICK: ...
 *     #define PML_CASE(e) case PML_OP_##e:
 *     #define PML_OWN_GATHER
 *     #include "pml/op_cases.h"
 *         return ...; (not an index op)
 *     }
 *
 * Define PML_CASE(e), the label of op e (its enum constant's spelling differs between
 * the compiler and the runtime), and PML_OWN_<CLASS> for each class the switch handles;
 * this file undefines them. No include guard: it is meant to be included more than once. */
#include "pml/ops.h"

#ifdef PML_OWN_LEAF
#define PML_CASES_LEAF(e)
#else
#define PML_CASES_LEAF(e) PML_CASE(e)
#endif
#ifdef PML_OWN_FILL
#define PML_CASES_FILL(e)
#else
#define PML_CASES_FILL(e) PML_CASE(e)
#endif
#ifdef PML_OWN_UNARY
#define PML_CASES_UNARY(e)
#else
#define PML_CASES_UNARY(e) PML_CASE(e)
#endif
#ifdef PML_OWN_BINARY
#define PML_CASES_BINARY(e)
#else
#define PML_CASES_BINARY(e) PML_CASE(e)
#endif
#ifdef PML_OWN_ELEMWISE
#define PML_CASES_ELEMWISE(e)
#else
#define PML_CASES_ELEMWISE(e) PML_CASE(e)
#endif
#ifdef PML_OWN_REDUCE
#define PML_CASES_REDUCE(e)
#else
#define PML_CASES_REDUCE(e) PML_CASE(e)
#endif
#ifdef PML_OWN_MOVEMENT
#define PML_CASES_MOVEMENT(e)
#else
#define PML_CASES_MOVEMENT(e) PML_CASE(e)
#endif
#ifdef PML_OWN_GATHER
#define PML_CASES_GATHER(e)
#else
#define PML_CASES_GATHER(e) PML_CASE(e)
#endif
#ifdef PML_OWN_MATMUL
#define PML_CASES_MATMUL(e)
#else
#define PML_CASES_MATMUL(e) PML_CASE(e)
#endif
#ifdef PML_OWN_ROWLOSS
#define PML_CASES_ROWLOSS(e)
#else
#define PML_CASES_ROWLOSS(e) PML_CASE(e)
#endif

#ifdef PML_OWN_ATTENTION
#define PML_CASES_ATTENTION(e)
#else
#define PML_CASES_ATTENTION(e) PML_CASE(e)
#endif

#define PML_OP(e, name, cls, ...) PML_CASES_##cls(e)
#include "pml/ops.def"
#undef PML_OP
PML_CASE(COUNT)

#undef PML_CASES_LEAF
#undef PML_CASES_FILL
#undef PML_CASES_UNARY
#undef PML_CASES_BINARY
#undef PML_CASES_ELEMWISE
#undef PML_CASES_REDUCE
#undef PML_CASES_MOVEMENT
#undef PML_CASES_GATHER
#undef PML_CASES_MATMUL
#undef PML_CASES_ROWLOSS
#undef PML_CASES_ATTENTION
#undef PML_OWN_LEAF
#undef PML_OWN_FILL
#undef PML_OWN_UNARY
#undef PML_OWN_BINARY
#undef PML_OWN_ELEMWISE
#undef PML_OWN_REDUCE
#undef PML_OWN_MOVEMENT
#undef PML_OWN_GATHER
#undef PML_OWN_MATMUL
#undef PML_OWN_ROWLOSS
#undef PML_OWN_ATTENTION
#undef PML_CASE
