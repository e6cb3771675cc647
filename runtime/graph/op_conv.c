/* Convolution and pooling over 1 to 3 spatial dims (NC + spatial): Conv (im2col + sgemm, groups,
 * dilations, strides, pads, auto_pad; stride-1 2-D ones on AVX-512 by conv_direct.c), MaxPool (with Indices), AveragePool, LpPool,
 * GlobalAveragePool, GlobalMaxPool. Spatial dims are handled as (D, H, W) with missing leading dims
 * of size 1, so one code path serves 1-D, 2-D and 3-D. Conv and f32 MaxPool spread images (or
 * channels) over the thread pool; a Relu the planner fused into a Conv is applied as the output
 * is written. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "runtime/graph/conv_direct.h"
#include "runtime/graph/gx.h"

typedef struct {
    int nsp;                      /* spatial dims in the tensor (1..3) */
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3]; /* padded to 3 dims: index 3-nsp.. are real */
} geom;

static smelt_err *check_pads(const smelt_node *n, int opset)
{
    const char *ap = gx_attr_s(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "SAME_UPPER") && strcmp(ap, "SAME_LOWER") && strcmp(ap, "VALID"))
        return gx_node_unsup(n, "attribute 'auto_pad'='%s' not supported", ap);
    return NULL;
}

/* Fills g from x's shape, the kernel dims and the node's attributes. ceil: pooling's ceil_mode. */
static smelt_err *geometry(gx_call *c, const gx_tensor *x, const int64_t *kernel, bool ceil_mode, geom *g)
{
    int nsp = x->ndim - 2;
    if (nsp < 1 || nsp > 3) return gx_unsup(c, "%d spatial dims (1 to 3 supported)", nsp);
    g->nsp = nsp;
    const int64_t *st = NULL, *dl = NULL, *pd = NULL;
    int ns = gx_attr_ints(c->node, "strides", &st), nd = gx_attr_ints(c->node, "dilations", &dl), np = gx_attr_ints(c->node, "pads", &pd);
    if ((ns >= 0 && ns != nsp) || (nd >= 0 && nd != nsp) || (np >= 0 && np != 2 * nsp))
        return gx_fail(c, "strides/dilations/pads do not match %d spatial dims", nsp);
    const char *ap = gx_attr_s(c->node, "auto_pad", "NOTSET");
    for (int i = 0; i < 3; i++) {
        int j = i - (3 - nsp);
        bool real = j >= 0;
        g->in[i] = real ? x->shape[2 + j] : 1;
        g->k[i] = real ? kernel[j] : 1;
        g->s[i] = real && ns >= 0 ? st[j] : 1;
        g->d[i] = real && nd >= 0 ? dl[j] : 1;
        g->pb[i] = real && np >= 0 ? pd[j] : 0;
        g->pe[i] = real && np >= 0 ? pd[j + nsp] : 0;
        if (g->k[i] < 1 || g->s[i] < 1 || g->d[i] < 1 || g->pb[i] < 0 || g->pe[i] < 0) return gx_fail(c, "invalid kernel, stride, dilation or pad");
        int64_t ext = (g->k[i] - 1) * g->d[i] + 1;
        if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
            g->out[i] = (g->in[i] + g->s[i] - 1) / g->s[i];
            int64_t total = (g->out[i] - 1) * g->s[i] + ext - g->in[i];
            if (total < 0) total = 0;
            g->pb[i] = ap[5] == 'U' ? total / 2 : total - total / 2;
            g->pe[i] = total - g->pb[i];
        } else {
            if (strcmp(ap, "VALID") == 0) g->pb[i] = g->pe[i] = 0;
            int64_t span = g->in[i] + g->pb[i] + g->pe[i] - ext;
            if (span < 0) return gx_fail(c, "kernel extent %lld exceeds padded input %lld", (long long)ext, (long long)(g->in[i] + g->pb[i] + g->pe[i]));
            g->out[i] = (ceil_mode ? (span + g->s[i] - 1) / g->s[i] : span / g->s[i]) + 1;
            if (ceil_mode && (g->out[i] - 1) * g->s[i] >= g->in[i] + g->pb[i]) g->out[i]--;
        }
    }
    return NULL;
}

static void out_shape(const gx_tensor *x, int64_t C, const geom *g, int64_t *shape)
{
    shape[0] = x->shape[0];
    shape[1] = C;
    for (int j = 0; j < g->nsp; j++) shape[2 + j] = g->out[3 - g->nsp + j];
}

/* col[(c*KD+kd)*KH*KW + kh*KW + kw][ld * ... + od*OH*OW + oh*OW + ow] for one image's channels
 * [C]: each of the K rows holds the image's output pixels at column offset 0, ld apart per row. */
static void im2col(const float *x, int64_t C, const geom *g, float *col, int64_t ld)
{
    for (int64_t ch = 0; ch < C; ch++)
        for (int64_t kd = 0; kd < g->k[0]; kd++)
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++) {
                    float *dst = col + (((ch * g->k[0] + kd) * g->k[1] + kh) * g->k[2] + kw) * ld;
                    /* output columns [w0, w1) read inside the input row; the rest is padding */
                    int64_t off = kw * g->d[2] - g->pb[2], w0 = 0, w1 = g->out[2];
                    while (w0 < w1 && w0 * g->s[2] + off < 0) w0++;
                    while (w1 > w0 && (w1 - 1) * g->s[2] + off >= g->in[2]) w1--;
                    for (int64_t od = 0; od < g->out[0]; od++) {
                        int64_t id = od * g->s[0] - g->pb[0] + kd * g->d[0];
                        for (int64_t oh = 0; oh < g->out[1]; oh++) {
                            int64_t ih = oh * g->s[1] - g->pb[1] + kh * g->d[1];
                            float *row = dst + (od * g->out[1] + oh) * g->out[2];
                            if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                                memset(row, 0, (size_t)g->out[2] * sizeof *row);
                                continue;
                            }
                            const float *src = x + ((ch * g->in[0] + id) * g->in[1] + ih) * g->in[2] + off;
                            for (int64_t ow = 0; ow < w0; ow++) row[ow] = 0.0f;
                            /* rows are short (an image's width): a plain loop beats memcpy's call */
                            if (g->s[2] == 1)
                                for (int64_t ow = w0; ow < w1; ow++) row[ow] = src[ow];
                            else
                                for (int64_t ow = w0; ow < w1; ow++) row[ow] = src[ow * g->s[2]];
                            for (int64_t ow = w1; ow < g->out[2]; ow++) row[ow] = 0.0f;
                        }
                    }
                }
}

/* One Conv: images are processed in blocks of nb whose im2col columns sit side by side, so each
 * group's product is one sgemm of [Mg, K] x [K, nb*npix]; the result is scattered to NCHW with
 * the bias (and a fused Relu). Blocks are spread over the thread pool, each part with its own
 * scratch. */
#ifndef GX_CONV_COL_BYTES
#define GX_CONV_COL_BYTES (256 * 1024)
#endif

typedef struct {
    const geom *g;
    const float *x, *w, *b;
    float *o, *scratch;
    int64_t N, C, M, group, Cg, Mg, K, npix_in, npix_out, nb, parts, scratch_per_part;
    bool relu;
    /* stride-1 2-D convolutions go through a zero-padded copy of the image instead (see
     * padded_cols): Hp x Wp padded planes, L columns an image */
    bool padded;
    int64_t Hp, Wp, L;
    /* padded with K <= GX_CONV_DIRECT_K (a first layer: 1 to 3 input channels) and output channels
     * a group a multiple of 4: no columns, each output row summed straight from the K shifted runs
     * of the padded image (offs) */
    bool direct;
    int64_t offs[32];
} conv_job;

#define GX_CONV_DIRECT_K 32

/* t[p] = sum_k w[k] * pad[offs[k] + p] for p < L, for 4 output channels at once (weights w, w + K,
 * w + 2K, w + 3K; outputs t, t + L, ...): sgemm with K this small spends its time packing. Each
 * loaded vector of the image serves the 4 channels, and the 8 sums in registers hide the add
 * latency. */
#define DIRECT_IMPL(ATTR, VF, W, NAME)                                                                     \
    ATTR static void NAME(const float *w, const float *pad, const int64_t *offs, int64_t K, int64_t L, float *t) \
    {                                                                                                      \
        int64_t p = 0;                                                                                     \
        for (; p + 2 * W <= L; p += 2 * W) {                                                               \
            VF a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0}, c0 = {0}, c1 = {0}, d0 = {0}, d1 = {0}, v0, v1;     \
            for (int64_t k = 0; k < K; k++) {                                                              \
                const float *src = pad + offs[k] + p;                                                      \
                memcpy(&v0, src, sizeof v0), memcpy(&v1, src + W, sizeof v1);                              \
                VF wa = (VF){0} + w[k], wb = (VF){0} + w[K + k], wc = (VF){0} + w[2 * K + k], wd = (VF){0} + w[3 * K + k]; \
                a0 += wa * v0, a1 += wa * v1, b0 += wb * v0, b1 += wb * v1;                                \
                c0 += wc * v0, c1 += wc * v1, d0 += wd * v0, d1 += wd * v1;                                \
            }                                                                                              \
            memcpy(t + p, &a0, sizeof v0), memcpy(t + p + W, &a1, sizeof v0);                              \
            memcpy(t + L + p, &b0, sizeof v0), memcpy(t + L + p + W, &b1, sizeof v0);                      \
            memcpy(t + 2 * L + p, &c0, sizeof v0), memcpy(t + 2 * L + p + W, &c1, sizeof v0);              \
            memcpy(t + 3 * L + p, &d0, sizeof v0), memcpy(t + 3 * L + p + W, &d1, sizeof v0);              \
        }                                                                                                  \
        for (; p < L; p++)                                                                                 \
            for (int m = 0; m < 4; m++) {                                                                  \
                float a = 0;                                                                               \
                for (int64_t k = 0; k < K; k++) a += w[m * K + k] * pad[offs[k] + p];                      \
                t[m * L + p] = a;                                                                          \
            }                                                                                              \
    }

typedef float cv4f __attribute__((vector_size(16)));
DIRECT_IMPL(, cv4f, 4, direct_sse2)
#if defined(__x86_64__) && defined(__GNUC__)
typedef float cv16f __attribute__((vector_size(64)));
DIRECT_IMPL(__attribute__((target("avx512f"))), cv16f, 16, direct_avx512)
#endif

static void direct_rows4(const float *w, const float *pad, const int64_t *offs, int64_t K, int64_t L, float *t)
{
#if defined(__x86_64__) && defined(__GNUC__)
    static int avx512 = -1; /* decided once (a benign race: the same value) */
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    if (avx512) return direct_avx512(w, pad, offs, K, L, t);
#endif
    direct_sse2(w, pad, offs, K, L, t);
}

/* o[oh][ow] = act(t[oh * ld + ow] + bias) for an OH x OW plane computed on a wider grid: one
 * function for the whole plane (its rows are short; a call per row cost as much as the work) */
static void crop_bias_act(float *o, const float *t, int64_t OH, int64_t OW, int64_t ld, float bias, bool relu)
{
    for (int64_t oh = 0; oh < OH; oh++, o += OW, t += ld) {
        if (relu)
            for (int64_t ow = 0; ow < OW; ow++) {
                float v = t[ow] + bias;
                o[ow] = v > 0 ? v : 0.0f; /* NaN -> 0, as Relu */
            }
        else
            for (int64_t ow = 0; ow < OW; ow++) o[ow] = t[ow] + bias;
    }
}

/* Stride 1: output pixel (oh, ow) reads padded pixel (oh + kh*dh, ow + kw*dw). Computing the output
 * on the padded width (Wp columns a row, the last Wp - OW of each row thrown away) makes every
 * im2col row one contiguous run of the padded plane, L = (OH - 1) * Wp + OW values from offset
 * kh*dh*Wp + kw*dw: K long copies instead of K * OH short ones with edge tests. */
static void pad_image(const conv_job *j, const float *x, float *pad)
{
    const geom *g = j->g;
    int64_t plane = j->Hp * j->Wp;
    memset(pad, 0, (size_t)(j->Cg * plane) * sizeof *pad);
    for (int64_t ch = 0; ch < j->Cg; ch++)
        for (int64_t ih = 0; ih < g->in[1]; ih++)
            memcpy(pad + ch * plane + (ih + g->pb[1]) * j->Wp + g->pb[2], x + (ch * g->in[1] + ih) * g->in[2], (size_t)g->in[2] * sizeof *pad);
}

static void padded_cols(const conv_job *j, const float *x, float *pad, float *col, int64_t ld)
{
    const geom *g = j->g;
    int64_t plane = j->Hp * j->Wp;
    pad_image(j, x, pad);
    for (int64_t ch = 0; ch < j->Cg; ch++)
        for (int64_t kh = 0; kh < g->k[1]; kh++)
            for (int64_t kw = 0; kw < g->k[2]; kw++)
                memcpy(col + ((ch * g->k[1] + kh) * g->k[2] + kw) * ld, pad + ch * plane + kh * g->d[1] * j->Wp + kw * g->d[2], (size_t)j->L * sizeof *col);
}

static void conv_part(void *ctx, int64_t pbegin, int64_t pend)
{
    const conv_job *j = ctx;
    for (int64_t p = pbegin; p < pend; p++) {
        int64_t n0 = j->N * p / j->parts, n1 = j->N * (p + 1) / j->parts;
        int64_t L = j->padded ? j->L : j->npix_out;
        float *col = j->scratch + p * j->scratch_per_part;
        float *tmp = col + j->K * j->nb * L, *pad = tmp + j->Mg * j->nb * L;
        for (int64_t nb0 = n0; nb0 < n1; nb0 += j->nb) {
            int64_t nb = n1 - nb0 < j->nb ? n1 - nb0 : j->nb, ld = nb * L;
            for (int64_t gi = 0; gi < j->group && j->direct; gi++)
                for (int64_t i = 0; i < nb; i++) {
                    pad_image(j, j->x + ((nb0 + i) * j->C + gi * j->Cg) * j->npix_in, pad);
                    for (int64_t m = 0; m < j->Mg; m++) {
                        int64_t oc = gi * j->Mg + m, OH = j->g->out[1], OW = j->g->out[2];
                        float *o = j->o + ((nb0 + i) * j->M + oc) * j->npix_out;
                        if (m % 4 == 0) direct_rows4(j->w + oc * j->K, pad, j->offs, j->K, L, tmp);
                        crop_bias_act(o, tmp + (m % 4) * L, OH, OW, j->Wp, j->b ? j->b[oc] : 0.0f, j->relu);
                    }
                }
            for (int64_t gi = 0; gi < j->group && !j->direct; gi++) {
                for (int64_t i = 0; i < nb; i++) {
                    const float *xi = j->x + ((nb0 + i) * j->C + gi * j->Cg) * j->npix_in;
                    if (j->padded) padded_cols(j, xi, pad, col + i * L, ld);
                    else im2col(xi, j->Cg, j->g, col + i * j->npix_out, ld);
                }
                const float *w = j->w + gi * j->Mg * j->K;
                if (j->padded) {
                    gx_sgemm(false, false, j->Mg, ld, j->K, 1.0f, w, j->K, col, ld, 0.0f, tmp, ld);
                    int64_t OH = j->g->out[1], OW = j->g->out[2];
                    for (int64_t i = 0; i < nb; i++)
                        for (int64_t m = 0; m < j->Mg; m++) {
                            int64_t oc = gi * j->Mg + m;
                            float *o = j->o + ((nb0 + i) * j->M + oc) * j->npix_out;
                            const float *t = tmp + m * ld + i * L;
                            crop_bias_act(o, t, OH, OW, j->Wp, j->b ? j->b[oc] : 0.0f, j->relu);
                        }
                    continue;
                }
                if (j->parts > 1) {
                    /* one image's product is its group's output planes already (NCHW): written in
                     * place, bias and activation applied there, no scatter from a scratch copy */
                    for (int64_t i = 0; i < nb; i++) {
                        float *o = j->o + ((nb0 + i) * j->M + gi * j->Mg) * j->npix_out;
                        gx_sgemm(false, false, j->Mg, j->npix_out, j->K, 1.0f, w, j->K, col + i * j->npix_out, ld, 0.0f, o, j->npix_out);
                        for (int64_t m = 0; m < j->Mg; m++)
                            gx_bias_act_f32(o + m * j->npix_out, o + m * j->npix_out, j->npix_out, j->b ? j->b[gi * j->Mg + m] : 0.0f, j->relu);
                    }
                    continue;
                }
                /* split over the pool itself when this is the only part (a nested call runs serially) */
                gx_sgemm(false, false, j->Mg, ld, j->K, 1.0f, w, j->K, col, ld, 0.0f, tmp, ld);
                for (int64_t i = 0; i < nb; i++)
                    for (int64_t m = 0; m < j->Mg; m++) {
                        int64_t oc = gi * j->Mg + m;
                        gx_bias_act_f32(j->o + ((nb0 + i) * j->M + oc) * j->npix_out, tmp + m * ld + i * j->npix_out, j->npix_out, j->b ? j->b[oc] : 0.0f,
                                      j->relu);
                    }
            }
        }
    }
}

static smelt_err *k_conv(gx_call *c)
{
    const gx_tensor *x = c->in[0], *w = c->in[1], *b = c->n_in > 2 ? c->in[2] : NULL;
    if (!x || !w) return gx_fail(c, "expected X and W");
    if (x->dtype != SMELT_DT_F32 || (w->dtype != SMELT_DT_F32 && !w->qw) || (b && b->dtype != SMELT_DT_F32)) return gx_dtype_unsup(c, x->dtype);
    if (w->ndim != x->ndim) return gx_fail(c, "W has %d dims, X has %d", w->ndim, x->ndim);
    int64_t group = gx_attr_i(c->node, "group", 1), N = x->shape[0], C = x->shape[1], M = w->shape[0];
    if (group < 1 || C % group || M % group || w->shape[1] != C / group) {
        char s1[160], s2[160];
        return gx_fail(c, "X %s and W %s do not match with group=%lld", gx_shape_str(x, s1, sizeof s1), gx_shape_str(w, s2, sizeof s2), (long long)group);
    }
    if (b && (b->ndim != 1 || b->shape[0] != M)) return gx_fail(c, "B must have %lld elements", (long long)M);
    const int64_t *ks;
    int nk = gx_attr_ints(c->node, "kernel_shape", &ks);
    if (nk >= 0 && nk != x->ndim - 2) return gx_fail(c, "kernel_shape has %d dims", nk);
    for (int j = 0; nk >= 0 && j < nk; j++)
        if (ks[j] != w->shape[2 + j]) return gx_fail(c, "kernel_shape does not match W");
    geom g;
    SMELT_TRY(geometry(c, x, w->shape + 2, false, &g));
    /* a fused Relu + 2x2/2 MaxPool (graph_exec.c): the output is the pooled tensor */
    bool pool2 = c->fuse == GX_FUSE_RELU_POOL2, relu = c->fuse == GX_FUSE_RELU || pool2;
    if (pool2 && x->ndim != 4) return gx_fail(c, "the fused MaxPool needs a 2-D convolution, not %d-D", x->ndim - 2);
    int64_t shape[GX_MAXD];
    out_shape(x, M, &g, shape);
    if (pool2) shape[2] /= 2, shape[3] /= 2;
    float *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, x->ndim, shape, (void **)&o));
    int64_t Cg = C / group, Mg = M / group, K = Cg * g.k[0] * g.k[1] * g.k[2], npix_out = g.out[0] * g.out[1] * g.out[2];
    int64_t npix_in = g.in[0] * g.in[1] * g.in[2];
    if (npix_out == 0 || N == 0) return NULL;
    if (K * npix_out > INT32_MAX || Mg > INT32_MAX) return gx_unsup(c, "convolution too large");
    const float *wf = w->data;
    if (w->qw) {
        /* int8 weight: dequantized once a call into scratch (M x K floats, small next to the
         * columns), the products accumulate in f32 as for a float weight */
        float *d = gx_scratch(c, (size_t)w->numel * sizeof *d);
        if (!d) return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (Conv): out of memory", gx_node_name(c->node));
        gx_dequant(w->qw, w->numel, d);
        wf = d;
    }
    if (g.k[0] == 1 && g.in[0] == 1 && g.out[0] == 1 && g.s[1] == 1 && g.s[2] == 1) {
        gx_conv2d d = {x->data, wf, b ? b->data : NULL, o, N, group, Cg, Mg, g.in[1], g.in[2], g.k[1], g.k[2], g.d[1], g.d[2],
                       g.pb[1], g.pe[1], g.pb[2], g.pe[2], g.out[1], g.out[2], relu, pool2};
        if (gx_conv2d_direct_ok(&d)) return gx_conv2d_direct(c, &d);
    }
    float *full = o; /* with a fused pool: the full-size Conv+Relu output, pooled below */
    if (pool2 && !(full = gx_scratch(c, (size_t)(N * M * npix_out) * sizeof *full)))
        return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (Conv): out of memory", gx_node_name(c->node));
    conv_job j = {&g, x->data, wf, b ? b->data : NULL, full, NULL, N, C, M, group, Cg, Mg, K, npix_in, npix_out, 1, 1, 0, relu,
                  false, 0, 0, 0, false, {0}};
    if (g.k[0] == 1 && g.in[0] == 1 && g.s[1] == 1 && g.s[2] == 1) {
        j.padded = true;
        j.Hp = g.in[1] + g.pb[1] + g.pe[1];
        j.Wp = g.in[2] + g.pb[2] + g.pe[2];
        j.L = (g.out[1] - 1) * j.Wp + g.out[2];
        j.direct = K <= GX_CONV_DIRECT_K && Mg % 4 == 0;
        for (int64_t ch = 0; j.direct && ch < Cg; ch++)
            for (int64_t kh = 0; kh < g.k[1]; kh++)
                for (int64_t kw = 0; kw < g.k[2]; kw++) j.offs[(ch * g.k[1] + kh) * g.k[2] + kw] = ch * j.Hp * j.Wp + kh * g.d[1] * j.Wp + kw * g.d[2];
    }
    int64_t L = j.padded ? j.L : npix_out;
    /* images per block: about 256 KiB of columns, for cache */
    j.nb = (int64_t)(GX_CONV_COL_BYTES / sizeof(float)) / (K * L);
    if (j.nb < 1) j.nb = 1;
    double flops = 2.0 * (double)(N * M) * (double)(K * npix_out);
    int64_t threads = smelt_thread_count();
    j.parts = flops >= 1.5e6 && N >= threads ? threads : 1;
    if (j.nb > (N + j.parts - 1) / j.parts) j.nb = (N + j.parts - 1) / j.parts;
    j.scratch_per_part = (K + Mg) * j.nb * L + (j.padded ? Cg * j.Hp * j.Wp : 0);
    j.scratch = gx_scratch(c, (size_t)(j.parts * j.scratch_per_part) * sizeof(float));
    if (!j.scratch) return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (Conv): out of memory", gx_node_name(c->node));
    if (j.parts > 1) smelt_parallel_for(j.parts, 1, conv_part, &j);
    else conv_part(&j, 0, 1);
    if (pool2) /* Relu'd values: no NaN, no -0, so a plain max is MaxPool's */
        for (int64_t nc = 0; nc < N * M; nc++)
            for (int64_t ph = 0; ph < shape[2]; ph++)
                for (int64_t pw = 0; pw < shape[3]; pw++) {
                    const float *r0 = full + (nc * g.out[1] + 2 * ph) * g.out[2] + 2 * pw, *r1 = r0 + g.out[2];
                    float m = r0[0] > r0[1] ? r0[0] : r0[1], m2 = r1[0] > r1[1] ? r1[0] : r1[1];
                    o[(nc * shape[2] + ph) * shape[3] + pw] = m > m2 ? m : m2;
                }
    return NULL;
}

enum { P_MAX, P_AVG, P_LP };

/* f32 MaxPool without Indices: each output's window is clipped to the input once, no per-tap
 * bounds tests; (n, c) planes spread over the pool. An empty window gives -inf, as the general path. */
typedef struct {
    const geom *g;
    const float *x;
    float *o;
} maxpool_job;

/* Taps [lo, hi) of a window starting at base (stride d) that fall inside [0, n). */
static void clip_window(int64_t base, int64_t k, int64_t d, int64_t n, int64_t *lo, int64_t *hi)
{
    *lo = base >= 0 ? 0 : (-base + d - 1) / d;
    *hi = n - base <= 0 ? 0 : (n - base + d - 1) / d;
    if (*hi > k) *hi = k;
    if (*lo > *hi) *lo = *hi;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* One output row of a 2x2 stride-2 window over input rows r0, r1, 16 outputs a step: each row's
 * even and odd columns are separated by permutes, then combined in the scalar path's order (first
 * tap, then a strictly greater one: max_ps(v, acc) is v > acc ? v : acc), so NaN and signed zeros
 * come out as there. Masked loads never touch memory past the row's 2 * OW inputs. */
__attribute__((target("avx512f"))) static void maxpool22_row_avx512(const float *r0, const float *r1, float *o, int64_t OW)
{
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t ow = 0; ow < OW; ow += 16) {
        int64_t n = OW - ow < 16 ? OW - ow : 16, lo = 2 * n < 16 ? 2 * n : 16, hi = 2 * n - lo;
        __mmask16 ml = (__mmask16)((1u << lo) - 1), mh = (__mmask16)((1u << hi) - 1), mo = (__mmask16)((1u << n) - 1);
        __m512 a0 = _mm512_maskz_loadu_ps(ml, r0 + 2 * ow), a1 = _mm512_maskz_loadu_ps(mh, r0 + 2 * ow + 16);
        __m512 b0 = _mm512_maskz_loadu_ps(ml, r1 + 2 * ow), b1 = _mm512_maskz_loadu_ps(mh, r1 + 2 * ow + 16);
        __m512 acc = _mm512_permutex2var_ps(a0, ev, a1);
        acc = _mm512_max_ps(_mm512_permutex2var_ps(a0, od, a1), acc);
        acc = _mm512_max_ps(_mm512_permutex2var_ps(b0, ev, b1), acc);
        acc = _mm512_max_ps(_mm512_permutex2var_ps(b0, od, b1), acc);
        _mm512_mask_storeu_ps(o + ow, mo, acc);
    }
}
#endif

static void maxpool_planes(void *ctx, int64_t begin, int64_t end)
{
    const maxpool_job *j = ctx;
    const geom *g = j->g;
    int64_t npix_in = g->in[0] * g->in[1] * g->in[2], npix_out = g->out[0] * g->out[1] * g->out[2];
    /* 2x2 windows, stride 2, inside the input: the common CNN case, without clipping */
    bool k22 = g->k[0] == 1 && g->k[1] == 2 && g->k[2] == 2 && g->s[1] == 2 && g->s[2] == 2 && g->d[1] == 1 && g->d[2] == 1 && g->pb[1] == 0 &&
               g->pb[2] == 0 && g->out[1] * 2 <= g->in[1] && g->out[2] * 2 <= g->in[2] && g->out[0] == g->in[0];
    for (int64_t nc = begin; nc < end; nc++) {
        const float *x = j->x + nc * npix_in;
        float *o = j->o + nc * npix_out;
#if defined(__x86_64__) && defined(__GNUC__)
        static int avx512 = -1; /* decided once (a benign race: the same value) */
        if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
        if (k22 && avx512) {
            for (int64_t od = 0; od < g->out[0]; od++)
                for (int64_t oh = 0; oh < g->out[1]; oh++, o += g->out[2]) {
                    const float *r0 = x + (od * g->in[1] + 2 * oh) * g->in[2];
                    maxpool22_row_avx512(r0, r0 + g->in[2], o, g->out[2]);
                }
            continue;
        }
#endif
        if (k22) {
            for (int64_t od = 0; od < g->out[0]; od++)
                for (int64_t oh = 0; oh < g->out[1]; oh++) {
                    const float *r0 = x + (od * g->in[1] + 2 * oh) * g->in[2], *r1 = r0 + g->in[2];
                    for (int64_t ow = 0; ow < g->out[2]; ow++) {
                        float acc = r0[2 * ow], v = r0[2 * ow + 1];
                        acc = v > acc ? v : acc;
                        v = r1[2 * ow];
                        acc = v > acc ? v : acc;
                        v = r1[2 * ow + 1];
                        *o++ = v > acc ? v : acc;
                    }
                }
            continue;
        }
        for (int64_t od = 0; od < g->out[0]; od++) {
            int64_t b0 = od * g->s[0] - g->pb[0], lo0, hi0;
            clip_window(b0, g->k[0], g->d[0], g->in[0], &lo0, &hi0);
            for (int64_t oh = 0; oh < g->out[1]; oh++) {
                int64_t b1 = oh * g->s[1] - g->pb[1], lo1, hi1;
                clip_window(b1, g->k[1], g->d[1], g->in[1], &lo1, &hi1);
                for (int64_t ow = 0; ow < g->out[2]; ow++) {
                    int64_t b2 = ow * g->s[2] - g->pb[2], lo2, hi2;
                    clip_window(b2, g->k[2], g->d[2], g->in[2], &lo2, &hi2);
                    /* as the general path: the first tap, then any strictly greater one */
                    float acc = -INFINITY;
                    if (lo0 < hi0 && lo1 < hi1 && lo2 < hi2)
                        acc = x[((b0 + lo0 * g->d[0]) * g->in[1] + b1 + lo1 * g->d[1]) * g->in[2] + b2 + lo2 * g->d[2]];
                    for (int64_t kd = lo0; kd < hi0; kd++)
                        for (int64_t kh = lo1; kh < hi1; kh++) {
                            const float *r = x + ((b0 + kd * g->d[0]) * g->in[1] + b1 + kh * g->d[1]) * g->in[2] + b2;
                            for (int64_t kw = lo2; kw < hi2; kw++) {
                                float v = r[kw * g->d[2]];
                                acc = v > acc ? v : acc;
                            }
                        }
                    *o++ = acc;
                }
            }
        }
    }
}

static smelt_err *pool(gx_call *c, int kind)
{
    const gx_tensor *x = c->in[0];
    if (x->dtype != SMELT_DT_F32 && x->dtype != SMELT_DT_F64 && !(kind == P_MAX && (x->dtype == SMELT_DT_U8 || x->dtype == SMELT_DT_I8)))
        return gx_dtype_unsup(c, x->dtype);
    const int64_t *ks;
    int nk = gx_attr_ints(c->node, "kernel_shape", &ks);
    if (nk != x->ndim - 2) return gx_fail(c, "kernel_shape must have %d entries", x->ndim - 2);
    geom g;
    SMELT_TRY(geometry(c, x, ks, gx_attr_i(c->node, "ceil_mode", 0) != 0, &g));
    int64_t shape[GX_MAXD], N = x->shape[0], C = x->shape[1];
    out_shape(x, C, &g, shape);
    void *o;
    SMELT_TRY(gx_out(c, 0, x->dtype, x->ndim, shape, &o));
    int64_t *idx_out = NULL;
    if (kind == P_MAX && c->n_out > 1) SMELT_TRY(gx_out(c, 1, SMELT_DT_I64, x->ndim, shape, (void **)&idx_out));
    bool include_pad = gx_attr_i(c->node, "count_include_pad", 0) != 0, col_major = gx_attr_i(c->node, "storage_order", 0) != 0;
    double p = (double)gx_attr_i(c->node, "p", 2);
    int64_t npix_in = g.in[0] * g.in[1] * g.in[2], npix_out = g.out[0] * g.out[1] * g.out[2];
    if (kind == P_MAX && !idx_out && x->dtype == SMELT_DT_F32) {
        maxpool_job j = {&g, x->data, o};
        gx_parallel(N * C, npix_out * g.k[0] * g.k[1] * g.k[2] + 1, maxpool_planes, &j);
        return NULL;
    }
    const float *xf = x->dtype == SMELT_DT_F32 ? x->data : NULL;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t od = 0; od < g.out[0]; od++)
            for (int64_t oh = 0; oh < g.out[1]; oh++)
                for (int64_t ow = 0; ow < g.out[2]; ow++) {
                    double acc = kind == P_MAX ? -INFINITY : 0;
                    int64_t cnt = 0, padded = 0, arg = -1;
                    for (int64_t kd = 0; kd < g.k[0]; kd++) {
                        int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
                        for (int64_t kh = 0; kh < g.k[1]; kh++) {
                            int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
                            for (int64_t kw = 0; kw < g.k[2]; kw++) {
                                int64_t iw = ow * g.s[2] - g.pb[2] + kw * g.d[2];
                                bool in_pad = id >= -g.pb[0] && id < g.in[0] + g.pe[0] && ih >= -g.pb[1] && ih < g.in[1] + g.pe[1] &&
                                              iw >= -g.pb[2] && iw < g.in[2] + g.pe[2];
                                padded += in_pad;
                                if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1] || iw < 0 || iw >= g.in[2]) continue;
                                int64_t k = (id * g.in[1] + ih) * g.in[2] + iw;
                                double v = xf ? xf[nc * npix_in + k] : gx_get_f(x, nc * npix_in + k);
                                cnt++;
                                if (kind == P_MAX) {
                                    if (v > acc || arg < 0) {
                                        acc = v;
                                        arg = col_major ? (iw * g.in[1] + ih) * g.in[0] + id : k;
                                    }
                                } else if (kind == P_AVG) acc += v;
                                else acc += pow(fabs(v), p);
                            }
                        }
                    }
                    if (kind == P_AVG) acc = (include_pad ? padded : cnt) ? acc / (double)(include_pad ? padded : cnt) : 0;
                    if (kind == P_LP) acc = pow(acc, 1.0 / p);
                    int64_t oi = nc * npix_out + (od * g.out[1] + oh) * g.out[2] + ow;
                    switch (x->dtype) {
                    case SMELT_DT_F32: ((float *)o)[oi] = (float)acc; break;
                    case SMELT_DT_F64: ((double *)o)[oi] = acc; break;
                    case SMELT_DT_U8: ((uint8_t *)o)[oi] = (uint8_t)acc; break;
                    default: ((int8_t *)o)[oi] = (int8_t)acc; break;
                    }
                    if (idx_out) idx_out[oi] = nc * npix_in + (arg < 0 ? 0 : arg);
                }
    return NULL;
}

static smelt_err *k_maxpool(gx_call *c) { return pool(c, P_MAX); }
static smelt_err *k_avgpool(gx_call *c) { return pool(c, P_AVG); }
static smelt_err *k_lppool(gx_call *c) { return pool(c, P_LP); }

static smelt_err *global_pool(gx_call *c, bool max)
{
    const gx_tensor *x = c->in[0];
    if (x->dtype != SMELT_DT_F32) return gx_dtype_unsup(c, x->dtype);
    if (x->ndim < 3) return gx_fail(c, "input must have spatial dims");
    int64_t shape[GX_MAXD], npix_in = 1;
    for (int d = 0; d < x->ndim; d++) shape[d] = d < 2 ? x->shape[d] : 1;
    for (int d = 2; d < x->ndim; d++) npix_in *= x->shape[d];
    float *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, x->ndim, shape, (void **)&o));
    const float *xd = x->data;
    for (int64_t nc = 0; nc < x->shape[0] * x->shape[1]; nc++) {
        double acc = max ? -INFINITY : 0;
        for (int64_t i = 0; i < npix_in; i++) acc = max ? fmax(acc, xd[nc * npix_in + i]) : acc + xd[nc * npix_in + i];
        o[nc] = (float)(max ? acc : npix_in ? acc / (double)npix_in : 0);
    }
    return NULL;
}

static smelt_err *k_gap(gx_call *c) { return global_pool(c, false); }
static smelt_err *k_gmp(gx_call *c) { return global_pool(c, true); }

const gx_op gx_ops_conv[] = {
    {"Conv", k_conv, check_pads},
    {"MaxPool", k_maxpool, check_pads},
    {"AveragePool", k_avgpool, check_pads},
    {"LpPool", k_lppool, check_pads},
    {"GlobalAveragePool", k_gap, NULL},
    {"GlobalMaxPool", k_gmp, NULL},
    {NULL, NULL, NULL},
};
