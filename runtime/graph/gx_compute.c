/* Compute helpers shared by the kernels: the matrix product split over smelt's thread pool, a
 * cost-gated parallel loop, and a vectorized f32 exp (Softmax, Sigmoid, Exp).
 *
 * OpenBLAS runs single-threaded inside the executor (smelt_graph_load sets it): one pool, no two
 * sets of threads spinning against each other. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/threads.h"
#include "runtime/graph/gx.h"

/* Work below this (about a few tens of microseconds on one core) stays on the calling thread. */
#define GX_PAR_MIN_WORK 40000

void gx_parallel(int64_t n, int64_t cost_per_item, void (*fn)(void *ctx, int64_t begin, int64_t end), void *ctx)
{
    if (n <= 0) return;
    if (cost_per_item < 1) cost_per_item = 1;
    int64_t grain = (GX_PAR_MIN_WORK + cost_per_item - 1) / cost_per_item;
    if (n < 2 * grain || smelt_thread_count() < 2) {
        fn(ctx, 0, n);
        return;
    }
    smelt_parallel_for(n, grain, fn, ctx);
}

typedef struct {
    bool ta, tb, by_rows;
    int64_t M, N, K, lda, ldb, ldc, parts;
    float alpha, beta;
    const float *A, *B;
    float *C;
} sgemm_job;

static void sgemm_part(void *ctx, int64_t begin, int64_t end)
{
    const sgemm_job *j = ctx;
    for (int64_t p = begin; p < end; p++) {
        int64_t total = j->by_rows ? j->M : j->N, align = j->by_rows ? 4 : 16;
        int64_t per = ((total + j->parts - 1) / j->parts + align - 1) / align * align;
        int64_t b = p * per, e = b + per < total ? b + per : total;
        if (b >= e) continue;
        const float *A = j->A, *B = j->B;
        float *C = j->C;
        int64_t M = j->M, N = j->N;
        if (j->by_rows) {
            A += j->ta ? b : b * j->lda;
            C += b * j->ldc;
            M = e - b;
        } else {
            B += j->tb ? b * j->ldb : b;
            C += b;
            N = e - b;
        }
        cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)j->K, j->alpha, A,
                    (int)j->lda, B, (int)j->ldb, j->beta, C, (int)j->ldc);
    }
}

void gx_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) return;
    int th = smelt_thread_count();
    sgemm_job j = {ta, tb, true, M, N, K, lda, ldb, ldc, 1, alpha, beta, A, B, C};
    double flops = 2.0 * (double)M * (double)N * (double)K;
    if (th >= 2 && flops >= 1.5e6) {
        /* each part packs its share of one operand and all of the other: split the larger one
         * (a [256, 128] x [128, 4096] head: by columns, so no thread packs all of B) */
        bool rows = M >= 16 * (int64_t)th, cols = N >= 64 * (int64_t)th;
        if (cols && (!rows || N > M)) j.parts = th, j.by_rows = false;
        else if (rows) j.parts = th;
    }
    if (j.parts > 1) smelt_parallel_for(j.parts, 1, sgemm_part, &j);
    else sgemm_part(&j, 0, 1);
}

/* ---- exp ---- */

/* Cephes' expf on W-lane vectors: n = round(x log2 e), r = x - n ln 2 (in two parts), exp(r) by a
 * degree-6 polynomial, times 2^n applied in two halves so results down to the denormals stay
 * exact; below -103.97 gives 0, above 88.72 inf, NaN stays NaN. Generated for SSE2 (4 lanes, the
 * x86-64 baseline the build targets) and AVX2 (8 lanes, chosen at run time). */
#define GX_EXP_IMPL(ATTR, VF, VI, W, NAME)                                                        \
    ATTR static inline VF NAME##_sel(VI m, VF a, VF b) { return (VF)((m & (VI)a) | (~m & (VI)b)); } \
    ATTR static inline VF NAME##_v(VF x)                                                          \
    {                                                                                             \
        const VF zero = {0}, lo = zero - 104.0f, hi = zero + 88.8f;                               \
        VF xc = NAME##_sel(x < lo, lo, x);                                                        \
        xc = NAME##_sel(xc > hi, hi, xc);                                                         \
        xc = NAME##_sel(xc == xc, xc, zero); /* NaN: computed as 0, replaced below */             \
        VF z = xc * 1.44269504088896341f + 0.5f;                                                  \
        VI n = __builtin_convertvector(z, VI);                                                    \
        VF nf = __builtin_convertvector(n, VF);                                                   \
        n += (VI)(nf > z); /* truncation went up: -1 gives the floor */                           \
        nf = __builtin_convertvector(n, VF);                                                      \
        VF r = xc - nf * 0.693359375f - nf * -2.12194440e-4f;                                     \
        VF p = zero + 1.9875691500E-4f;                                                           \
        p = p * r + 1.3981999507E-3f;                                                             \
        p = p * r + 8.3333519073E-3f;                                                             \
        p = p * r + 4.1665795894E-2f;                                                             \
        p = p * r + 1.6666665459E-1f;                                                             \
        p = p * r + 5.0000001201E-1f;                                                             \
        VF y = p * r * r + r + 1.0f;                                                              \
        VI n1 = n >> 1, n2 = n - n1;                                                              \
        y = y * (VF)((n1 + 127) << 23) * (VF)((n2 + 127) << 23);                                  \
        y = NAME##_sel(x < -103.97f, zero, y);                                                    \
        y = NAME##_sel(x > 88.7228394f, zero + INFINITY, y);                                      \
        return NAME##_sel(x == x, y, x);                                                          \
    }                                                                                             \
    ATTR static void NAME(const float *x, float *y, int64_t n)                                    \
    {                                                                                             \
        int64_t i = 0;                                                                            \
        for (; i + W <= n; i += W) {                                                              \
            VF v;                                                                                 \
            memcpy(&v, x + i, sizeof v);                                                          \
            v = NAME##_v(v);                                                                      \
            memcpy(y + i, &v, sizeof v);                                                          \
        }                                                                                         \
        if (i < n) {                                                                              \
            VF v = {0};                                                                           \
            memcpy(&v, x + i, (size_t)(n - i) * sizeof *x);                                       \
            v = NAME##_v(v);                                                                      \
            memcpy(y + i, &v, (size_t)(n - i) * sizeof *y);                                       \
        }                                                                                         \
    }                                                                                             \
    /* a vector of n - i < W values from x + i, the rest `fill` */                                \
    ATTR static inline VF NAME##_part(const float *x, int64_t m, float fill)                     \
    {                                                                                             \
        VF v;                                                                                     \
        for (int k = 0; k < W; k++) v[k] = k < m ? x[k] : fill;                                   \
        return v;                                                                                 \
    }                                                                                             \
    /* exp for softmax (arguments <= 0): below -87 the result would be a denormal, which is both  \
     * slow to compute (masked attention scores are all there) and below any f32 sum's last bit  \
     * next to the row's maximum, which contributes 1: 0 instead */                               \
    ATTR static inline VF NAME##_sexp(VF v)                                                       \
    {                                                                                             \
        const VF zero = {0};                                                                      \
        VF lo = zero - 87.0f;                                                                     \
        VF e = NAME##_v(NAME##_sel(v < lo, lo, v));                                               \
        return NAME##_sel(v < lo, zero, e);                                                       \
    }                                                                                             \
    ATTR static void NAME##_softmax(const float *x, float *y, int64_t n)                          \
    {                                                                                             \
        const VF zero = {0};                                                                      \
        VF m = zero - INFINITY, s = zero;                                                         \
        int64_t i = 0;                                                                            \
        for (; i + W <= n; i += W) { /* as x > mx ? x : mx: NaN never wins */                     \
            VF v;                                                                                 \
            memcpy(&v, x + i, sizeof v);                                                          \
            m = NAME##_sel(v > m, v, m);                                                          \
        }                                                                                         \
        if (i < n) {                                                                              \
            VF v = NAME##_part(x + i, n - i, -INFINITY);                                          \
            m = NAME##_sel(v > m, v, m);                                                          \
        }                                                                                         \
        float mx = -INFINITY;                                                                     \
        for (int k = 0; k < W; k++) mx = m[k] > mx ? m[k] : mx;                                   \
        for (i = 0; i + W <= n; i += W) {                                                         \
            VF v;                                                                                 \
            memcpy(&v, x + i, sizeof v);                                                          \
            v = NAME##_sexp(v - mx);                                                              \
            s += v;                                                                               \
            memcpy(y + i, &v, sizeof v);                                                          \
        }                                                                                         \
        if (i < n) {                                                                              \
            VF v = NAME##_sexp(NAME##_part(x + i, n - i, -INFINITY) - mx);                        \
            for (int k = (int)(n - i); k < W; k++) v[k] = 0;                                      \
            s += v;                                                                               \
            memcpy(y + i, &v, (size_t)(n - i) * sizeof *y);                                       \
        }                                                                                         \
        double sum = 0;                                                                           \
        for (int k = 0; k < W; k++) sum += s[k];                                                  \
        float inv = (float)(1.0 / sum);                                                           \
        for (i = 0; i + W <= n; i += W) {                                                         \
            VF v;                                                                                 \
            memcpy(&v, y + i, sizeof v);                                                          \
            v *= inv;                                                                             \
            memcpy(y + i, &v, sizeof v);                                                          \
        }                                                                                         \
        for (; i < n; i++) y[i] *= inv;                                                           \
    }                                                                                             \
    ATTR static inline VF NAME##_sigv(VF v)                                                       \
    {                                                                                             \
        const VF zero = {0};                                                                      \
        (void)zero;                                                                               \
        VF e = NAME##_v((VF)((VI)v | ((VI){0} + INT32_MIN))); /* exp(-|x|) */              \
        VF r = 1.0f / (1.0f + e);                                                                 \
        return NAME##_sel(v >= 0, r, e * r);                                                      \
    }                                                                                             \
    ATTR static void NAME##_sigmoid(const float *x, float *y, int64_t n)                          \
    {                                                                                             \
        int64_t i = 0;                                                                            \
        for (; i + W <= n; i += W) {                                                              \
            VF v;                                                                                 \
            memcpy(&v, x + i, sizeof v);                                                          \
            v = NAME##_sigv(v);                                                                   \
            memcpy(y + i, &v, sizeof v);                                                          \
        }                                                                                         \
        if (i < n) {                                                                              \
            VF v = NAME##_sigv(NAME##_part(x + i, n - i, 0));                                     \
            memcpy(y + i, &v, (size_t)(n - i) * sizeof *y);                                       \
        }                                                                                         \
    }

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
GX_EXP_IMPL(, v4f, v4i, 4, exp_sse2)

#if defined(__x86_64__) && defined(__GNUC__)
#define GX_HAVE_AVX2 1
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
GX_EXP_IMPL(__attribute__((target("avx2,fma"))), v8f, v8i, 8, exp_avx2)
#include <immintrin.h>

/* AVX-512 with intrinsics: the same reduction and polynomial, but 2^n applied by one scalef (exact
 * down through the denormals, inf above the range) and the clamps as masks, about half the
 * instructions of the generic vector code; FMA in the polynomial. Tails by masked loads/stores. */
#define AVX512 __attribute__((target("avx512f")))
AVX512 static inline __m512 exp512(__m512 x)
{
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.8f)); /* NaN -> -104, fixed below */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3333519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    y = _mm512_scalef_ps(y, n);
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-103.97f), _CMP_LT_OQ), _mm512_setzero_ps());
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x); /* NaN stays NaN */
}

static inline __mmask16 tail_mask(int64_t m) { return (__mmask16)((1u << m) - 1); }

AVX512 static void exp_avx512(const float *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp512(_mm512_loadu_ps(x + i)));
    if (i < n) _mm512_mask_storeu_ps(y + i, tail_mask(n - i), exp512(_mm512_maskz_loadu_ps(tail_mask(n - i), x + i)));
}

/* as the generic softmax: max (NaN never wins), exp of x - max with arguments below -87 giving 0,
 * lane sums added in double, one multiply by the reciprocal */
AVX512 static void exp_avx512_softmax(const float *x, float *y, int64_t n)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY), lo = _mm512_set1_ps(-87.0f);
    __m512 m = ninf, s = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(_mm512_loadu_ps(x + i), m);
    if (i < n) m = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, tail_mask(n - i), x + i), m);
    __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 v = _mm512_sub_ps(_mm512_loadu_ps(x + i), mx);
        v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, lo, _CMP_NLT_UQ), exp512(v));
        s = _mm512_add_ps(s, v);
        _mm512_storeu_ps(y + i, v);
    }
    if (i < n) {
        __mmask16 t = tail_mask(n - i);
        __m512 v = _mm512_sub_ps(_mm512_mask_loadu_ps(ninf, t, x + i), mx);
        v = _mm512_maskz_mov_ps(t & _mm512_cmp_ps_mask(v, lo, _CMP_NLT_UQ), exp512(v));
        s = _mm512_add_ps(s, v);
        _mm512_mask_storeu_ps(y + i, t, v);
    }
    __m512d sd = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(s)), _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1))));
    __m512 inv = _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_pd(sd)));
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), inv));
    if (i < n) _mm512_mask_storeu_ps(y + i, tail_mask(n - i), _mm512_mul_ps(_mm512_maskz_loadu_ps(tail_mask(n - i), y + i), inv));
}

/* 1 / (1 + exp(-|x|)), times exp(-|x|) for x < 0: never overflows */
AVX512 static inline __m512 sigmoid512(__m512 v)
{
    __m512 e = exp512(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN))));
    __m512 r = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    return _mm512_mask_mov_ps(_mm512_mul_ps(e, r), _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ), r);
}

AVX512 static void exp_avx512_sigmoid(const float *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, sigmoid512(_mm512_loadu_ps(x + i)));
    if (i < n) _mm512_mask_storeu_ps(y + i, tail_mask(n - i), sigmoid512(_mm512_maskz_loadu_ps(tail_mask(n - i), x + i)));
}
#undef AVX512
#endif

/* The widest of the three this CPU runs, decided once (a benign race: the same value). */
static int simd_level(void)
{
    static int level = -1;
    if (level < 0) {
        int l = 0;
#ifdef GX_HAVE_AVX2
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) l = 1;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) l = 2;
#endif
        level = l;
    }
    return level;
}

void gx_exp_f32(const float *x, float *y, int64_t n)
{
#ifdef GX_HAVE_AVX2
    int l = simd_level();
    if (l == 2) return exp_avx512(x, y, n);
    if (l == 1) return exp_avx2(x, y, n);
#endif
    exp_sse2(x, y, n);
}

void gx_softmax_row_f32(const float *x, float *y, int64_t n)
{
#ifdef GX_HAVE_AVX2
    int l = simd_level();
    if (l == 2) return exp_avx512_softmax(x, y, n);
    if (l == 1) return exp_avx2_softmax(x, y, n);
#endif
    exp_sse2_softmax(x, y, n);
}

void gx_sigmoid_f32(const float *x, float *y, int64_t n)
{
#ifdef GX_HAVE_AVX2
    int l = simd_level();
    if (l == 2) return exp_avx512_sigmoid(x, y, n);
    if (l == 1) return exp_avx2_sigmoid(x, y, n);
#endif
    exp_sse2_sigmoid(x, y, n);
}

static inline v4f vsel(v4i mask, v4f a, v4f b) { return (v4f)((mask & (v4i)a) | (~mask & (v4i)b)); }
static inline v4f vsplat(float v) { return (v4f){v, v, v, v}; }

void gx_bias_act_f32(float *y, const float *x, int64_t n, float bias, bool relu)
{
    int64_t i = 0;
    v4f b = vsplat(bias), zero = vsplat(0.0f);
    for (; i + 4 <= n; i += 4) {
        v4f v;
        memcpy(&v, x + i, sizeof v);
        v += b;
        if (relu) v = vsel(v > zero, v, zero); /* NaN -> 0, as x > 0 ? x : 0 */
        memcpy(y + i, &v, sizeof v);
    }
    for (; i < n; i++) {
        float v = x[i] + bias;
        y[i] = relu ? (v > 0 ? v : 0.0f) : v;
    }
}
