/* Softmax family (Softmax, LogSoftmax, Hardmax: the pre-13 "flatten at axis" form and the
 * per-axis form), and normalizations: LayerNormalization (with Mean / InvStdDev outputs),
 * BatchNormalization (inference), InstanceNormalization, LRN, MeanVarianceNormalization.
 * f32 throughout, statistics accumulated in double. */
#include <math.h>
#include <string.h>

#include "runtime/graph/gx.h"

enum { S_SOFTMAX, S_LOG, S_HARD };

/* x viewed as [outer, n, inner]; the op runs along n (stride inner). */
static void softmax_f32(int kind, const float *x, float *y, int64_t outer, int64_t n, int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xr = x + o * n * inner + i;
            float *yr = y + o * n * inner + i;
            float mx = -INFINITY;
            int64_t arg = 0;
            for (int64_t k = 0; k < n; k++)
                if (xr[k * inner] > mx) mx = xr[k * inner], arg = k;
            if (kind == S_HARD) {
                for (int64_t k = 0; k < n; k++) yr[k * inner] = k == arg ? 1.0f : 0.0f;
                continue;
            }
            double sum = 0;
            for (int64_t k = 0; k < n; k++) {
                float e = expf(xr[k * inner] - mx);
                sum += e;
                if (kind == S_SOFTMAX) yr[k * inner] = e;
            }
            if (kind == S_SOFTMAX) {
                float inv = (float)(1.0 / sum);
                for (int64_t k = 0; k < n; k++) yr[k * inner] *= inv;
            } else {
                float ls = (float)log(sum);
                for (int64_t k = 0; k < n; k++) yr[k * inner] = xr[k * inner] - mx - ls;
            }
        }
}

/* Softmax over contiguous rows (the last axis): vectorized exp, rows spread over the pool. */
typedef struct {
    const float *x;
    float *y;
    int64_t n;
} rows_job;

static void softmax_rows(void *ctx, int64_t begin, int64_t end)
{
    const rows_job *j = ctx;
    for (int64_t r = begin; r < end; r++) {
        gx_softmax_row_f32(j->x + r * j->n, j->y + r * j->n, j->n);
    }
}

static smelt_err *softmax(gx_call *c, int kind)
{
    const gx_tensor *x = c->in[0];
    if (x->dtype != SMELT_DT_F32) return gx_dtype_unsup(c, x->dtype);
    int r = x->ndim ? x->ndim : 1;
    int64_t axis = gx_attr_i(c->node, "axis", c->opset < 13 ? 1 : -1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return gx_fail(c, "axis %lld out of range for rank %d", (long long)gx_attr_i(c->node, "axis", -1), x->ndim);
    int64_t outer = 1, n = 1, inner = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d < axis) outer *= x->shape[d];
        else if (d == axis || c->opset < 13) n *= x->shape[d];
        else inner *= x->shape[d];
    }
    float *y;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, x->ndim, x->shape, (void **)&y));
    if (x->numel && kind == S_SOFTMAX && inner == 1 && n > 0) {
        rows_job j = {x->data, y, n};
        gx_parallel(outer, 8 * n, softmax_rows, &j);
    } else if (x->numel)
        softmax_f32(kind, x->data, y, outer, n, inner);
    return NULL;
}

static smelt_err *k_softmax(gx_call *c) { return softmax(c, S_SOFTMAX); }
static smelt_err *k_logsoftmax(gx_call *c) { return softmax(c, S_LOG); }
static smelt_err *k_hardmax(gx_call *c) { return softmax(c, S_HARD); }

static smelt_err *k_layernorm(gx_call *c)
{
    const gx_tensor *x = c->in[0], *s = c->n_in > 1 ? c->in[1] : NULL, *b = c->n_in > 2 ? c->in[2] : NULL;
    if (x->dtype != SMELT_DT_F32 || (s && s->dtype != SMELT_DT_F32) || (b && b->dtype != SMELT_DT_F32)) return gx_dtype_unsup(c, x->dtype);
    int ax;
    if (!gx_axis(gx_attr_i(c->node, "axis", -1), x->ndim, &ax)) return gx_fail(c, "axis out of range for rank %d", x->ndim);
    double eps = gx_attr_f(c->node, "epsilon", 1e-5);
    int64_t outer = 1, n = 1;
    for (int d = 0; d < x->ndim; d++) *(d < ax ? &outer : &n) *= x->shape[d];
    if (!s || (s->numel != n && (s->numel == 0 || n % s->numel))) return gx_fail(c, "Scale has %lld elements, expected %lld", s ? (long long)s->numel : 0LL, (long long)n);
    if (b && (b->numel == 0 || n % b->numel)) return gx_fail(c, "B has %lld elements, expected %lld", (long long)b->numel, (long long)n);
    float *y, *mean = NULL, *inv = NULL;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, x->ndim, x->shape, (void **)&y));
    int64_t sshape[GX_MAXD];
    for (int d = 0; d < x->ndim; d++) sshape[d] = d < ax ? x->shape[d] : 1;
    if (c->n_out > 1) SMELT_TRY(gx_out(c, 1, SMELT_DT_F32, x->ndim, sshape, (void **)&mean));
    if (c->n_out > 2) SMELT_TRY(gx_out(c, 2, SMELT_DT_F32, x->ndim, sshape, (void **)&inv));
    const float *xd = x->data, *sd = s->data, *bd = b ? b->data : NULL;
    int64_t sn = s->numel, bn = b ? b->numel : 1;
    for (int64_t o = 0; o < outer; o++) {
        const float *xr = xd + o * n;
        float *yr = y + o * n;
        double mu = 0, var = 0;
        for (int64_t i = 0; i < n; i++) mu += xr[i];
        mu = n ? mu / (double)n : 0;
        for (int64_t i = 0; i < n; i++) var += (xr[i] - mu) * (xr[i] - mu);
        var = n ? var / (double)n : 0;
        double is = 1.0 / sqrt(var + eps);
        for (int64_t i = 0; i < n; i++) {
            float v = (float)((xr[i] - mu) * is) * sd[i % sn];
            yr[i] = bd ? v + bd[i % bn] : v;
        }
        if (mean) mean[o] = (float)mu;
        if (inv) inv[o] = (float)is;
    }
    return NULL;
}

static smelt_err *check_batchnorm(const smelt_node *n, int opset)
{
    if (gx_attr_i(n, "training_mode", 0)) return gx_node_unsup(n, "attribute 'training_mode'=1 not supported");
    if (n->n_outputs > 1) return gx_node_unsup(n, "training outputs (running mean/var) not supported");
    return NULL;
}

static smelt_err *k_batchnorm(gx_call *c)
{
    const gx_tensor *x = c->in[0];
    for (int i = 0; i < 5; i++) {
        if (i >= c->n_in || !c->in[i]) return gx_fail(c, "expected 5 inputs");
        if (c->in[i]->dtype != SMELT_DT_F32) return gx_dtype_unsup(c, c->in[i]->dtype);
    }
    if (x->ndim < 2) return gx_fail(c, "input must have a channel dim");
    int64_t C = x->shape[1], I = 1;
    for (int i = 1; i < 5; i++)
        if (c->in[i]->numel != C) return gx_fail(c, "input %d has %lld elements for %lld channels", i, (long long)c->in[i]->numel, (long long)C);
    for (int d = 2; d < x->ndim; d++) I *= x->shape[d];
    double eps = gx_attr_f(c->node, "epsilon", 1e-5);
    float *y;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, x->ndim, x->shape, (void **)&y));
    const float *xd = x->data, *sc = c->in[1]->data, *bi = c->in[2]->data, *mu = c->in[3]->data, *va = c->in[4]->data;
    for (int64_t n = 0; n < x->shape[0]; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            float a = (float)(sc[ch] / sqrt((double)va[ch] + eps)), bb = bi[ch] - mu[ch] * a;
            const float *xr = xd + (n * C + ch) * I;
            float *yr = y + (n * C + ch) * I;
            for (int64_t i = 0; i < I; i++) yr[i] = xr[i] * a + bb;
        }
    return NULL;
}

static smelt_err *k_instancenorm(gx_call *c)
{
    const gx_tensor *x = c->in[0], *s = c->in[1], *b = c->in[2];
    if (!s || !b) return gx_fail(c, "expected 3 inputs");
    if (x->dtype != SMELT_DT_F32 || s->dtype != SMELT_DT_F32 || b->dtype != SMELT_DT_F32) return gx_dtype_unsup(c, x->dtype);
    if (x->ndim < 3) return gx_fail(c, "input must have spatial dims");
    int64_t C = x->shape[1], I = 1;
    if (s->numel != C || b->numel != C) return gx_fail(c, "scale and B must have %lld elements", (long long)C);
    for (int d = 2; d < x->ndim; d++) I *= x->shape[d];
    double eps = gx_attr_f(c->node, "epsilon", 1e-5);
    float *y;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, x->ndim, x->shape, (void **)&y));
    const float *xd = x->data, *sd = s->data, *bd = b->data;
    for (int64_t nc = 0; nc < x->shape[0] * C; nc++) {
        const float *xr = xd + nc * I;
        float *yr = y + nc * I;
        double mu = 0, var = 0;
        for (int64_t i = 0; i < I; i++) mu += xr[i];
        mu /= (double)I;
        for (int64_t i = 0; i < I; i++) var += (xr[i] - mu) * (xr[i] - mu);
        var /= (double)I;
        double is = 1.0 / sqrt(var + eps);
        int64_t ch = nc % C;
        for (int64_t i = 0; i < I; i++) yr[i] = (float)((xr[i] - mu) * is * sd[ch] + bd[ch]);
    }
    return NULL;
}

static smelt_err *k_lrn(gx_call *c)
{
    const gx_tensor *x = c->in[0];
    if (x->dtype != SMELT_DT_F32) return gx_dtype_unsup(c, x->dtype);
    if (x->ndim < 2) return gx_fail(c, "input must have a channel dim");
    int64_t size = gx_attr_i(c->node, "size", 0);
    if (size < 1) return gx_fail(c, "'size' must be positive");
    double alpha = gx_attr_f(c->node, "alpha", 1e-4), beta = gx_attr_f(c->node, "beta", 0.75), bias = gx_attr_f(c->node, "bias", 1.0);
    int64_t C = x->shape[1], I = 1;
    for (int d = 2; d < x->ndim; d++) I *= x->shape[d];
    float *y;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, x->ndim, x->shape, (void **)&y));
    const float *xd = x->data;
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    for (int64_t n = 0; n < x->shape[0]; n++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t i = 0; i < I; i++) {
                double sq = 0;
                for (int64_t k = ch - lo; k <= ch + hi; k++)
                    if (k >= 0 && k < C) sq += (double)xd[(n * C + k) * I + i] * xd[(n * C + k) * I + i];
                int64_t at = (n * C + ch) * I + i;
                y[at] = (float)(xd[at] / pow(bias + alpha / (double)size * sq, beta));
            }
    return NULL;
}

static smelt_err *k_mvn(gx_call *c)
{
    const gx_tensor *x = c->in[0];
    if (x->dtype != SMELT_DT_F32) return gx_dtype_unsup(c, x->dtype);
    const int64_t *ax;
    int64_t dflt[3] = {0, 2, 3};
    int na = gx_attr_ints(c->node, "axes", &ax);
    if (na < 0) ax = dflt, na = 3;
    bool red[GX_MAXD] = {false};
    for (int i = 0; i < na; i++) {
        int a;
        if (!gx_axis(ax[i], x->ndim, &a)) return gx_fail(c, "axis %lld out of range", (long long)ax[i]);
        red[a] = true;
    }
    float *y;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, x->ndim, x->shape, (void **)&y));
    /* Group id of each element: its index over the kept axes. */
    int64_t st[GX_MAXD], groups = 1;
    for (int d = x->ndim - 1; d >= 0; d--)
        if (!red[d]) st[d] = groups, groups *= x->shape[d];
    double sums[2][64];
    if (groups > 64) return gx_unsup(c, "more than 64 normalization groups");
    memset(sums, 0, sizeof sums);
    int64_t cnt = groups ? x->numel / groups : 0;
    const float *xd = x->data;
    for (int pass = 0; pass < 3; pass++) {
        int64_t idx[GX_MAXD] = {0};
        for (int64_t i = 0; i < x->numel; i++) {
            int64_t gi = 0;
            for (int d = 0; d < x->ndim; d++)
                if (!red[d]) gi += idx[d] * st[d];
            double mu = sums[0][gi] / (double)cnt;
            if (pass == 0) sums[0][gi] += xd[i];
            else if (pass == 1) sums[1][gi] += (xd[i] - mu) * (xd[i] - mu);
            else y[i] = (float)((xd[i] - mu) / (sqrt(sums[1][gi] / (double)cnt) + 1e-9));
            for (int d = x->ndim - 1; d >= 0; d--) {
                if (++idx[d] < x->shape[d]) break;
                idx[d] = 0;
            }
        }
    }
    return NULL;
}

const gx_op gx_ops_norm[] = {
    {"Softmax", k_softmax, NULL},
    {"LogSoftmax", k_logsoftmax, NULL},
    {"Hardmax", k_hardmax, NULL},
    {"LayerNormalization", k_layernorm, NULL},
    {"BatchNormalization", k_batchnorm, check_batchnorm},
    {"InstanceNormalization", k_instancenorm, NULL},
    {"LRN", k_lrn, NULL},
    {"MeanVarianceNormalization", k_mvn, NULL},
    {NULL, NULL, NULL},
};
