/* Convolution and pooling over 1 to 3 spatial dims (NC + spatial): Conv (im2col + sgemm, groups,
 * dilations, strides, pads, auto_pad), MaxPool (with Indices), AveragePool, LpPool,
 * GlobalAveragePool, GlobalMaxPool. Spatial dims are handled as (D, H, W) with missing leading dims
 * of size 1, so one code path serves 1-D, 2-D and 3-D. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* col[(c*KD+kd)*KH*KW + kh*KW + kw][od*OH*OW + oh*OW + ow] for one image's channels [C]. */
static void im2col(const float *x, int64_t C, const geom *g, float *col)
{
    int64_t npix_out = g->out[0] * g->out[1] * g->out[2];
    for (int64_t ch = 0; ch < C; ch++)
        for (int64_t kd = 0; kd < g->k[0]; kd++)
            for (int64_t kh = 0; kh < g->k[1]; kh++)
                for (int64_t kw = 0; kw < g->k[2]; kw++) {
                    float *dst = col + (((ch * g->k[0] + kd) * g->k[1] + kh) * g->k[2] + kw) * npix_out;
                    for (int64_t od = 0; od < g->out[0]; od++) {
                        int64_t id = od * g->s[0] - g->pb[0] + kd * g->d[0];
                        for (int64_t oh = 0; oh < g->out[1]; oh++) {
                            int64_t ih = oh * g->s[1] - g->pb[1] + kh * g->d[1];
                            float *row = dst + (od * g->out[1] + oh) * g->out[2];
                            if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                                memset(row, 0, (size_t)g->out[2] * sizeof *row);
                                continue;
                            }
                            const float *src = x + ((ch * g->in[0] + id) * g->in[1] + ih) * g->in[2];
                            for (int64_t ow = 0; ow < g->out[2]; ow++) {
                                int64_t iw = ow * g->s[2] - g->pb[2] + kw * g->d[2];
                                row[ow] = iw >= 0 && iw < g->in[2] ? src[iw] : 0.0f;
                            }
                        }
                    }
                }
}

static smelt_err *k_conv(gx_call *c)
{
    const gx_tensor *x = c->in[0], *w = c->in[1], *b = c->n_in > 2 ? c->in[2] : NULL;
    if (!x || !w) return gx_fail(c, "expected X and W");
    if (x->dtype != SMELT_DT_F32 || w->dtype != SMELT_DT_F32 || (b && b->dtype != SMELT_DT_F32)) return gx_dtype_unsup(c, x->dtype);
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
    int64_t shape[GX_MAXD];
    out_shape(x, M, &g, shape);
    float *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, x->ndim, shape, (void **)&o));
    int64_t Cg = C / group, Mg = M / group, K = Cg * g.k[0] * g.k[1] * g.k[2], npix_out = g.out[0] * g.out[1] * g.out[2];
    int64_t npix_in = g.in[0] * g.in[1] * g.in[2];
    if (npix_out == 0 || N == 0) return NULL;
    bool direct = K == Cg && g.s[0] * g.s[1] * g.s[2] == 1 && g.pb[0] + g.pb[1] + g.pb[2] + g.pe[0] + g.pe[1] + g.pe[2] == 0;
    float *col = NULL;
    if (!direct) {
        col = malloc((size_t)(K * npix_out) * sizeof *col);
        if (!col) return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (Conv): out of memory", gx_node_name(c->node));
    }
    const float *xd = x->data, *wd = w->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < group; gi++) {
            const float *xg = xd + (n * C + gi * Cg) * npix_in;
            const float *src = xg;
            if (!direct) {
                im2col(xg, Cg, &g, col);
                src = col;
            }
            float *og = o + (n * M + gi * Mg) * npix_out;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Mg, (int)npix_out, (int)K, 1.0f, wd + gi * Mg * K, (int)K, src, (int)npix_out, 0.0f, og, (int)npix_out);
        }
    free(col);
    if (b) {
        const float *bd = b->data;
        for (int64_t n = 0; n < N; n++)
            for (int64_t m = 0; m < M; m++) {
                float *r = o + (n * M + m) * npix_out, bv = bd[m];
                for (int64_t i = 0; i < npix_out; i++) r[i] += bv;
            }
    }
    return NULL;
}

enum { P_MAX, P_AVG, P_LP };

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
