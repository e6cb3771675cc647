/* AVX-512 VNNI kernels of the int8-activation products (qmatmul_x8.h). 4-bit: one 64-byte load
 * is 128 columns of a weight row; the low and high nibbles (and + shift, no shuffle) meet the even
 * and odd halves of x's chunk in two vpdpbusd (u8 weights x s8 activations), the accumulator
 * starting at -z * (the lane's activation sum) so the zero point costs nothing in the loop; one
 * conversion to float and one FMA a chunk apply the 16 lanes' block scales times the group scales.
 * int8: vpdpbusd wants unsigned bytes first, so it takes |w| and x with w's sign. Each row of x
 * (up to QMAT_MAX_T) keeps its own accumulator and shares the unpacked weights; one row of x
 * (decode) runs four weight rows a step instead, in the engine's decode layout (qmatmul.h) one
 * sequential stream. Any row is read through qmat_row (either layout); weights are prefetched
 * 2 KiB ahead. */
#include "runtime/cpu/qmatmul_x8.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <stddef.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))
#define INLINE TARGET static inline __attribute__((always_inline))

/* The rule of qmatmul_x8.h on 16 floats at a time (cvtps rounds half to even like nearbyintf; a
 * block past cols is read through a zero mask), and the whole layout a 128-column chunk at a
 * time: the 4-bit even/odd order by two-source permutes of the int32 values, the lane sums by
 * vpdpbusd against ones, the lane scales by a permute of the 4 block scales. */
TARGET static void quant_vnni(const float *x, int cols, int cols_p, int bits, int8_t *q, float *s, float *lane, int32_t *nsum, int32_t *nsum8,
                              int8_t *scratch)
{
    (void)scratch;
    const __m512 lim = _mm512_set1_ps(127.0f), nlim = _mm512_set1_ps(-127.0f);
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i by4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3), by8 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i ones = _mm512_set1_epi8(1), zero = _mm512_setzero_si512();
    for (int c0 = 0; c0 < cols_p; c0 += QX_CHUNK) {
        __m512i v[8];
        for (int b = 0; b < 4; b++) {
            int cb = c0 + b * QX_BLOCK, n = cols - cb < 0 ? 0 : cols - cb > QX_BLOCK ? QX_BLOCK : cols - cb;
            __mmask16 m0 = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1), m1 = (__mmask16)(n >= 32 ? 0xffff : n > 16 ? (1u << (n - 16)) - 1 : 0);
            __m512 a = _mm512_maskz_loadu_ps(m0, x + cb), c = _mm512_maskz_loadu_ps(m1, x + cb + 16);
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
            __m512 inv = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
            v[2 * b] = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(a, inv), nlim), lim));
            v[2 * b + 1] = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(c, inv), nlim), lim));
            s[cb / QX_BLOCK] = amax / 127.0f;
        }
        const float *sb = s + c0 / QX_BLOCK;
        if (bits != 4) {
            for (int i = 0; i < 8; i++) _mm_storeu_si128((__m128i *)(q + c0 + 16 * i), _mm512_cvtepi32_epi8(v[i]));
            _mm512_storeu_ps(lane + c0 / 4, _mm512_permutexvar_ps(by8, _mm512_maskz_loadu_ps(3, sb)));
            _mm512_storeu_ps(lane + c0 / 4 + 16, _mm512_permutexvar_ps(by8, _mm512_maskz_loadu_ps(3, sb + 2)));
            continue;
        }
        for (int i = 0; i < 4; i++) {
            _mm_storeu_si128((__m128i *)(q + c0 + 16 * i), _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(v[2 * i], ev, v[2 * i + 1])));
            _mm_storeu_si128((__m128i *)(q + c0 + 64 + 16 * i), _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(v[2 * i], od, v[2 * i + 1])));
        }
        __m512i sum = _mm512_dpbusd_epi32(zero, ones, _mm512_loadu_si512((const void *)(q + c0)));
        sum = _mm512_dpbusd_epi32(sum, ones, _mm512_loadu_si512((const void *)(q + c0 + 64)));
        __m512i ns = _mm512_sub_epi32(zero, sum);
        _mm512_storeu_si512((void *)(nsum + c0 / 8), ns);
        _mm512_storeu_si512((void *)(nsum8 + c0 / 8), _mm512_slli_epi32(ns, 3));
        _mm512_storeu_ps(lane + c0 / 8, _mm512_permutexvar_ps(by4, _mm512_maskz_loadu_ps(15, sb)));
    }
}

/* Weight bytes prefetched ahead of the loads: the hardware prefetchers alone leave the loop
 * waiting on memory (measured: 4-bit 4096 x 4096 from 1.1 ms to 0.7 ms a product, cold); and a
 * second prefetch into L2 much further ahead keeps enough misses in flight for the loop to run at
 * the memory's speed (two threads, cold 4096 x 4096 int4: 19 -> 25 GB/s of a ~30 GB/s roofline) */
#define PREFETCH 2048
#define PREFETCH_FAR (32 << 10)
/* int8 weights: 64 columns a step; an int32 lane sums 4 columns, lane scales from x->lane */
INLINE void rows8_t(const qmat *w, int r0, int r1, const qxvec *x, float *y, const int T)
{
    int n = w->cols, cp = x->cols_p, L = x->lanes;
    const __m512i zero = _mm512_setzero_si512();
    for (int r = r0; r < r1; r++) {
        size_t st;
        const int8_t *wr = (const int8_t *)qmat_row(w, r, &st);
        __m512 accf[QMAT_MAX_T];
        for (int t = 0; t < T; t++) accf[t] = _mm512_setzero_ps();
        for (int c = 0; c < n; c += 64) {
            const int8_t *wq = wr + (size_t)(c / 64) * st; /* chunk c / 64 of the row */
            _mm_prefetch((const char *)wq + PREFETCH / 64 * st, _MM_HINT_T0);
            _mm_prefetch((const char *)wq + PREFETCH_FAR / 64 * st, _MM_HINT_T1);
            __m512i wv = n - c >= 64 ? _mm512_loadu_si512((const void *)wq) : _mm512_maskz_loadu_epi8(((__mmask64)1 << (n - c)) - 1, wq);
            __m512i aw = _mm512_abs_epi8(wv); /* -128 -> 0x80, which is 128 as the unsigned operand */
            __mmask64 neg = _mm512_movepi8_mask(wv);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m512i xv = _mm512_loadu_si512((const void *)(x->q + (size_t)t * cp + c));
                xv = _mm512_mask_sub_epi8(xv, neg, zero, xv); /* |x| <= 127: no overflow */
                __m512i acc = _mm512_dpbusd_epi32(zero, aw, xv);
                accf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(x->lane + (size_t)t * L + c / 4), accf[t]);
            }
        }
        for (int t = 0; t < T; t++) y[(size_t)t * w->rows + r] = _mm512_reduce_add_ps(accf[t]) * w->scale[r];
    }
}

/* int8 weights, one row of x (decode): four weight rows a step share the activation and lane
 * loads. Rows [r, end) in whole steps, returning where it stopped; with S streams the range is
 * cut in S equal runs of steps read side by side (S steps at once), the rest left to the caller.
 * Row after row each of the four rows prefetches the next step's same chunk and a bit beyond, and
 * into L2 four steps ahead. In the decode layout a step is one stream and a prefetch a line
 * ILV_PREFETCH ahead is all it takes (more, or into L2 too, measured slower); what it lacks is
 * misses in flight, which more streams at once give: four at once against one, cold 4096 x 4096
 * int4 on 2 threads, 1.13-1.26x (two: 1.15x; eight run out of registers, 0.8x). */
#define ILV_PREFETCH 2048
#define STREAMS 4
INLINE int rows8_steps(const qmat *w, int r, int end, const qxvec *x, float *y, const int ilv, const int S)
{
    int n = w->cols, runs = (end - r) / 4 / S;
    const __m512i zero = _mm512_setzero_si512();
    size_t ahead = (size_t)4 * n + PREFETCH, far = (size_t)16 * n, row_step = ilv ? QMAT_ILV_BYTES : (size_t)n, chunk_step = ilv ? 4 * 64 : 64;
    for (int k = 0; k < runs; k++) {
        int rr[STREAMS];
        const int8_t *wr[STREAMS];
        const float *scs[STREAMS]; /* in the decode layout from the group's header */
        for (int j = 0; j < S; j++) {
            size_t st;
            rr[j] = r + 4 * (k + j * runs);
            wr[j] = (const int8_t *)qmat_row(w, rr[j], &st);
            scs[j] = ilv ? (const float *)(const void *)qmat_group_header(w, rr[j]) : w->scale + rr[j];
        }
        __m512 f[4 * STREAMS];
#pragma GCC unroll 16
        for (int i = 0; i < 4 * S; i++) f[i] = _mm512_setzero_ps();
        for (int c = 0; c < n; c += 64) {
            __mmask64 m = n - c >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - c)) - 1;
            __m512i xv = _mm512_loadu_si512((const void *)(x->q + c));
            __m512 ls = _mm512_loadu_ps(x->lane + c / 4);
#pragma GCC unroll 16
            for (int i = 0; i < 4 * S; i++) {
                const int8_t *wq = wr[i / 4] + (size_t)(i % 4) * row_step + (size_t)(c / 64) * chunk_step;
                if (ilv) _mm_prefetch((const char *)wq + ILV_PREFETCH, _MM_HINT_T0);
                else {
                    _mm_prefetch((const char *)wq + ahead, _MM_HINT_T0);
                    _mm_prefetch((const char *)wq + far, _MM_HINT_T1);
                }
                __m512i wv = ilv ? _mm512_loadu_si512((const void *)wq) : _mm512_maskz_loadu_epi8(m, wq);
                __m512i xs = _mm512_mask_sub_epi8(xv, _mm512_movepi8_mask(wv), zero, xv);
                __m512i acc = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(wv), xs);
                f[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), ls, f[i]);
            }
        }
#pragma GCC unroll 16
        for (int i = 0; i < 4 * S; i++) y[rr[i / 4] + i % 4] = _mm512_reduce_add_ps(f[i]) * scs[i / 4][i % 4];
    }
    return r + 4 * S * runs;
}

INLINE void rows8_1(const qmat *w, int r0, int r1, const qxvec *x, float *y)
{
#define STEPS8(a, b, ilv) ((ilv) ? rows8_steps(w, rows8_steps(w, a, b, x, y, 1, STREAMS), b, x, y, 1, 1) : rows8_steps(w, a, b, x, y, 0, 1))
#define ONE8(a, b) rows8_t(w, a, b, x, y, 1)
    QX_GROUPED(STEPS8, ONE8);
#undef STEPS8
#undef ONE8
}

/* A per-group value over the 16 lanes of a 128-column chunk (lane k: columns 8k .. 8k + 7):
 * gc 0: one group (G a multiple of 128); 1: two (G = 64); 2: four (G = 32); n of them present */
INLINE __m512i spread_idx(int gc)
{
    return gc == 1 ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1) : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
}

INLINE __m512 spread_ps(const float *v, int n, int gc)
{
    if (gc == 0) return _mm512_set1_ps(v[0]);
    return _mm512_permutexvar_ps(spread_idx(gc), _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), v));
}

INLINE __m512i spread_u8(const uint8_t *v, int n, int gc)
{
    if (gc == 0) return _mm512_set1_epi32(v[0]);
    return _mm512_permutexvar_epi32(spread_idx(gc), _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8((__mmask16)((1u << n) - 1), v)));
}

/* Asymmetric zero points out of the loop: a row's term -z * (sum of x) is, group by group,
 * z_g * scale_g * xz_g with xz_g = sum over the group's lanes of lane scale * nsum (x's alone,
 * made once a call), so the loop spends no multiply and spread on it. Returns
 * sum_g z_g * scale_g * xz_g for one row. */
#define ZP_MAX_GROUPS 1024
INLINE float zero_point_term(const uint8_t *z, const float *sc, const float *xz, int ng)
{
    __m512 acc = _mm512_setzero_ps();
    for (int g = 0; g < ng; g += 16) {
        __mmask16 m = ng - g >= 16 ? 0xffff : (__mmask16)((1u << (ng - g)) - 1);
        __m512 zf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, z + g)));
        acc = _mm512_fmadd_ps(_mm512_mul_ps(zf, _mm512_maskz_loadu_ps(m, sc + g)), _mm512_maskz_loadu_ps(m, xz + g), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* xz_g of zero_point_term for groups of G columns (8 columns a lane) */
INLINE void zero_point_sums(const qxvec *x, int G, int ng, float *xz)
{
    int lanes = G / 8;
    for (int g = 0; g < ng; g++) {
        float s = 0;
        for (int l = g * lanes; l < (g + 1) * lanes; l++) s += x->lane[l] * (float)x->nsum[l];
        xz[g] = s;
    }
}

/* T rows of x, a weight row at a time; xz as in rows4_steps (only with T = 1) */
INLINE void rows4_t(const qmat *w, int r0, int r1, const qxvec *x, float *y, const int T, const int gc, const int asym, const float *xz)
{
    int n = w->cols, G = w->group, ng = n / G, cp = x->cols_p, L = x->lanes, per = gc == 0 ? 1 : gc == 1 ? 2 : 4;
    const __m512i m15 = _mm512_set1_epi8(15), eight = _mm512_set1_epi8(8);
    for (int r = r0; r < r1; r++) {
        size_t st;
        const uint8_t *wr = qmat_row(w, r, &st);
        const float *sc = w->scale + (size_t)r * ng;
        const uint8_t *zr = asym ? w->zero + (size_t)r * ng : NULL;
        __m512 accf[QMAT_MAX_T];
        for (int t = 0; t < T; t++) accf[t] = _mm512_setzero_ps();
        /* g0: the group at the chunk's first column, off: that column's place in it (no division
         * in the loop: G is only known at run time) */
        for (int c = 0, g0 = 0, off = 0; c < n; c += QX_CHUNK) {
            int nbytes = (n - c) / 2;
            const uint8_t *wq = wr + (size_t)(c / QX_CHUNK) * st; /* a line a chunk */
            _mm_prefetch((const char *)wq + PREFETCH / 64 * st, _MM_HINT_T0);
            _mm_prefetch((const char *)wq + PREFETCH_FAR / 64 * st, _MM_HINT_T1);
            __m512i wv = nbytes >= 64 ? _mm512_loadu_si512((const void *)wq) : _mm512_maskz_loadu_epi8(((__mmask64)1 << nbytes) - 1, wq);
            __m512i lo, hi;
            if (asym) lo = _mm512_and_si512(wv, m15), hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), m15);
            else { /* (n & 15) ^ 8: the two's complement nibble as q + 8, one ternary-logic op */
                lo = _mm512_ternarylogic_epi32(wv, m15, eight, 0x6a);
                hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(wv, 4), m15, eight, 0x6a);
            }
            int gn = ng - g0 < per ? ng - g0 : per;
            __m512 swv = spread_ps(sc + g0, gn, gc);
            __m512i zv = asym && !xz ? spread_u8(zr + g0, gn, gc) : _mm512_setzero_si512(); /* zero points in the loop */
            if (gc != 0) g0 += per;
            else if ((off += QX_CHUNK) == G) off = 0, g0++;
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const int8_t *xq = x->q + (size_t)t * cp + c;
                __m512i acc = asym ? xz ? _mm512_setzero_si512() : _mm512_mullo_epi32(zv, _mm512_loadu_si512((const void *)(x->nsum + (size_t)t * L + c / 8)))
                                   : _mm512_loadu_si512((const void *)(x->nsum8 + (size_t)t * L + c / 8));
                acc = _mm512_dpbusd_epi32(acc, lo, _mm512_loadu_si512((const void *)xq));
                acc = _mm512_dpbusd_epi32(acc, hi, _mm512_loadu_si512((const void *)(xq + 64)));
                __m512 ls = _mm512_mul_ps(_mm512_loadu_ps(x->lane + (size_t)t * L + c / 8), swv);
                accf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), ls, accf[t]);
            }
        }
        for (int t = 0; t < T; t++) y[(size_t)t * w->rows + r] = _mm512_reduce_add_ps(accf[t]) + (asym && xz ? zero_point_term(zr, sc, xz, ng) : 0.0f);
    }
}

/* One row of x (decode): NR weight rows a step share the activation loads, the lane scales and
 * sums and the loop's bookkeeping; rows, streams and prefetches as in rows8_steps. xz: the
 * zero-point sums of zero_point_term (asymmetric weights). */
#define NR 4
INLINE int rows4_steps(const qmat *w, int r, int end, const qxvec *x, float *y, const int gc, const int asym, const int ilv, const int S,
                       const float *xz)
{
    int runs = (end - r) / NR / S, n = w->cols, G = w->group, ng = n / G, per = gc == 0 ? 1 : gc == 1 ? 2 : 4, rb = n / 2;
    const __m512i m15 = _mm512_set1_epi8(15), eight = _mm512_set1_epi8(8);
    const int32_t *nsum = asym ? x->nsum : x->nsum8;
    /* row after row, each of the NR rows fetches the same chunk of the next step's rows and a bit
     * beyond: a plain PREFETCH ahead would land in the next of the rows being read (measured, one
     * thread, cold 4096 x 4096: 9.7 -> 12 GB/s) */
    size_t ahead = (size_t)NR * rb + PREFETCH, far = (size_t)4 * NR * rb; /* into L2, four steps ahead */
    size_t row_step = ilv ? QMAT_ILV_BYTES : (size_t)rb, chunk_step = ilv ? NR * 64 : 64;
    for (int k = 0; k < runs; k++) {
        int rr[STREAMS];
        const uint8_t *wr[STREAMS], *zs[STREAMS];
        const float *scs[STREAMS]; /* the step's scales (and zero points): in the decode layout, its group's header */
        for (int j = 0; j < S; j++) {
            size_t st;
            rr[j] = r + NR * (k + j * runs);
            wr[j] = qmat_row(w, rr[j], &st);
            const uint8_t *h = ilv ? qmat_group_header(w, rr[j]) : NULL;
            scs[j] = ilv ? (const float *)(const void *)h : w->scale + (size_t)rr[j] * ng;
            zs[j] = !asym ? NULL : ilv ? h + (size_t)NR * ng * sizeof(float) : w->zero + (size_t)rr[j] * ng;
        }
        __m512 f[NR * STREAMS];
#pragma GCC unroll 16
        for (int i = 0; i < NR * S; i++) f[i] = _mm512_setzero_ps();
        for (int c = 0, g0 = 0, off = 0; c < n; c += QX_CHUNK) {
            int nbytes = (n - c) / 2, gn = ng - g0 < per ? ng - g0 : per;
            __m512i xe = _mm512_loadu_si512((const void *)(x->q + c)), xo = _mm512_loadu_si512((const void *)(x->q + c + 64));
            __m512i ns = _mm512_loadu_si512((const void *)(nsum + c / 8));
            __m512 ls = _mm512_loadu_ps(x->lane + c / 8);
            __mmask64 m = nbytes >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << nbytes) - 1;
#pragma GCC unroll 16
            for (int i = 0; i < NR * S; i++) {
                const uint8_t *wq = wr[i / NR] + (size_t)(i % NR) * row_step + (size_t)(c / QX_CHUNK) * chunk_step;
                if (ilv) _mm_prefetch((const char *)wq + ILV_PREFETCH, _MM_HINT_T0);
                else {
                    _mm_prefetch((const char *)wq + ahead, _MM_HINT_T0);
                    _mm_prefetch((const char *)wq + far, _MM_HINT_T1);
                }
                __m512i v = ilv ? _mm512_loadu_si512((const void *)wq) : _mm512_maskz_loadu_epi8(m, wq), lo, hi;
                if (asym) lo = _mm512_and_si512(v, m15), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);
                else lo = _mm512_ternarylogic_epi32(v, m15, eight, 0x6a), hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), m15, eight, 0x6a);
                __m512i acc = asym ? _mm512_setzero_si512() : ns;
                acc = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc, lo, xe), hi, xo);
                f[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(ls, spread_ps(scs[i / NR] + (size_t)(i % NR) * ng + g0, gn, gc)), f[i]);
            }
            if (gc != 0) g0 += per;
            else if ((off += QX_CHUNK) == G) off = 0, g0++;
        }
#pragma GCC unroll 16
        for (int i = 0; i < NR * S; i++) {
            size_t row = (size_t)rr[i / NR] + i % NR;
            size_t at = (size_t)(i % NR) * ng;
            y[row] = _mm512_reduce_add_ps(f[i]) + (asym ? zero_point_term(zs[i / NR] + at, scs[i / NR] + at, xz, ng) : 0.0f);
        }
    }
    return r + NR * S * runs;
}

INLINE void rows4_1(const qmat *w, int r0, int r1, const qxvec *x, float *y, const int gc, const int asym)
{
    int ng = w->cols / w->group;
    float xz_buf[ZP_MAX_GROUPS], *xz = asym ? xz_buf : NULL;
    if (asym && ng > ZP_MAX_GROUPS) { /* rows of over 32768 columns: the zero points in the loop */
        rows4_t(w, r0, r1, x, y, 1, gc, asym, NULL);
        return;
    }
    if (xz) zero_point_sums(x, w->group, ng, xz);
#define STEPS4(a, b, ilv)                                                                                                   \
    ((ilv) ? rows4_steps(w, rows4_steps(w, a, b, x, y, gc, asym, 1, STREAMS, xz), b, x, y, gc, asym, 1, 1, xz) \
           : rows4_steps(w, a, b, x, y, gc, asym, 0, 1, xz))
#define ONE4(a, b) rows4_t(w, a, b, x, y, 1, gc, asym, xz)
    QX_GROUPED(STEPS4, ONE4);
#undef STEPS4
#undef ONE4
}

/* one specialization a row count of x (the accumulators stay in registers) */
#define BY_T(CALL)             \
    switch (x->T) {            \
    case 1: CALL(1); break;    \
    case 2: CALL(2); break;    \
    case 3: CALL(3); break;    \
    case 4: CALL(4); break;    \
    case 5: CALL(5); break;    \
    case 6: CALL(6); break;    \
    case 7: CALL(7); break;    \
    default: CALL(8); break;   \
    }

TARGET static void rows8_vnni(const qmat *w, int r0, int r1, const qxvec *x, float *y)
{
#define R8(T_) ((T_) == 1 ? rows8_1(w, r0, r1, x, y) : rows8_t(w, r0, r1, x, y, T_))
    BY_T(R8)
#undef R8
}

#define R4S0(T_) ((T_) == 1 ? rows4_1(w, r0, r1, x, y, 0, 0) : rows4_t(w, r0, r1, x, y, T_, 0, 0, NULL))
#define R4S1(T_) ((T_) == 1 ? rows4_1(w, r0, r1, x, y, 1, 0) : rows4_t(w, r0, r1, x, y, T_, 1, 0, NULL))
#define R4S2(T_) ((T_) == 1 ? rows4_1(w, r0, r1, x, y, 2, 0) : rows4_t(w, r0, r1, x, y, T_, 2, 0, NULL))
#define R4A0(T_) ((T_) == 1 ? rows4_1(w, r0, r1, x, y, 0, 1) : rows4_t(w, r0, r1, x, y, T_, 0, 1, NULL))
#define R4A1(T_) ((T_) == 1 ? rows4_1(w, r0, r1, x, y, 1, 1) : rows4_t(w, r0, r1, x, y, T_, 1, 1, NULL))
#define R4A2(T_) ((T_) == 1 ? rows4_1(w, r0, r1, x, y, 2, 1) : rows4_t(w, r0, r1, x, y, T_, 2, 1, NULL))

TARGET static void rows4_vnni(const qmat *w, int r0, int r1, const qxvec *x, float *y)
{
    int gc = w->group == 32 ? 2 : w->group == 64 ? 1 : 0;
    if (!w->zero) {
        if (gc == 0) BY_T(R4S0)
        else if (gc == 1) BY_T(R4S1)
        else BY_T(R4S2)
    } else {
        if (gc == 0) BY_T(R4A0)
        else if (gc == 1) BY_T(R4A1)
        else BY_T(R4A2)
    }
}

const qx_kernels *qx_kernels_vnni(void)
{
    static const qx_kernels k = {"avx512vnni", quant_vnni, rows8_vnni, rows4_vnni};
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
          __builtin_cpu_supports("avx512vnni")))
        return NULL;
    return &k;
}

#else
const qx_kernels *qx_kernels_vnni(void) { return NULL; }
#endif
