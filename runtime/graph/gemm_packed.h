/* f32 matrix product by a constant weight packed once at load (runtime/graph/gemm_packed.c), for
 * MatMul / Gemm whose B is an initializer: sgemm re-packs B on every call and zeroes C before
 * accumulating, which for the small activations of a transformer or a CNN head costs a sizeable
 * share of the product itself. AVX-512 only; callers fall back to gx_sgemm elsewhere. */
#ifndef SMELT_GX_GEMM_PACKED_H
#define SMELT_GX_GEMM_PACKED_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/graph/gx.h"

/* Columns a packed panel holds. */
#define GX_PK_NR 32

/* Rows of A below which sgemm (a matrix-vector product for one row) is the better choice: a register
 * tile is 12 rows, so fewer waste most of its work. */
#define GX_PK_MIN_ROWS 6

/* Whether this CPU runs the packed product. */
bool gx_gemm_packed_ok(void);
/* Floats the packed form of a [K, N] weight takes: ceil(N / 32) panels of K x 32. */
int64_t gx_pack_floats(int64_t K, int64_t N);
/* Packs B (row-major [K, N], or [N, K] with trans) into out: panel p holds columns [32p, 32p + 32)
 * as K rows of 32 floats, zero past N. */
void gx_pack_b(const float *B, bool trans, int64_t K, int64_t N, float *out);
/* C[M, N] (row stride ldc) = alpha * A[M, K] (row stride lda) x B + (accumulate ? beta * C : 0), B
 * as packed by gx_pack_b, threaded over panels; scratch from c. Errors only on out of memory. */
smelt_err *gx_gemm_packed(gx_call *c, const float *A, int64_t lda, int64_t M, int64_t K, int64_t N, const float *pk, float alpha, bool accumulate,
                          float beta, float *C, int64_t ldc);

#endif
