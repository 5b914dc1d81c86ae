/* gemm_ref.c — the portable blocked C GEMM (see gemm.h and gemm_ref_tmpl.h): the
 * fallback without BLAS and the tests' oracle with it. */
#include "gemm.h"

#include <pthread.h>

#define MAX_THREADS 64

#define T float
#define F(name) name##_f32
#include "gemm_ref_tmpl.h"
#undef T
#undef F
#define T double
#define F(name) name##_f64
#include "gemm_ref_tmpl.h"
#undef T
#undef F
