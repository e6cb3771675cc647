/* Ops that fit no other family: the losses NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss,
 * the window generators (Hann, Hamming, Blackman), Compress, ReverseSequence, Det,
 * QuantizeLinear / DequantizeLinear (u8/i8, per tensor or per axis). Computed in double, stored in
 * the input's float type (f32 or f64). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/graph/gx.h"

static bool is_fl(smelt_dtype dt) { return dt == SMELT_DT_F32 || dt == SMELT_DT_F64; }

static void put_f(void *o, smelt_dtype dt, int64_t k, double v)
{
    if (dt == SMELT_DT_F32) ((float *)o)[k] = (float)v;
    else ((double *)o)[k] = v;
}

static smelt_err *check_reduction(const smelt_node *n, int opset)
{
    const char *r = gx_attr_s(n, "reduction", "mean");
    if (strcmp(r, "none") && strcmp(r, "sum") && strcmp(r, "mean")) return gx_node_unsup(n, "attribute 'reduction'='%s' not supported", r);
    return NULL;
}

/* loss over logp [N, C, D] (D = product of the trailing dims) and targets [N, D]. */
static smelt_err *nll(gx_call *c, const gx_tensor *shape_src, const double *logp, const gx_tensor *tgt, const gx_tensor *w, smelt_dtype dt)
{
    int64_t N = shape_src->shape[0], C = shape_src->shape[1], D = 1;
    for (int d = 2; d < shape_src->ndim; d++) D *= shape_src->shape[d];
    if (tgt->dtype != SMELT_DT_I64 && tgt->dtype != SMELT_DT_I32) return gx_fail(c, "target must be int64");
    if (tgt->numel != N * D) return gx_fail(c, "target has %lld elements, expected %lld", (long long)tgt->numel, (long long)(N * D));
    if (w && (w->numel != C || !is_fl(w->dtype))) return gx_fail(c, "weight must hold %lld floats", (long long)C);
    const char *red = gx_attr_s(c->node, "reduction", "mean");
    bool has_ignore = smelt_node_attr(c->node, "ignore_index") != NULL;
    int64_t ignore = gx_attr_i(c->node, "ignore_index", 0);
    double *loss = malloc((size_t)(N * D + 1) * sizeof *loss);
    if (!loss) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    double sum = 0, wsum = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            int64_t t = gx_get_i(tgt, n * D + d);
            double l = 0, wt = 0;
            if (!(has_ignore && t == ignore)) {
                if (t < 0 || t >= C) {
                    free(loss);
                    return gx_fail(c, "target %lld out of range for %lld classes", (long long)t, (long long)C);
                }
                wt = w ? gx_get_f(w, t) : 1.0;
                l = -logp[(n * C + t) * D + d] * wt;
            }
            loss[n * D + d] = l;
            sum += l;
            wsum += wt;
        }
    void *o;
    smelt_err *err;
    if (strcmp(red, "none") == 0) {
        int64_t shape[GX_MAXD];
        shape[0] = N;
        for (int d = 2; d < shape_src->ndim; d++) shape[d - 1] = shape_src->shape[d];
        err = gx_out(c, 0, dt, shape_src->ndim - 1, shape, &o);
        for (int64_t i = 0; !err && i < N * D; i++) put_f(o, dt, i, loss[i]);
    } else {
        err = gx_out(c, 0, dt, 0, NULL, &o);
        if (!err) put_f(o, dt, 0, strcmp(red, "sum") == 0 ? sum : sum / wsum);
    }
    free(loss);
    return err;
}

static smelt_err *k_nll(gx_call *c)
{
    const gx_tensor *x = c->in[0], *t = c->in[1], *w = c->n_in > 2 ? c->in[2] : NULL;
    if (!t) return gx_fail(c, "target is missing");
    if (!is_fl(x->dtype)) return gx_dtype_unsup(c, x->dtype);
    if (x->ndim < 2) return gx_fail(c, "input must be [N, C, ...]");
    double *v = malloc((size_t)(x->numel + 1) * sizeof *v);
    if (!v) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < x->numel; i++) v[i] = gx_get_f(x, i);
    smelt_err *err = nll(c, x, v, t, w, x->dtype);
    free(v);
    return err;
}

static smelt_err *k_sce(gx_call *c)
{
    const gx_tensor *x = c->in[0], *t = c->in[1], *w = c->n_in > 2 ? c->in[2] : NULL;
    if (!t) return gx_fail(c, "labels are missing");
    if (!is_fl(x->dtype)) return gx_dtype_unsup(c, x->dtype);
    if (x->ndim < 2) return gx_fail(c, "scores must be [N, C, ...]");
    int64_t N = x->shape[0], C = x->shape[1], D = N > 0 && C > 0 ? x->numel / (N * C) : 0;
    double *lp = malloc((size_t)(x->numel + 1) * sizeof *lp);
    if (!lp) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            double mx = -INFINITY, s = 0;
            for (int64_t k = 0; k < C; k++) mx = fmax(mx, gx_get_f(x, (n * C + k) * D + d));
            for (int64_t k = 0; k < C; k++) s += exp(gx_get_f(x, (n * C + k) * D + d) - mx);
            for (int64_t k = 0; k < C; k++) lp[(n * C + k) * D + d] = gx_get_f(x, (n * C + k) * D + d) - mx - log(s);
        }
    smelt_err *err = nll(c, x, lp, t, w, x->dtype);
    if (!err && c->n_out > 1) {
        void *o;
        err = gx_out(c, 1, x->dtype, x->ndim, x->shape, &o);
        for (int64_t i = 0; !err && i < x->numel; i++) put_f(o, x->dtype, i, lp[i]);
    }
    free(lp);
    return err;
}

enum { W_HANN, W_HAMMING, W_BLACKMAN };

static smelt_err *window(gx_call *c, int kind)
{
    const gx_tensor *sz = c->in[0];
    if (sz->numel != 1) return gx_fail(c, "size must be a scalar");
    int64_t n = gx_get_i(sz, 0);
    if (n < 0 || n > (1 << 26)) return gx_fail(c, "size %lld out of range", (long long)n);
    smelt_dtype dt = smelt_dtype_from_onnx((int)gx_attr_i(c->node, "output_datatype", 1));
    if (dt == SMELT_DT_INVALID) return gx_unsup(c, "attribute 'output_datatype' not supported");
    bool periodic = gx_attr_i(c->node, "periodic", 1) != 0;
    void *o;
    SMELT_TRY(gx_out(c, 0, dt, 1, &n, &o));
    double N = periodic ? (double)n : (double)n - 1;
    for (int64_t i = 0; i < n; i++) {
        double a = 2 * M_PI * (double)i / N, v;
        if (kind == W_HANN) v = 0.5 - 0.5 * cos(a);
        else if (kind == W_HAMMING) v = 25.0 / 46.0 - (21.0 / 46.0) * cos(a);
        else v = 0.42 - 0.5 * cos(a) + 0.08 * cos(2 * a);
        switch (dt) {
        case SMELT_DT_F32: ((float *)o)[i] = (float)v; break;
        case SMELT_DT_F64: ((double *)o)[i] = v; break;
        case SMELT_DT_I64: ((int64_t *)o)[i] = (int64_t)v; break;
        case SMELT_DT_I32: ((int32_t *)o)[i] = (int32_t)v; break;
        default: return gx_dtype_unsup(c, dt);
        }
    }
    return NULL;
}

static smelt_err *k_hann(gx_call *c) { return window(c, W_HANN); }
static smelt_err *k_hamming(gx_call *c) { return window(c, W_HAMMING); }
static smelt_err *k_blackman(gx_call *c) { return window(c, W_BLACKMAN); }

static smelt_err *k_compress(gx_call *c)
{
    const gx_tensor *x = c->in[0], *cond = c->in[1];
    if (!cond || cond->dtype != SMELT_DT_BOOL) return gx_fail(c, "condition must be bool");
    const smelt_attr *axa = smelt_node_attr(c->node, "axis");
    int es = gx_esize(x->dtype);
    const uint8_t *cd = cond->data;
    if (!axa) { /* flattened */
        int64_t n = 0;
        for (int64_t i = 0; i < cond->numel && i < x->numel; i++) n += cd[i] != 0;
        char *o;
        SMELT_TRY(gx_out(c, 0, x->dtype, 1, &n, (void **)&o));
        for (int64_t i = 0, k = 0; i < cond->numel && i < x->numel; i++)
            if (cd[i]) memcpy(o + es * k++, (const char *)x->data + i * es, (size_t)es);
        return NULL;
    }
    int ax;
    if (!gx_axis(axa->i, x->ndim, &ax)) return gx_fail(c, "axis out of range");
    int64_t outer = 1, inner = es, n = x->shape[ax], kept = 0;
    for (int d = 0; d < ax; d++) outer *= x->shape[d];
    for (int d = ax + 1; d < x->ndim; d++) inner *= x->shape[d];
    for (int64_t i = 0; i < cond->numel && i < n; i++) kept += cd[i] != 0;
    int64_t shape[GX_MAXD];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = kept;
    char *o;
    SMELT_TRY(gx_out(c, 0, x->dtype, x->ndim, shape, (void **)&o));
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0, k = 0; i < cond->numel && i < n; i++)
            if (cd[i]) memcpy(o + (a * kept + k++) * inner, (const char *)x->data + (a * n + i) * inner, (size_t)inner);
    return NULL;
}

static smelt_err *k_reverse_sequence(gx_call *c)
{
    const gx_tensor *x = c->in[0], *lens = c->in[1];
    if (!lens || x->ndim < 2) return gx_fail(c, "expected input of rank >= 2 and sequence_lens");
    int ba = (int)gx_attr_i(c->node, "batch_axis", 1), ta = (int)gx_attr_i(c->node, "time_axis", 0);
    if ((ba != 0 && ba != 1) || (ta != 0 && ta != 1) || ba == ta) return gx_fail(c, "batch_axis and time_axis must be 0 and 1");
    int64_t B = x->shape[ba], T = x->shape[ta], inner = gx_esize(x->dtype);
    if (lens->numel != B) return gx_fail(c, "sequence_lens has %lld entries for batch %lld", (long long)lens->numel, (long long)B);
    for (int d = 2; d < x->ndim; d++) inner *= x->shape[d];
    char *o;
    SMELT_TRY(gx_out(c, 0, x->dtype, x->ndim, x->shape, (void **)&o));
    for (int64_t b = 0; b < B; b++) {
        int64_t L = gx_get_i(lens, b);
        if (L < 0 || L > T) return gx_fail(c, "sequence length %lld out of range", (long long)L);
        for (int64_t t = 0; t < T; t++) {
            int64_t src = t < L ? L - 1 - t : t;
            int64_t di = ba == 0 ? b * T + t : t * B + b, si = ba == 0 ? b * T + src : src * B + b;
            memcpy(o + di * inner, (const char *)x->data + si * inner, (size_t)inner);
        }
    }
    return NULL;
}

static smelt_err *k_det(gx_call *c)
{
    const gx_tensor *x = c->in[0];
    if (!is_fl(x->dtype)) return gx_dtype_unsup(c, x->dtype);
    if (x->ndim < 2 || x->shape[x->ndim - 1] != x->shape[x->ndim - 2]) return gx_fail(c, "input must be [..., M, M]");
    int64_t M = x->shape[x->ndim - 1], mats = M ? x->numel / (M * M) : 0;
    void *o;
    SMELT_TRY(gx_out(c, 0, x->dtype, x->ndim - 2, x->shape, &o));
    double *a = malloc((size_t)(M * M + 1) * sizeof *a);
    if (!a) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int64_t b = 0; b < mats; b++) {
        for (int64_t i = 0; i < M * M; i++) a[i] = gx_get_f(x, b * M * M + i);
        double det = 1;
        for (int64_t k = 0; k < M; k++) { /* Gaussian elimination with partial pivoting */
            int64_t p = k;
            for (int64_t i = k + 1; i < M; i++)
                if (fabs(a[i * M + k]) > fabs(a[p * M + k])) p = i;
            if (a[p * M + k] == 0) {
                det = 0;
                break;
            }
            if (p != k) {
                for (int64_t j = 0; j < M; j++) {
                    double t = a[k * M + j];
                    a[k * M + j] = a[p * M + j], a[p * M + j] = t;
                }
                det = -det;
            }
            det *= a[k * M + k];
            for (int64_t i = k + 1; i < M; i++) {
                double f = a[i * M + k] / a[k * M + k];
                for (int64_t j = k; j < M; j++) a[i * M + j] -= f * a[k * M + j];
            }
        }
        put_f(o, x->dtype, b, det);
    }
    free(a);
    return NULL;
}

/* Scale / zero point of element i of x for a per-tensor or per-axis quantization. */
static int64_t qchan(const gx_tensor *x, const gx_tensor *scale, int ax, int64_t i)
{
    if (scale->numel == 1) return 0;
    int64_t inner = 1;
    for (int d = ax + 1; d < x->ndim; d++) inner *= x->shape[d];
    return (i / inner) % x->shape[ax];
}

static smelt_err *quant_common(gx_call *c, int *ax)
{
    const gx_tensor *x = c->in[0], *s = c->in[1];
    if (!s) return gx_fail(c, "scale is missing");
    *ax = 0;
    if (s->numel != 1 && !gx_axis(gx_attr_i(c->node, "axis", 1), x->ndim, ax)) return gx_fail(c, "axis out of range");
    if (s->numel != 1 && (s->ndim != 1 || x->ndim == 0 || s->numel != x->shape[*ax])) return gx_unsup(c, "blocked quantization not supported");
    const gx_tensor *z = c->n_in > 2 ? c->in[2] : NULL;
    if (z && z->numel != s->numel) return gx_fail(c, "zero point and scale differ in size");
    return NULL;
}

static smelt_err *k_quantize(gx_call *c)
{
    const gx_tensor *x = c->in[0], *s = c->in[1], *z = c->n_in > 2 ? c->in[2] : NULL;
    int ax;
    SMELT_TRY(quant_common(c, &ax));
    smelt_dtype dt = z ? z->dtype : SMELT_DT_U8;
    if (dt != SMELT_DT_U8 && dt != SMELT_DT_I8) return gx_dtype_unsup(c, dt);
    if (!is_fl(x->dtype)) return gx_dtype_unsup(c, x->dtype);
    void *o;
    SMELT_TRY(gx_out(c, 0, dt, x->ndim, x->shape, &o));
    double lo = dt == SMELT_DT_U8 ? 0 : -128, hi = dt == SMELT_DT_U8 ? 255 : 127;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t ch = qchan(x, s, ax, i);
        /* divide in the input's precision, as the reference does, so ties round the same way */
        double r = x->dtype == SMELT_DT_F32 ? (double)((float)gx_get_f(x, i) / (float)gx_get_f(s, ch)) : gx_get_f(x, i) / gx_get_f(s, ch);
        double q = nearbyint(r) + (z ? (double)gx_get_i(z, ch) : 0);
        q = isnan(q) ? 0 : q < lo ? lo : q > hi ? hi : q;
        if (dt == SMELT_DT_U8) ((uint8_t *)o)[i] = (uint8_t)q;
        else ((int8_t *)o)[i] = (int8_t)q;
    }
    return NULL;
}

static smelt_err *k_dequantize(gx_call *c)
{
    const gx_tensor *x = c->in[0], *s = c->in[1], *z = c->n_in > 2 ? c->in[2] : NULL;
    int ax;
    SMELT_TRY(quant_common(c, &ax));
    if (x->dtype != SMELT_DT_U8 && x->dtype != SMELT_DT_I8 && x->dtype != SMELT_DT_I32) return gx_dtype_unsup(c, x->dtype);
    if (!is_fl(s->dtype)) return gx_dtype_unsup(c, s->dtype);
    void *o;
    SMELT_TRY(gx_out(c, 0, s->dtype, x->ndim, x->shape, &o));
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t ch = qchan(x, s, ax, i);
        put_f(o, s->dtype, i, (double)(gx_get_i(x, i) - (z ? gx_get_i(z, ch) : 0)) * gx_get_f(s, ch));
    }
    return NULL;
}

const gx_op gx_ops_misc[] = {
    {"NegativeLogLikelihoodLoss", k_nll, check_reduction},
    {"SoftmaxCrossEntropyLoss", k_sce, check_reduction},
    {"HannWindow", k_hann, NULL},
    {"HammingWindow", k_hamming, NULL},
    {"BlackmanWindow", k_blackman, NULL},
    {"Compress", k_compress, NULL},
    {"ReverseSequence", k_reverse_sequence, NULL},
    {"Det", k_det, NULL},
    {"QuantizeLinear", k_quantize, NULL},
    {"DequantizeLinear", k_dequantize, NULL},
    {NULL, NULL, NULL},
};
