/* The packed-weight f32 product (see gemm_packed.h). A register tile is 12 rows x 32 columns (4
 * rows for a block's tail of up to 8): per k,
 * two aligned loads of the weight panel and 12 broadcasts of the activation feed 24 FMAs, the sums
 * kept in f32 over the whole K. The activation is read in place, 12 row streams (a tail block
 * repeats its last row rather than reading past M; those rows are not stored): packing it would be
 * serial work ahead of the threads. Threads take disjoint ranges of weight panels. */
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "runtime/graph/gemm_packed.h"

#define MR 12

int64_t gx_pack_floats(int64_t K, int64_t N) { return (N + GX_PK_NR - 1) / GX_PK_NR * K * GX_PK_NR; }

void gx_pack_b(const float *B, bool trans, int64_t K, int64_t N, float *out)
{
    int64_t np = (N + GX_PK_NR - 1) / GX_PK_NR;
    for (int64_t p = 0; p < np; p++)
        for (int64_t k = 0; k < K; k++) {
            float *dst = out + (p * K + k) * GX_PK_NR;
            for (int64_t j = 0; j < GX_PK_NR; j++) {
                int64_t n = p * GX_PK_NR + j;
                dst[j] = n >= N ? 0.0f : trans ? B[n * K + k] : B[k * N + n];
            }
        }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PK_HAVE_IMPL 1

typedef struct {
    const float *A, *pk; /* activation rows (stride lda), packed weight */
    float *C;
    int64_t M, K, N, lda, ldc, nmb, np, parts;
    float alpha, beta;
    bool accumulate;
} pk_job;

/* C rows [0, mr) = alpha * acc (+ beta * C), columns masked by m0 (first 16) and m1 (next 16). */
__attribute__((target("avx512f"))) static inline void pk_store(const pk_job *j, __m512 acc[][2], float *C, int mr, __mmask16 m0, __mmask16 m1)
{
    __m512 al = _mm512_set1_ps(j->alpha), be = _mm512_set1_ps(j->beta);
    for (int r = 0; r < mr; r++, C += j->ldc) {
        __m512 v0 = j->alpha == 1.0f ? acc[r][0] : _mm512_mul_ps(acc[r][0], al);
        __m512 v1 = j->alpha == 1.0f ? acc[r][1] : _mm512_mul_ps(acc[r][1], al);
        if (j->accumulate) {
            v0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, C), be, v0);
            v1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, C + 16), be, v1);
        }
        _mm512_mask_storeu_ps(C, m0, v0);
        _mm512_mask_storeu_ps(C + 16, m1, v1);
    }
}

__attribute__((target("avx512f"))) static void pk_tile(const pk_job *j, const float *A, const float *bp, float *C, int mr, __mmask16 m0, __mmask16 m1)
{
    const int64_t K = j->K, lda = j->lda;
#define PK_ROW(i) (A + (i < mr ? i : mr - 1) * lda)
    const float *a0 = PK_ROW(0), *a1 = PK_ROW(1), *a2 = PK_ROW(2), *a3 = PK_ROW(3), *a4 = PK_ROW(4), *a5 = PK_ROW(5);
    const float *a6 = PK_ROW(6), *a7 = PK_ROW(7), *a8 = PK_ROW(8), *a9 = PK_ROW(9), *a10 = PK_ROW(10), *a11 = PK_ROW(11);
#undef PK_ROW
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;
    __m512 c60 = z, c61 = z, c70 = z, c71 = z, c80 = z, c81 = z, c90 = z, c91 = z, ca0 = z, ca1 = z, cb0 = z, cb1 = z;
    for (int64_t k = 0; k < K; k++, bp += GX_PK_NR) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16), a;
#define PK_FMA(i, X0, X1)              \
    a = _mm512_set1_ps(a##i[k]);       \
    X0 = _mm512_fmadd_ps(a, b0, X0);   \
    X1 = _mm512_fmadd_ps(a, b1, X1)
        PK_FMA(0, c00, c01);
        PK_FMA(1, c10, c11);
        PK_FMA(2, c20, c21);
        PK_FMA(3, c30, c31);
        PK_FMA(4, c40, c41);
        PK_FMA(5, c50, c51);
        PK_FMA(6, c60, c61);
        PK_FMA(7, c70, c71);
        PK_FMA(8, c80, c81);
        PK_FMA(9, c90, c91);
        PK_FMA(10, ca0, ca1);
        PK_FMA(11, cb0, cb1);
#undef PK_FMA
    }
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
                         {c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {ca0, ca1}, {cb0, cb1}};
    pk_store(j, acc, C, mr, m0, m1);
}

/* The same for at most 4 rows (a block's tail: 12 rows of work for 4 wasted two thirds of it). */
__attribute__((target("avx512f"))) static void pk_tile4(const pk_job *j, const float *A, const float *bp, float *C, int mr, __mmask16 m0, __mmask16 m1)
{
    const int64_t K = j->K, lda = j->lda;
    const float *a0 = A, *a1 = A + (1 < mr ? 1 : mr - 1) * lda, *a2 = A + (2 < mr ? 2 : mr - 1) * lda, *a3 = A + (3 < mr ? 3 : mr - 1) * lda;
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    for (int64_t k = 0; k < K; k++, bp += GX_PK_NR) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16), a;
        a = _mm512_set1_ps(a0[k]), c00 = _mm512_fmadd_ps(a, b0, c00), c01 = _mm512_fmadd_ps(a, b1, c01);
        a = _mm512_set1_ps(a1[k]), c10 = _mm512_fmadd_ps(a, b0, c10), c11 = _mm512_fmadd_ps(a, b1, c11);
        a = _mm512_set1_ps(a2[k]), c20 = _mm512_fmadd_ps(a, b0, c20), c21 = _mm512_fmadd_ps(a, b1, c21);
        a = _mm512_set1_ps(a3[k]), c30 = _mm512_fmadd_ps(a, b0, c30), c31 = _mm512_fmadd_ps(a, b1, c31);
    }
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    pk_store(j, acc, C, mr, m0, m1);
}

static void pk_part(void *ctx, int64_t pbegin, int64_t pend)
{
    const pk_job *j = ctx;
    for (int64_t part = pbegin; part < pend; part++) {
        int64_t p0 = j->np * part / j->parts, p1 = j->np * (part + 1) / j->parts;
        for (int64_t p = p0; p < p1; p++) {
            int64_t n0 = p * GX_PK_NR, nn = j->N - n0 < GX_PK_NR ? j->N - n0 : GX_PK_NR;
            __mmask16 m0 = (__mmask16)(nn >= 16 ? 0xffff : (1u << nn) - 1), m1 = (__mmask16)(nn <= 16 ? 0 : nn >= 32 ? 0xffff : (1u << (nn - 16)) - 1);
            const float *bp = j->pk + p * j->K * GX_PK_NR;
            for (int64_t mb = 0; mb < j->nmb; mb++) {
                int mr = j->M - mb * MR < MR ? (int)(j->M - mb * MR) : MR;
                const float *A = j->A + mb * MR * j->lda;
                float *C = j->C + mb * MR * j->ldc + n0;
                if (mr > 8) pk_tile(j, A, bp, C, mr, m0, m1);
                else /* a tail of 1 to 8 rows: 4-row tiles */
                    for (int r0 = 0; r0 < mr; r0 += 4) pk_tile4(j, A + r0 * j->lda, bp, C + r0 * j->ldc, mr - r0 < 4 ? mr - r0 : 4, m0, m1);
            }
        }
    }
}
#endif

bool gx_gemm_packed_ok(void)
{
#ifdef PK_HAVE_IMPL
    static int avx512 = -1; /* decided once (a benign race: the same value) */
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return avx512;
#else
    return false;
#endif
}

smelt_err *gx_gemm_packed(gx_call *c, const float *A, int64_t lda, int64_t M, int64_t K, int64_t N, const float *pk, float alpha, bool accumulate,
                          float beta, float *C, int64_t ldc)
{
#ifdef PK_HAVE_IMPL
    if (M <= 0 || N <= 0) return NULL;
    pk_job j = {.A = A, .pk = pk, .C = C, .M = M, .K = K, .N = N, .lda = lda, .ldc = ldc, .alpha = alpha, .beta = beta, .accumulate = accumulate};
    j.nmb = (M + MR - 1) / MR;
    j.np = (N + GX_PK_NR - 1) / GX_PK_NR;
    double flops = 2.0 * (double)M * (double)N * (double)K;
    int64_t threads = smelt_thread_count();
    /* a few parts a thread: the pool hands them to whichever thread is free */
    j.parts = flops >= 1.5e6 && j.np >= 2 ? (j.np < 4 * threads ? j.np : 4 * threads) : 1;
    if (j.parts > 1) smelt_parallel_for(j.parts, 1, pk_part, &j);
    else pk_part(&j, 0, 1);
    return NULL;
#else
    (void)A, (void)lda, (void)M, (void)K, (void)N, (void)pk, (void)alpha, (void)accumulate, (void)beta, (void)C, (void)ldc;
    return gx_unsup(c, "packed product needs AVX-512");
#endif
}
