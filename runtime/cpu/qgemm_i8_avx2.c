/* AVX2 w8a8 kernel: tiles of up to 4 tokens by one panel (16 rows, two 8-row halves). maddubs
 * multiplies u8 by s8 and saturates pairs to int16, so the activation's sign moves onto the weight
 * (|q| · sign(w, q); both within ±127, a pair ≤ 32258 fits), then madd widens pairs to int32. */
#include "runtime/cpu/qgemm_i8.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define TARGET __attribute__((target("avx2,fma")))
#define MR 4

TARGET static inline __attribute__((always_inline)) void tile(const i8mat *w, const uint8_t *xq, const float *xs, int mr, int p, int r1, float *y)
{
    int kb = w->cols_p / 4;
    const int8_t *pw = w->w + (size_t)p * kb * 64;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[MR][2];
#pragma GCC unroll 4
    for (int t = 0; t < mr; t++) acc[t][0] = acc[t][1] = _mm256_setzero_si256();
    for (int k = 0; k < kb; k++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(pw + (size_t)k * 64)), b1 = _mm256_loadu_si256((const __m256i *)(pw + (size_t)k * 64 + 32));
#pragma GCC unroll 4
        for (int t = 0; t < mr; t++) {
            int32_t xv;
            memcpy(&xv, xq + (size_t)t * w->cols_p + (size_t)k * 4, 4);
            __m256i a = _mm256_set1_epi32(xv), ua = _mm256_abs_epi8(a);
            acc[t][0] = _mm256_add_epi32(acc[t][0], _mm256_madd_epi16(_mm256_maddubs_epi16(ua, _mm256_sign_epi8(b0, a)), ones));
            acc[t][1] = _mm256_add_epi32(acc[t][1], _mm256_madd_epi16(_mm256_maddubs_epi16(ua, _mm256_sign_epi8(b1, a)), ones));
        }
    }
    for (int h = 0; h < 2; h++) {
        int row0 = p * 16 + h * 8, n = r1 - row0 < 8 ? r1 - row0 : 8;
        if (n <= 0) break;
        float sbuf[8] = {0};
        memcpy(sbuf, w->scale + row0, (size_t)n * sizeof(float));
        __m256 sc = _mm256_loadu_ps(sbuf);
#pragma GCC unroll 4
        for (int t = 0; t < mr; t++) {
            __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[t][h]), _mm256_set1_ps(xs[t])), sc);
            float *out = y + (size_t)t * w->rows + row0;
            if (n == 8) {
                _mm256_storeu_ps(out, v);
            } else {
                float o[8];
                _mm256_storeu_ps(o, v);
                memcpy(out, o, (size_t)n * sizeof(float));
            }
        }
    }
}

TARGET static void gemm_avx2(const i8mat *w, const uint8_t *xq, const float *xs, int T, int r0, int r1, float *y)
{
    int p_end = (r1 + 15) / 16;
    for (int p = r0 / 16; p < p_end; p++)
        for (int t = 0; t < T; t += MR) {
            int mr = T - t < MR ? T - t : MR;
            const uint8_t *x = xq + (size_t)t * w->cols_p;
            float *yt = y + (size_t)t * w->rows;
            switch (mr) {
            case 1: tile(w, x, xs + t, 1, p, r1, yt); break;
            case 2: tile(w, x, xs + t, 2, p, r1, yt); break;
            case 3: tile(w, x, xs + t, 3, p, r1, yt); break;
            default: tile(w, x, xs + t, 4, p, r1, yt); break;
            }
        }
}

/* i8_quantize_rows (signed), 32 floats at a time: cvtps rounds half to even like nearbyintf; the
 * two packs interleave 128-bit lanes, which the final permute undoes */
TARGET static void quant_avx2(const float *x, int T, int cols, int cols_p, uint8_t *xq, float *xs)
{
    int n32 = cols & ~31;
    const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f), sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int t = 0; t < T; t++) {
        const float *r = x + (size_t)t * cols;
        uint8_t *q = xq + (size_t)t * cols_p;
        __m256 mx = _mm256_setzero_ps();
        for (int c = 0; c < n32; c += 8) mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(r + c)));
        float m8[8];
        _mm256_storeu_ps(m8, mx);
        float amax = 0;
        for (int i = 0; i < 8; i++) amax = fmaxf(amax, m8[i]);
        for (int c = n32; c < cols; c++) amax = fmaxf(amax, fabsf(r[c]));
        float inv = amax > 0 ? 127.0f / amax : 0.0f;
        __m256 vi = _mm256_set1_ps(inv);
        for (int c = 0; c < n32; c += 32) {
            __m256i v[4];
            for (int i = 0; i < 4; i++)
                v[i] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(r + c + 8 * i), vi), nlim), lim));
            __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
            _mm256_storeu_si256((__m256i *)(q + c), _mm256_permutevar8x32_epi32(b, perm));
        }
        for (int c = n32; c < cols; c++) {
            float v = nearbyintf(r[c] * inv);
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            q[c] = (uint8_t)(int)v;
        }
        for (int c = cols; c < cols_p; c++) q[c] = 0;
        xs[t] = amax / 127.0f;
    }
}

const i8_kernels *i8_kernels_avx2(void)
{
    static const i8_kernels k = {"avx2", false, gemm_avx2, quant_avx2};
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) return NULL;
    return &k;
}

#else
const i8_kernels *i8_kernels_avx2(void) { return NULL; }
#endif
