/* AVX2 kernels of the int8-activation products (qmatmul_x8.h): the VNNI scheme on 32-byte
 * vectors, each vpdpbusd spelled vpmaddubsw (u8 x s8 pairs to int16: at most 2 * 15 * 127 for
 * nibbles, 2 * 128 * 127 for int8 weights, so no saturation) then vpmaddwd by ones (int16 pairs
 * to int32). A 128-column chunk of 4-bit weights is two 32-byte halves; int8 weights take |w| and
 * x with w's sign (vpsignb). One row of x (decode) runs four weight rows a step with the VNNI
 * kernels' prefetches, and reads either layout of qmatmul.h as they do. */
#include "runtime/cpu/qmatmul_x8.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE TARGET static inline __attribute__((always_inline))
/* weight bytes prefetched ahead into L1, and far ahead into L2 (see qmatmul_x8_vnni.c) */
#define PREFETCH 2048

INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* the rule of qmatmul_x8.h, 8 floats at a time; a partial block is copied into zeros first */
TARGET static void quant_avx2(const float *x, int cols, int cols_p, int bits, int8_t *out, float *s, float *lane, int32_t *nsum, int32_t *nsum8,
                              int8_t *scratch)
{
    int8_t *q = bits == 4 ? scratch : out; /* column order */
    const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    float tmp[QX_BLOCK];
    for (int b = 0; b < cols_p / QX_BLOCK; b++) {
        int c0 = b * QX_BLOCK;
        const float *src = x + c0;
        if (c0 + QX_BLOCK > cols) {
            int n = cols - c0 < 0 ? 0 : cols - c0;
            memset(tmp, 0, sizeof tmp);
            if (n) memcpy(tmp, x + c0, (size_t)n * sizeof *tmp);
            src = tmp;
        }
        __m256 v[4], mx = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) v[i] = _mm256_loadu_ps(src + 8 * i), mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[i]));
        float amax = hmax(mx);
        __m256 inv = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
        __m256i qi[4];
        for (int i = 0; i < 4; i++) qi[i] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[i], inv), nlim), lim));
        /* int32 -> int16 -> int8 with saturating packs (values fit), then undo the lane interleave */
        __m256i p16a = _mm256_packs_epi32(qi[0], qi[1]), p16b = _mm256_packs_epi32(qi[2], qi[3]);
        __m256i p8 = _mm256_packs_epi16(p16a, p16b);
        p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + c0), p8);
        s[b] = amax / 127.0f;
    }
    qx_layout(cols_p, bits, q, out, s, lane, nsum, nsum8);
}

INLINE void rows8_t(const qmat *w, int r0, int r1, const qxvec *x, float *y, const int T)
{
    int n = w->cols, cp = x->cols_p, L = x->lanes;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r = r0; r < r1; r++) {
        size_t st;
        const int8_t *wr = (const int8_t *)qmat_row(w, r, &st);
        __m256 accf[QMAT_MAX_T];
        for (int t = 0; t < T; t++) accf[t] = _mm256_setzero_ps();
        for (int c = 0; c < n; c += 32) {
            const int8_t *wq = wr + (size_t)(c / 64) * st + c % 64;
            if (c % 64 == 0) _mm_prefetch((const char *)wq + PREFETCH / 64 * st, _MM_HINT_T0);
            __m256i wv;
            if (n - c >= 32) wv = _mm256_loadu_si256((const __m256i *)wq);
            else {
                int8_t tail[32] = {0};
                memcpy(tail, wq, (size_t)(n - c));
                wv = _mm256_loadu_si256((const __m256i *)tail);
            }
            __m256i aw = _mm256_abs_epi8(wv); /* -128 -> 0x80, which is 128 as the unsigned operand */
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m256i xv = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(x->q + (size_t)t * cp + c)), wv);
                __m256i acc = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xv), ones);
                accf[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(x->lane + (size_t)t * L + c / 4), accf[t]);
            }
        }
        for (int t = 0; t < T; t++) y[(size_t)t * w->rows + r] = hsum(accf[t]) * w->scale[r];
    }
}

/* int8 weights, one row of x (decode): four weight rows a step share the activation and lane
 * loads, rows [r, end) in whole steps (returns where it stopped). Row after row each prefetches
 * the same part of the next step's rows into L1 and of the rows four steps on into L2; in the
 * decode layout (one stream) a line ILV_PREFETCH ahead, as the VNNI kernels do. */
#define ILV_PREFETCH 2048
INLINE int rows8_steps(const qmat *w, int r, int end, const qxvec *x, float *y, const int ilv)
{
    int n = w->cols;
    const __m256i ones = _mm256_set1_epi16(1);
    size_t ahead = (size_t)4 * n + PREFETCH, far = (size_t)16 * n, row_step = ilv ? QMAT_ILV_BYTES : (size_t)n, chunk_step = ilv ? 4 * 64 : 64;
    if (n % 32 != 0) return r;
    for (; r + 4 <= end; r += 4) {
        size_t st;
        const int8_t *wr = (const int8_t *)qmat_row(w, r, &st);
        __m256 f[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) f[i] = _mm256_setzero_ps();
        for (int c = 0; c < n; c += 32) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x->q + c));
            __m256 ls = _mm256_loadu_ps(x->lane + c / 4);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                const int8_t *wq = wr + (size_t)i * row_step + (size_t)(c / 64) * chunk_step + c % 64;
                if (c % 64 == 0) {
                    if (ilv) _mm_prefetch((const char *)wq + ILV_PREFETCH, _MM_HINT_T0);
                    else {
                        _mm_prefetch((const char *)wq + ahead, _MM_HINT_T0);
                        _mm_prefetch((const char *)wq + far, _MM_HINT_T1);
                    }
                }
                __m256i wv = _mm256_loadu_si256((const __m256i *)wq);
                __m256i acc = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv)), ones);
                f[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), ls, f[i]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) y[r + i] = hsum(f[i]) * w->scale[r + i];
    }
    return r;
}

INLINE void rows8_1(const qmat *w, int r0, int r1, const qxvec *x, float *y)
{
#define STEPS8(a, b, ilv) rows8_steps(w, a, b, x, y, ilv)
#define ONE8(a, b) rows8_t(w, a, b, x, y, 1)
    QX_GROUPED(STEPS8, ONE8);
#undef STEPS8
#undef ONE8
}

/* a per-group value over the 8 lanes of 64 columns (lane k: columns 8k .. 8k + 7) starting in
 * group g: one group, or two of 32 (the second may lie past the row's end) */
INLINE __m256 spread_ps(const float *v, int g, int G, int ng)
{
    if (G != 32) return _mm256_set1_ps(v[g]);
    return _mm256_setr_m128(_mm_set1_ps(v[g]), _mm_set1_ps(v[g + 1 < ng ? g + 1 : g]));
}

INLINE __m256i spread_u8(const uint8_t *v, int g, int G, int ng)
{
    if (G != 32) return _mm256_set1_epi32(v[g]);
    return _mm256_setr_m128i(_mm_set1_epi32(v[g]), _mm_set1_epi32(v[g + 1 < ng ? g + 1 : g]));
}

INLINE void rows4_t(const qmat *w, int r0, int r1, const qxvec *x, float *y, const int T, const int asym)
{
    int n = w->cols, G = w->group, ng = n / G, cp = x->cols_p, L = x->lanes;
    const __m256i m15 = _mm256_set1_epi8(15), flip = _mm256_set1_epi8((char)0x88), ones = _mm256_set1_epi16(1);
    for (int r = r0; r < r1; r++) {
        size_t st;
        const uint8_t *wr = qmat_row(w, r, &st);
        const float *sc = w->scale + (size_t)r * ng;
        const uint8_t *zr = asym ? w->zero + (size_t)r * ng : NULL;
        __m256 accf[QMAT_MAX_T];
        for (int t = 0; t < T; t++) accf[t] = _mm256_setzero_ps();
        /* g: the group at column c, off: c's place in it (no division in the loop) */
        for (int c = 0, g = 0, off = 0; c < n; c += 64) { /* half a chunk: 32 bytes */
            int h = (c / 64) & 1, c0 = c - 64 * h; /* the chunk's first column */
            const uint8_t *wq = wr + (size_t)(c / QX_CHUNK) * st + 32 * h;
            if (!h) _mm_prefetch((const char *)wq + PREFETCH / 64 * st, _MM_HINT_T0); /* a line a chunk */
            __m256i wv = n - c >= 64 ? _mm256_loadu_si256((const __m256i *)wq)
                                     : _mm256_inserti128_si256(_mm256_setzero_si256(), _mm_loadu_si128((const __m128i *)wq), 0);
            if (!asym) wv = _mm256_xor_si256(wv, flip); /* two's complement nibble -> q + 8 */
            __m256i lo = _mm256_and_si256(wv, m15), hi = _mm256_and_si256(_mm256_srli_epi16(wv, 4), m15);
            __m256 swv = spread_ps(sc, g, G, ng);
            __m256i zv = asym ? spread_u8(zr, g, G, ng) : _mm256_setzero_si256();
            if (G == 32) g += 2;
            else if ((off += 64) == G) off = 0, g++;
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const int8_t *xq = x->q + (size_t)t * cp + c0 + 32 * h;
                __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)xq)),
                                             _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xq + 64))));
                __m256i ns = _mm256_loadu_si256((const __m256i *)(x->nsum + (size_t)t * L + c / 8));
                __m256i acc = _mm256_add_epi32(_mm256_madd_epi16(p, ones), asym ? _mm256_mullo_epi32(zv, ns) : _mm256_slli_epi32(ns, 3));
                __m256 ls = _mm256_mul_ps(_mm256_loadu_ps(x->lane + (size_t)t * L + c / 8), swv);
                accf[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), ls, accf[t]);
            }
        }
        for (int t = 0; t < T; t++) y[(size_t)t * w->rows + r] = hsum(accf[t]);
    }
}

/* One row of x (decode): four weight rows a step share the activation loads, lane scales and
 * sums, with the prefetches of rows8_steps; rows [r, end) in whole steps (rows of a length not a
 * multiple of 128 all go through rows4_t) */
INLINE int rows4_steps(const qmat *w, int r, int end, const qxvec *x, float *y, const int asym, const int ilv)
{
    int n = w->cols, G = w->group, ng = n / G, rb = n / 2;
    const __m256i m15 = _mm256_set1_epi8(15), flip = _mm256_set1_epi8((char)0x88), ones = _mm256_set1_epi16(1);
    size_t ahead = (size_t)4 * rb + PREFETCH, far = (size_t)16 * rb, row_step = ilv ? QMAT_ILV_BYTES : (size_t)rb, chunk_step = ilv ? 4 * 64 : 64;
    if (n % QX_CHUNK == 0)
        for (; r + 4 <= end; r += 4) {
            size_t st;
            const uint8_t *wr = qmat_row(w, r, &st);
            const float *sr = w->scale + (size_t)r * ng;
            const uint8_t *zr = asym ? w->zero + (size_t)r * ng : NULL;
            __m256 f[4];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) f[i] = _mm256_setzero_ps();
            for (int c = 0, g = 0, off = 0; c < n; c += 64) {
                int h = (c / 64) & 1, c0 = c - 64 * h;
                const int8_t *xq = x->q + c0 + 32 * h;
                __m256i xe = _mm256_loadu_si256((const __m256i *)xq), xo = _mm256_loadu_si256((const __m256i *)(xq + 64));
                __m256i ns = _mm256_loadu_si256((const __m256i *)(x->nsum + c / 8));
                __m256 ls = _mm256_loadu_ps(x->lane + c / 8);
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++) {
                    const uint8_t *wq = wr + (size_t)i * row_step + (size_t)(c / QX_CHUNK) * chunk_step + 32 * h;
                    if (!h && ilv) _mm_prefetch((const char *)wq + ILV_PREFETCH, _MM_HINT_T0);
                    else if (!h) {
                        _mm_prefetch((const char *)wq + ahead, _MM_HINT_T0);
                        _mm_prefetch((const char *)wq + far, _MM_HINT_T1);
                    }
                    __m256i wv = _mm256_loadu_si256((const __m256i *)wq);
                    if (!asym) wv = _mm256_xor_si256(wv, flip);
                    __m256i lo = _mm256_and_si256(wv, m15), hi = _mm256_and_si256(_mm256_srli_epi16(wv, 4), m15);
                    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xe), _mm256_maddubs_epi16(hi, xo));
                    __m256i zt = asym ? _mm256_mullo_epi32(spread_u8(zr + (size_t)i * ng, g, G, ng), ns) : _mm256_slli_epi32(ns, 3);
                    __m256i acc = _mm256_add_epi32(_mm256_madd_epi16(p, ones), zt);
                    f[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(ls, spread_ps(sr + (size_t)i * ng, g, G, ng)), f[i]);
                }
                if (G == 32) g += 2;
                else if ((off += 64) == G) off = 0, g++;
            }
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) y[r + i] = hsum(f[i]);
        }
    return r;
}

INLINE void rows4_1(const qmat *w, int r0, int r1, const qxvec *x, float *y, const int asym)
{
#define STEPS4(a, b, ilv) rows4_steps(w, a, b, x, y, asym, ilv)
#define ONE4(a, b) rows4_t(w, a, b, x, y, 1, asym)
    QX_GROUPED(STEPS4, ONE4);
#undef STEPS4
#undef ONE4
}

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

TARGET static void rows8_avx2(const qmat *w, int r0, int r1, const qxvec *x, float *y)
{
#define R8(T_) ((T_) == 1 ? rows8_1(w, r0, r1, x, y) : rows8_t(w, r0, r1, x, y, T_))
    BY_T(R8)
#undef R8
}

TARGET static void rows4_avx2(const qmat *w, int r0, int r1, const qxvec *x, float *y)
{
#define R4S(T_) ((T_) == 1 ? rows4_1(w, r0, r1, x, y, 0) : rows4_t(w, r0, r1, x, y, T_, 0))
#define R4A(T_) ((T_) == 1 ? rows4_1(w, r0, r1, x, y, 1) : rows4_t(w, r0, r1, x, y, T_, 1))
    if (!w->zero) BY_T(R4S)
    else BY_T(R4A)
#undef R4S
#undef R4A
}

const qx_kernels *qx_kernels_avx2(void)
{
    static const qx_kernels k = {"avx2", quant_avx2, rows8_avx2, rows4_avx2};
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return NULL;
    return &k;
}

#else
const qx_kernels *qx_kernels_avx2(void) { return NULL; }
#endif
