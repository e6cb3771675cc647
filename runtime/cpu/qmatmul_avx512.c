/* AVX-512 quantized products: the AVX2 scheme on 16-float vectors. int8: 64 columns an iteration;
 * 4-bit: 16 bytes (32 columns) unpacked to bytes and widened into two vectors. One row of x keeps
 * independent accumulators; several rows reuse each dequantized chunk for all of them. */
#include "runtime/cpu/qmatmul.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

TARGET static inline __m512 i8x16_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }

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

TARGET static void rows8_avx512(const qmat *w, int r0, int r1, const float *x, const float *xsum, int T, float *y)
{
    (void)xsum;
    int n = w->cols, n64 = n & ~63;
    for (int r = r0; r < r1; r++) {
        const int8_t *q = (const int8_t *)w->q + (size_t)r * n;
        if (T == 1) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < n64; c += 64) {
                a0 = _mm512_fmadd_ps(i8x16_to_ps(_mm_loadu_si128((const __m128i *)(q + c))), _mm512_loadu_ps(x + c), a0);
                a1 = _mm512_fmadd_ps(i8x16_to_ps(_mm_loadu_si128((const __m128i *)(q + c + 16))), _mm512_loadu_ps(x + c + 16), a1);
                a2 = _mm512_fmadd_ps(i8x16_to_ps(_mm_loadu_si128((const __m128i *)(q + c + 32))), _mm512_loadu_ps(x + c + 32), a2);
                a3 = _mm512_fmadd_ps(i8x16_to_ps(_mm_loadu_si128((const __m128i *)(q + c + 48))), _mm512_loadu_ps(x + c + 48), a3);
            }
            float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
            for (int c = n64; c < n; c++) s += (float)q[c] * x[c];
            y[r] = s * w->scale[r];
            continue;
        }
        __m512 acc[QMAT_MAX_T];
        for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
        for (int c = 0; c < n64; c += 64) {
            __m512 w0 = i8x16_to_ps(_mm_loadu_si128((const __m128i *)(q + c))), w1 = i8x16_to_ps(_mm_loadu_si128((const __m128i *)(q + c + 16)));
            __m512 w2 = i8x16_to_ps(_mm_loadu_si128((const __m128i *)(q + c + 32))), w3 = i8x16_to_ps(_mm_loadu_si128((const __m128i *)(q + c + 48)));
            for (int t = 0; t < T; t++) {
                const float *xt = x + (size_t)t * n + c;
                __m512 s = _mm512_mul_ps(w0, _mm512_loadu_ps(xt));
                s = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xt + 16), s);
                s = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xt + 32), s);
                acc[t] = _mm512_add_ps(acc[t], _mm512_fmadd_ps(w3, _mm512_loadu_ps(xt + 48), s));
            }
        }
        for (int t = 0; t < T; t++) {
            float s = _mm512_reduce_add_ps(acc[t]);
            for (int c = n64; c < n; c++) s += (float)q[c] * x[(size_t)t * n + c];
            y[(size_t)t * w->rows + r] = s * w->scale[r];
        }
    }
}

/* One row of x (decode). The T-generic loop below is latency-bound and spends its shuffles
 * interleaving nibbles; here x is deinterleaved once a call instead (each 32 columns as their 16
 * even then 16 odd values), so 16 packed bytes widen to 16 lanes whose low nibbles are the even
 * columns and high nibbles the odd ones: one shuffle for 32 weights. Symmetric nibbles are read
 * as unsigned (n ^ 8 = v + 8) and the 8 * sum(x) of each group taken off once. Four independent
 * accumulators over 64 columns a step. */
TARGET static void rows4_avx512_t1(const qmat *w, int r0, int r1, const float *x, const float *xsum, float *y)
{
    int n = w->cols, G = w->group, ng = n / G, is_signed = !w->zero;
    float *xd = malloc(((size_t)n + (size_t)ng) * sizeof *xd), *gs = xd + n;
    if (!xd) { /* fall back to the scalar reference's arithmetic */
        qmat_kernels_ref()->rows4(w, r0, r1, x, xsum, 1, y);
        return;
    }
    for (int c = 0; c < n; c += 32)
        for (int i = 0; i < 16; i++) xd[c + i] = x[c + 2 * i], xd[c + 16 + i] = x[c + 2 * i + 1];
    for (int g = 0; g < ng; g++) {
        float sum = 0;
        for (int c = g * G; c < (g + 1) * G; c++) sum += x[c];
        gs[g] = sum;
    }
    const __m512i m15 = _mm512_set1_epi32(15);
    const __m128i flip = _mm_set1_epi8((char)0x88);
    for (int r = r0; r < r1; r++) {
        const uint8_t *q = (const uint8_t *)w->q + (size_t)r * (n / 2);
        const float *sc = w->scale + (size_t)r * ng;
        float total = 0;
        for (int g = 0; g < ng; g++) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            int c = g * G, end = c + G;
            for (; c + 64 <= end; c += 64) {
                __m128i b0 = _mm_loadu_si128((const __m128i *)(q + c / 2)), b1 = _mm_loadu_si128((const __m128i *)(q + c / 2 + 16));
                if (is_signed) b0 = _mm_xor_si128(b0, flip), b1 = _mm_xor_si128(b1, flip);
                __m512i d0 = _mm512_cvtepu8_epi32(b0), d1 = _mm512_cvtepu8_epi32(b1);
                a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(d0, m15)), _mm512_loadu_ps(xd + c), a0);
                a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(d0, 4)), _mm512_loadu_ps(xd + c + 16), a1);
                a2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(d1, m15)), _mm512_loadu_ps(xd + c + 32), a2);
                a3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(d1, 4)), _mm512_loadu_ps(xd + c + 48), a3);
            }
            if (c < end) { /* group 32 */
                __m128i b0 = _mm_loadu_si128((const __m128i *)(q + c / 2));
                if (is_signed) b0 = _mm_xor_si128(b0, flip);
                __m512i d0 = _mm512_cvtepu8_epi32(b0);
                a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(d0, m15)), _mm512_loadu_ps(xd + c), a0);
                a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(d0, 4)), _mm512_loadu_ps(xd + c + 16), a1);
            }
            float dot = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
            float z = is_signed ? 8.0f : (float)w->zero[(size_t)r * ng + g];
            total += sc[g] * (dot - z * gs[g]);
        }
        y[r] = total;
    }
    free(xd);
}

TARGET static void rows4_avx512(const qmat *w, int r0, int r1, const float *x, const float *xsum, int T, float *y)
{
    if (T == 1) {
        rows4_avx512_t1(w, r0, r1, x, xsum, y);
        return;
    }
    int n = w->cols, ng = n / w->group, is_signed = !w->zero;
    for (int r = r0; r < r1; r++) {
        const uint8_t *q = (const uint8_t *)w->q + (size_t)r * (n / 2);
        const float *sc = w->scale + (size_t)r * ng;
        __m512 total[QMAT_MAX_T], acc[QMAT_MAX_T];
        float corr[QMAT_MAX_T] = {0};
        for (int t = 0; t < T; t++) total[t] = _mm512_setzero_ps();
        for (int g = 0; g < ng; g++) {
            for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
            for (int c = g * w->group; c < (g + 1) * w->group; c += 32) {
                __m128i va, vb;
                unpack32(q + c / 2, is_signed, &va, &vb);
                __m512 w0 = i8x16_to_ps(va), w1 = i8x16_to_ps(vb);
                for (int t = 0; t < T; t++) {
                    const float *xt = x + (size_t)t * n + c;
                    acc[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xt + 16), _mm512_fmadd_ps(w0, _mm512_loadu_ps(xt), acc[t]));
                }
            }
            __m512 s = _mm512_set1_ps(sc[g]);
            for (int t = 0; t < T; t++) {
                total[t] = _mm512_fmadd_ps(acc[t], s, total[t]);
                if (w->zero) corr[t] += sc[g] * (float)w->zero[(size_t)r * ng + g] * xsum[(size_t)t * ng + g];
            }
        }
        for (int t = 0; t < T; t++) y[(size_t)t * w->rows + r] = _mm512_reduce_add_ps(total[t]) - corr[t];
    }
}

const qmat_kernels *qmat_kernels_avx512(void)
{
    static const qmat_kernels k = {"avx512", rows8_avx512, rows4_avx512};
    return &k;
}

#else
const qmat_kernels *qmat_kernels_avx512(void) { return NULL; }
#endif
