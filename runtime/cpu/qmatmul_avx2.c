/* AVX2 + FMA quantized products. int8: 32 columns an iteration, widened to f32 and fused
 * multiply-added; 4-bit: 16 bytes (32 columns) unpacked to bytes, then the same. One row of x
 * keeps four independent accumulators; several rows reuse each dequantized chunk for all of them. */
#include "runtime/cpu/qmatmul.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <stddef.h>

#define TARGET __attribute__((target("avx2,fma")))

TARGET static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TARGET static inline __m256 i8x8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

/* 32 int8 weights (or 32 unpacked nibbles) at p as four vectors of 8 floats */
TARGET static inline void load32(__m128i a, __m128i b, __m256 w[4])
{
    w[0] = i8x8_to_ps(a);
    w[1] = i8x8_to_ps(_mm_srli_si128(a, 8));
    w[2] = i8x8_to_ps(b);
    w[3] = i8x8_to_ps(_mm_srli_si128(b, 8));
}

/* 16 packed bytes -> cols 0..15 in *a and 16..31 in *b, as signed (two's complement) or 0..15 */
TARGET static inline void unpack32(const uint8_t *p, int is_signed, __m128i *a, __m128i *b)
{
    const __m128i m = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    __m128i x = _mm_loadu_si128((const __m128i *)p);
    __m128i lo = _mm_and_si128(x, m), hi = _mm_and_si128(_mm_srli_epi16(x, 4), m);
    *a = _mm_unpacklo_epi8(lo, hi);
    *b = _mm_unpackhi_epi8(lo, hi);
    if (is_signed) {
        *a = _mm_sub_epi8(_mm_xor_si128(*a, eight), eight);
        *b = _mm_sub_epi8(_mm_xor_si128(*b, eight), eight);
    }
}

/* sum over columns [c0, c1) (a multiple of 32 wide) of w·x for T rows of x into acc[t] */
TARGET static void rows8_avx2(const qmat *w, int r0, int r1, const float *x, const float *xsum, int T, float *y)
{
    (void)xsum;
    int n = w->cols, n32 = n & ~31;
    for (int r = r0; r < r1; r++) {
        const int8_t *q = (const int8_t *)w->q + (size_t)r * n;
        if (T == 1) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < n32; c += 32) {
                __m256 wv[4];
                load32(_mm_loadu_si128((const __m128i *)(q + c)), _mm_loadu_si128((const __m128i *)(q + c + 16)), wv);
                a0 = _mm256_fmadd_ps(wv[0], _mm256_loadu_ps(x + c), a0);
                a1 = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(x + c + 8), a1);
                a2 = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(x + c + 16), a2);
                a3 = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(x + c + 24), a3);
            }
            float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
            for (int c = n32; c < n; c++) s += (float)q[c] * x[c];
            y[r] = s * w->scale[r];
            continue;
        }
        __m256 acc[QMAT_MAX_T];
        for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
        for (int c = 0; c < n32; c += 32) {
            __m256 wv[4];
            load32(_mm_loadu_si128((const __m128i *)(q + c)), _mm_loadu_si128((const __m128i *)(q + c + 16)), wv);
            for (int t = 0; t < T; t++) {
                const float *xt = x + (size_t)t * n + c;
                __m256 s = _mm256_mul_ps(wv[0], _mm256_loadu_ps(xt));
                s = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(xt + 8), s);
                s = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(xt + 16), s);
                acc[t] = _mm256_add_ps(acc[t], _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(xt + 24), s));
            }
        }
        for (int t = 0; t < T; t++) {
            float s = hsum(acc[t]);
            for (int c = n32; c < n; c++) s += (float)q[c] * x[(size_t)t * n + c];
            y[(size_t)t * w->rows + r] = s * w->scale[r];
        }
    }
}

TARGET static void rows4_avx2(const qmat *w, int r0, int r1, const float *x, const float *xsum, int T, float *y)
{
    int n = w->cols, ng = n / w->group, is_signed = !w->zero;
    for (int r = r0; r < r1; r++) {
        const uint8_t *q = (const uint8_t *)w->q + (size_t)r * (n / 2);
        const float *sc = w->scale + (size_t)r * ng;
        if (T == 1) {
            __m256 total = _mm256_setzero_ps();
            float corr = 0;
            for (int g = 0; g < ng; g++) {
                __m256 a0 = _mm256_setzero_ps(), a1 = a0;
                for (int c = g * w->group; c < (g + 1) * w->group; c += 32) {
                    __m128i va, vb;
                    __m256 wv[4];
                    unpack32(q + c / 2, is_signed, &va, &vb);
                    load32(va, vb, wv);
                    a0 = _mm256_fmadd_ps(wv[0], _mm256_loadu_ps(x + c), a0);
                    a1 = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(x + c + 8), a1);
                    a0 = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(x + c + 16), a0);
                    a1 = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(x + c + 24), a1);
                }
                total = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), _mm256_set1_ps(sc[g]), total);
                if (w->zero) corr += sc[g] * (float)w->zero[(size_t)r * ng + g] * xsum[g];
            }
            y[r] = hsum(total) - corr;
            continue;
        }
        __m256 total[QMAT_MAX_T], acc[QMAT_MAX_T];
        float corr[QMAT_MAX_T] = {0};
        for (int t = 0; t < T; t++) total[t] = _mm256_setzero_ps();
        for (int g = 0; g < ng; g++) {
            for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
            for (int c = g * w->group; c < (g + 1) * w->group; c += 32) {
                __m128i va, vb;
                __m256 wv[4];
                unpack32(q + c / 2, is_signed, &va, &vb);
                load32(va, vb, wv);
                for (int t = 0; t < T; t++) {
                    const float *xt = x + (size_t)t * n + c;
                    __m256 s = _mm256_mul_ps(wv[0], _mm256_loadu_ps(xt));
                    s = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(xt + 8), s);
                    s = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(xt + 16), s);
                    acc[t] = _mm256_add_ps(acc[t], _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(xt + 24), s));
                }
            }
            __m256 s = _mm256_set1_ps(sc[g]);
            for (int t = 0; t < T; t++) {
                total[t] = _mm256_fmadd_ps(acc[t], s, total[t]);
                if (w->zero) corr[t] += sc[g] * (float)w->zero[(size_t)r * ng + g] * xsum[(size_t)t * ng + g];
            }
        }
        for (int t = 0; t < T; t++) y[(size_t)t * w->rows + r] = hsum(total[t]) - corr[t];
    }
}

const qmat_kernels *qmat_kernels_avx2(void)
{
    static const qmat_kernels k = {"avx2", rows8_avx2, rows4_avx2};
    return &k;
}

#else
const qmat_kernels *qmat_kernels_avx2(void) { return NULL; }
#endif
