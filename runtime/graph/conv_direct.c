/* Direct stride-1 2-D convolution on AVX-512 (the 3x3 "same" convs of small CNNs): no im2col
 * columns, no sgemm packing, bias and Relu applied as each output vector is stored in NCHW.
 *
 * Each image (of a group) is copied once into a zero-padded buffer (Hp x Wp planes), so output pixel
 * (oh, ow) reads padded pixel (oh + kh*dh, ow + kw*dw) with no edge tests; every tap k of the K =
 * Cg*KH*KW is one offset offs[k] into it. Output rows are cut into vectors of 16 columns (the last
 * masked), and a register tile is 8 output channels x 3 such vectors: per tap, 3 unaligned loads of
 * the image and 8 broadcast weights feed 24 FMAs, accumulating over k in f32. Weights are packed per
 * block of 8 channels as [K][8] (zero beyond the group's channels) so the 8 broadcasts are adjacent.
 * Work units (image, group, channel block) are spread over the thread pool. */
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "runtime/graph/conv_direct.h"

#define DC_MB 8  /* output channels a register tile */
#define DC_VW 16 /* floats a vector */
#define DC_SLACK DC_VW /* floats after the padded planes: a row's last vector may read past them */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DC_HAVE_IMPL 1

typedef struct {
    const gx_conv2d *p;
    const float *wp, *bp; /* packed weights [G*nblk][K][8], biases [G*nblk][8] */
    const int64_t *offs;  /* K tap offsets into a padded image */
    float *scratch;       /* per part: one padded image (plane * Cg + DC_SLACK) */
    int64_t Hp, Wp, K, nblk, units, parts, per_part;
} dc_job;

/* One block of 8 output channels of one image: the whole OH x OW plane, 3 vectors at a time. */
__attribute__((target("avx512f"))) static void dc_block(const dc_job *j, const float *pad, const float *wp, const float *bp, float *y, int mvalid)
{
    const gx_conv2d *p = j->p;
    int64_t vpr = (p->OW + DC_VW - 1) / DC_VW, nv = p->OH * vpr, plane = p->OH * p->OW, K = j->K;
    const int64_t *offs = j->offs;
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t v0 = 0; v0 < nv; v0 += 3) {
        const float *src[3];
        int64_t oo[3];
        __mmask16 mk[3];
        for (int r = 0; r < 3; r++) {
            int64_t v = v0 + r < nv ? v0 + r : nv - 1, oh = v / vpr, ow0 = v % vpr * DC_VW;
            int64_t n = p->OW - ow0 < DC_VW ? p->OW - ow0 : DC_VW;
            src[r] = pad + oh * j->Wp + ow0;
            oo[r] = oh * p->OW + ow0;
            mk[r] = v0 + r < nv ? (__mmask16)((1u << n) - 1) : 0; /* a repeated tail vector is not stored */
        }
        __m512 a0 = zero, a1 = zero, a2 = zero, b0 = zero, b1 = zero, b2 = zero, c0 = zero, c1 = zero, c2 = zero, d0 = zero, d1 = zero, d2 = zero;
        __m512 e0 = zero, e1 = zero, e2 = zero, f0 = zero, f1 = zero, f2 = zero, g0 = zero, g1 = zero, g2 = zero, h0 = zero, h1 = zero, h2 = zero;
        const float *s0 = src[0], *s1 = src[1], *s2 = src[2];
        for (int64_t k = 0; k < K; k++) {
            int64_t off = offs[k];
            __m512 x0 = _mm512_loadu_ps(s0 + off), x1 = _mm512_loadu_ps(s1 + off), x2 = _mm512_loadu_ps(s2 + off), w;
            const float *wk = wp + k * DC_MB;
#define DC_FMA(i, A0, A1, A2)                 \
    w = _mm512_set1_ps(wk[i]);                \
    A0 = _mm512_fmadd_ps(w, x0, A0);          \
    A1 = _mm512_fmadd_ps(w, x1, A1);          \
    A2 = _mm512_fmadd_ps(w, x2, A2)
            DC_FMA(0, a0, a1, a2);
            DC_FMA(1, b0, b1, b2);
            DC_FMA(2, c0, c1, c2);
            DC_FMA(3, d0, d1, d2);
            DC_FMA(4, e0, e1, e2);
            DC_FMA(5, f0, f1, f2);
            DC_FMA(6, g0, g1, g2);
            DC_FMA(7, h0, h1, h2);
#undef DC_FMA
        }
        __m512 acc[DC_MB][3] = {{a0, a1, a2}, {b0, b1, b2}, {c0, c1, c2}, {d0, d1, d2}, {e0, e1, e2}, {f0, f1, f2}, {g0, g1, g2}, {h0, h1, h2}};
        for (int m = 0; m < mvalid; m++) {
            __m512 bias = _mm512_set1_ps(bp[m]);
            for (int r = 0; r < 3; r++) {
                __m512 v = _mm512_add_ps(acc[m][r], bias);
                if (p->relu) v = _mm512_max_ps(v, zero); /* NaN -> 0 (max returns its second operand), as Relu */
                _mm512_mask_storeu_ps(y + m * plane + oo[r], mk[r], v);
            }
        }
    }
}

/* The same with a 2x2 stride-2 max pool after the Relu: a register tile is 8 channels x the two
 * conv rows 2ph and 2ph + 1 of one 16-column vector; each channel's two rows get bias and Relu,
 * then the vertical max, then the max of even and odd lanes, 8 pooled outputs stored. Relu's outputs
 * hold no NaN and no -0, so the max is the separate MaxPool's exactly. An odd last conv row or
 * column (dropped by the pool) is not computed. */
__attribute__((target("avx512f"))) static void dc_block_pool(const dc_job *j, const float *pad, const float *wp, const float *bp, float *y, int mvalid)
{
    const gx_conv2d *p = j->p;
    int64_t PH = p->OH / 2, PW = p->OW / 2, vpr = (2 * PW + DC_VW - 1) / DC_VW, plane = PH * PW, K = j->K;
    const int64_t *offs = j->offs;
    const __m512 zero = _mm512_setzero_ps();
    const __m512i ev = _mm512_set_epi32(14, 12, 10, 8, 6, 4, 2, 0, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t ph = 0; ph < PH; ph++)
        for (int64_t jv = 0; jv < vpr; jv++) {
            const float *s0 = pad + 2 * ph * j->Wp + jv * DC_VW, *s1 = s0 + j->Wp;
            int64_t npool = PW - jv * (DC_VW / 2) < DC_VW / 2 ? PW - jv * (DC_VW / 2) : DC_VW / 2;
            __mmask16 mk = (__mmask16)((1u << npool) - 1);
            __m512 a0 = zero, a1 = zero, b0 = zero, b1 = zero, c0 = zero, c1 = zero, d0 = zero, d1 = zero;
            __m512 e0 = zero, e1 = zero, f0 = zero, f1 = zero, g0 = zero, g1 = zero, h0 = zero, h1 = zero;
            for (int64_t k = 0; k < K; k++) {
                int64_t off = offs[k];
                __m512 x0 = _mm512_loadu_ps(s0 + off), x1 = _mm512_loadu_ps(s1 + off), w;
                const float *wk = wp + k * DC_MB;
#define DC_FMA2(i, A0, A1)               \
    w = _mm512_set1_ps(wk[i]);           \
    A0 = _mm512_fmadd_ps(w, x0, A0);     \
    A1 = _mm512_fmadd_ps(w, x1, A1)
                DC_FMA2(0, a0, a1);
                DC_FMA2(1, b0, b1);
                DC_FMA2(2, c0, c1);
                DC_FMA2(3, d0, d1);
                DC_FMA2(4, e0, e1);
                DC_FMA2(5, f0, f1);
                DC_FMA2(6, g0, g1);
                DC_FMA2(7, h0, h1);
#undef DC_FMA2
            }
            __m512 acc[DC_MB][2] = {{a0, a1}, {b0, b1}, {c0, c1}, {d0, d1}, {e0, e1}, {f0, f1}, {g0, g1}, {h0, h1}};
            for (int m = 0; m < mvalid; m++) {
                __m512 bias = _mm512_set1_ps(bp[m]);
                __m512 r0 = _mm512_max_ps(_mm512_add_ps(acc[m][0], bias), zero), r1 = _mm512_max_ps(_mm512_add_ps(acc[m][1], bias), zero);
                __m512 v = _mm512_max_ps(r0, r1);
                v = _mm512_max_ps(_mm512_permutexvar_ps(ev, v), _mm512_permutexvar_ps(od, v));
                _mm512_mask_storeu_ps(y + m * plane + ph * PW + jv * (DC_VW / 2), mk, v);
            }
        }
}

/* Copies image channels [Cg] of x into pad's zero-padded planes. */
static void dc_pad(const dc_job *j, const float *x, float *pad)
{
    const gx_conv2d *p = j->p;
    int64_t plane = j->Hp * j->Wp;
    memset(pad, 0, (size_t)(p->Cg * plane + DC_SLACK) * sizeof *pad);
    for (int64_t ch = 0; ch < p->Cg; ch++)
        for (int64_t ih = 0; ih < p->H; ih++)
            memcpy(pad + ch * plane + (ih + p->pt) * j->Wp + p->pl, x + (ch * p->H + ih) * p->W, (size_t)p->W * sizeof *pad);
}

static void dc_part(void *ctx, int64_t pbegin, int64_t pend)
{
    const dc_job *j = ctx;
    const gx_conv2d *p = j->p;
    for (int64_t part = pbegin; part < pend; part++) {
        float *pad = j->scratch + part * j->per_part;
        int64_t u0 = j->units * part / j->parts, u1 = j->units * (part + 1) / j->parts, padded_img = -1;
        for (int64_t u = u0; u < u1; u++) {
            int64_t img = u / j->nblk, blk = u % j->nblk; /* img: image * G + group */
            int64_t n = img / p->G, g = img % p->G;
            if (img != padded_img) {
                dc_pad(j, p->x + (n * p->G + g) * p->Cg * p->H * p->W, pad);
                padded_img = img;
            }
            int64_t m0 = blk * DC_MB, mvalid = p->Mg - m0 < DC_MB ? p->Mg - m0 : DC_MB;
            int64_t wb = g * j->nblk + blk;
            if (p->pool2)
                dc_block_pool(j, pad, j->wp + wb * j->K * DC_MB, j->bp + wb * DC_MB, p->y + ((n * p->G + g) * p->Mg + m0) * (p->OH / 2) * (p->OW / 2),
                              (int)mvalid);
            else
                dc_block(j, pad, j->wp + wb * j->K * DC_MB, j->bp + wb * DC_MB, p->y + ((n * p->G + g) * p->Mg + m0) * p->OH * p->OW, (int)mvalid);
        }
    }
}
#endif

bool gx_conv2d_direct_ok(const gx_conv2d *p)
{
#ifdef DC_HAVE_IMPL
    static int avx512 = -1; /* decided once (a benign race: the same value) */
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    /* at least a few vectors a plane, and taps bounded so the offsets table stays small */
    bool pool_ok = !p->pool2 || (p->relu && p->OH >= 2 && p->OW >= 2);
    return avx512 && pool_ok && p->OH * p->OW >= DC_VW && p->Cg * p->KH * p->KW <= GX_CONV2D_MAX_K;
#else
    (void)p;
    return false;
#endif
}

smelt_err *gx_conv2d_direct(gx_call *c, const gx_conv2d *p)
{
#ifdef DC_HAVE_IMPL
    dc_job j = {.p = p};
    j.Hp = p->H + p->pt + p->pb;
    j.Wp = p->W + p->pl + p->pr;
    j.K = p->Cg * p->KH * p->KW;
    j.nblk = (p->Mg + DC_MB - 1) / DC_MB;
    j.units = p->N * p->G * j.nblk;
    int64_t *offs = gx_scratch(c, (size_t)j.K * sizeof *offs);
    float *wp = gx_scratch(c, (size_t)(p->G * j.nblk * (j.K + 1) * DC_MB) * sizeof *wp);
    if (!offs || !wp) return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (Conv): out of memory", gx_node_name(c->node));
    for (int64_t ch = 0; ch < p->Cg; ch++)
        for (int64_t kh = 0; kh < p->KH; kh++)
            for (int64_t kw = 0; kw < p->KW; kw++) offs[(ch * p->KH + kh) * p->KW + kw] = ch * j.Hp * j.Wp + kh * p->dh * j.Wp + kw * p->dw;
    j.offs = offs;
    /* weights [M][Cg][KH][KW] -> per block [K][8], channels past the group's zero */
    float *bp = wp + p->G * j.nblk * j.K * DC_MB;
    memset(wp, 0, (size_t)(p->G * j.nblk * (j.K + 1) * DC_MB) * sizeof *wp);
    for (int64_t g = 0; g < p->G; g++)
        for (int64_t m = 0; m < p->Mg; m++) {
            int64_t oc = g * p->Mg + m, wb = g * j.nblk + m / DC_MB;
            for (int64_t k = 0; k < j.K; k++) wp[(wb * j.K + k) * DC_MB + m % DC_MB] = p->w[oc * j.K + k];
            bp[wb * DC_MB + m % DC_MB] = p->b ? p->b[oc] : 0.0f;
        }
    j.wp = wp;
    j.bp = bp;
    double flops = 2.0 * (double)(p->N * p->G * p->Mg) * (double)(j.K * p->OH * p->OW);
    int64_t threads = smelt_thread_count();
    /* below ~40 us of work a wake-up and a second padded copy cost about what the split saves */
    j.parts = flops >= 4e6 && j.units >= threads ? (j.units < 4 * threads ? j.units : 4 * threads) : 1; /* a few a thread, see threads.h */
    j.per_part = (p->Cg * j.Hp * j.Wp + DC_SLACK + 15) / 16 * 16;
    j.scratch = gx_scratch(c, (size_t)(j.parts * j.per_part) * sizeof(float));
    if (!j.scratch) return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (Conv): out of memory", gx_node_name(c->node));
    if (j.parts > 1) smelt_parallel_for(j.parts, 1, dc_part, &j);
    else dc_part(&j, 0, 1);
    return NULL;
#else
    (void)p;
    return gx_unsup(c, "direct convolution needs AVX-512");
#endif
}
