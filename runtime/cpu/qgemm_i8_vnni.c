/* AVX-512 VNNI w8a8 kernel: register tiles of up to 6 tokens by 4 panels (64 rows), 24 int32
 * accumulators; each step loads 4 panels of 16 rows × 4 columns and, per token, broadcasts its 4
 * activation bytes (u8, offset by 128) into one vpdpbusd per panel. The offset is taken back out
 * with 128 · rowsum(W) before scaling. */
#include "runtime/cpu/qgemm_i8.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define MR 6
#define NP 4

TARGET static inline __attribute__((always_inline)) void tile(const i8mat *w, const uint8_t *xq, const float *xs, int mr, int p0, int np, int r1,
                                                                   float *y)
{
    int kb = w->cols_p / 4;
    const int8_t *pw = w->w + (size_t)p0 * kb * 64;
    __m512i acc[MR][NP];
#pragma GCC unroll 8
    for (int t = 0; t < mr; t++)
#pragma GCC unroll 4
        for (int j = 0; j < np; j++) acc[t][j] = _mm512_setzero_si512();
    for (int k = 0; k < kb; k++) {
        __m512i b[NP];
#pragma GCC unroll 4
        for (int j = 0; j < np; j++) b[j] = _mm512_loadu_si512((const void *)(pw + ((size_t)j * kb + k) * 64));
#pragma GCC unroll 8
        for (int t = 0; t < mr; t++) {
            int32_t xv;
            memcpy(&xv, xq + (size_t)t * w->cols_p + (size_t)k * 4, 4);
            __m512i a = _mm512_set1_epi32(xv);
#pragma GCC unroll 4
            for (int j = 0; j < np; j++) acc[t][j] = _mm512_dpbusd_epi32(acc[t][j], a, b[j]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < np; j++) {
        int row0 = (p0 + j) * 16, n = r1 - row0 < 16 ? r1 - row0 : 16;
        __mmask16 m = (__mmask16)((1u << n) - 1);
        __m512i off = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(w->rowsum + row0)), 7);
        __m512 sc = _mm512_maskz_loadu_ps(m, w->scale + row0);
#pragma GCC unroll 8
        for (int t = 0; t < mr; t++) {
            __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[t][j], off));
            v = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(xs[t])), sc);
            _mm512_mask_storeu_ps(y + (size_t)t * w->rows + row0, m, v);
        }
    }
}

#define TILE(mr_, np_) tile(w, xq + (size_t)t * w->cols_p, xs + t, mr_, p, np_, r1, y + (size_t)t * w->rows)
#define TILES_NP(np_)                        \
    switch (mr) {                            \
    case 1: TILE(1, np_); break;             \
    case 2: TILE(2, np_); break;             \
    case 3: TILE(3, np_); break;             \
    case 4: TILE(4, np_); break;             \
    case 5: TILE(5, np_); break;             \
    default: TILE(6, np_); break;            \
    }

TARGET static void gemm_vnni(const i8mat *w, const uint8_t *xq, const float *xs, int T, int r0, int r1, float *y)
{
    int p_end = (r1 + 15) / 16;
    for (int p = r0 / 16; p < p_end; p += NP) {
        int np = p_end - p < NP ? p_end - p : NP;
        for (int t = 0; t < T; t += MR) {
            int mr = T - t < MR ? T - t : MR;
            switch (np) {
            case 1: TILES_NP(1) break;
            case 2: TILES_NP(2) break;
            case 3: TILES_NP(3) break;
            default: TILES_NP(4) break;
            }
        }
    }
}

/* i8_quantize_rows with offset, 16 floats at a time: cvtps rounds half to even like nearbyintf */
TARGET static void quant_vnni(const float *x, int T, int cols, int cols_p, uint8_t *xq, float *xs)
{
    int n16 = cols & ~15;
    const __m512 lim = _mm512_set1_ps(127.0f);
    for (int t = 0; t < T; t++) {
        const float *r = x + (size_t)t * cols;
        uint8_t *q = xq + (size_t)t * cols_p;
        __m512 mx = _mm512_setzero_ps();
        for (int c = 0; c < n16; c += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(r + c)));
        float amax = _mm512_reduce_max_ps(mx);
        for (int c = n16; c < cols; c++) amax = fmaxf(amax, fabsf(r[c]));
        float inv = amax > 0 ? 127.0f / amax : 0.0f;
        __m512 vi = _mm512_set1_ps(inv);
        for (int c = 0; c < n16; c += 16) {
            __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(r + c), vi), _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim);
            __m512i iv = _mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(128));
            _mm_storeu_si128((__m128i *)(q + c), _mm512_cvtepi32_epi8(iv));
        }
        for (int c = n16; c < cols; c++) {
            float v = nearbyintf(r[c] * inv);
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            q[c] = (uint8_t)(int)(v + 128.0f);
        }
        for (int c = cols; c < cols_p; c++) q[c] = 128;
        xs[t] = amax / 127.0f;
    }
}

const i8_kernels *i8_kernels_vnni(void)
{
    static const i8_kernels k = {"avx512vnni", true, gemm_vnni, quant_vnni};
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
          __builtin_cpu_supports("avx512vnni")))
        return NULL;
    return &k;
}

#else
const i8_kernels *i8_kernels_vnni(void) { return NULL; }
#endif
