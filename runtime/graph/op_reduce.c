/* Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare (axes as attribute in
 * older opsets or as input 1, keepdims, noop_with_empty_axes), ArgMax/ArgMin, CumSum.
 * Values are reduced in double and stored back in the input's type; one walk over the input in
 * memory order serves any set of axes (the output offset moves only along kept dims). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/graph/gx.h"

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQ };

static bool reducible(smelt_dtype dt)
{
    return dt == SMELT_DT_F32 || dt == SMELT_DT_F64 || dt == SMELT_DT_I64 || dt == SMELT_DT_I32 || dt == SMELT_DT_U8 || dt == SMELT_DT_I8 ||
           dt == SMELT_DT_U32 || dt == SMELT_DT_U64;
}

static void store(void *o, smelt_dtype dt, int64_t k, double v)
{
    switch (dt) {
    case SMELT_DT_F32: ((float *)o)[k] = (float)v; break;
    case SMELT_DT_F64: ((double *)o)[k] = v; break;
    case SMELT_DT_I64: ((int64_t *)o)[k] = isfinite(v) ? (int64_t)v : v > 0 ? INT64_MAX : INT64_MIN; break;
    case SMELT_DT_I32: ((int32_t *)o)[k] = isfinite(v) ? (int32_t)v : v > 0 ? INT32_MAX : INT32_MIN; break;
    case SMELT_DT_U32: ((uint32_t *)o)[k] = isfinite(v) && v >= 0 ? (uint32_t)v : v > 0 ? UINT32_MAX : 0; break;
    case SMELT_DT_U64: ((uint64_t *)o)[k] = isfinite(v) && v >= 0 ? (uint64_t)v : v > 0 ? UINT64_MAX : 0; break;
    case SMELT_DT_U8: ((uint8_t *)o)[k] = isfinite(v) && v >= 0 ? (uint8_t)v : v > 0 ? 255 : 0; break;
    default: ((int8_t *)o)[k] = isfinite(v) ? (int8_t)v : v > 0 ? 127 : -128; break;
    }
}

/* The input as doubles (f32 and i64 fast paths, the rest through gx_get_f). Caller frees. */
static double *as_double(const gx_tensor *x)
{
    double *v = malloc((size_t)(x->numel ? x->numel : 1) * sizeof *v);
    if (!v) return NULL;
    if (x->dtype == SMELT_DT_F32)
        for (int64_t i = 0; i < x->numel; i++) v[i] = ((const float *)x->data)[i];
    else if (x->dtype == SMELT_DT_I64)
        for (int64_t i = 0; i < x->numel; i++) v[i] = (double)((const int64_t *)x->data)[i];
    else
        for (int64_t i = 0; i < x->numel; i++) v[i] = gx_get_f(x, i);
    return v;
}

/* Axes to reduce: the attribute, else input 1; *all when none given. */
static smelt_err *reduce_axes(gx_call *c, const gx_tensor *x, bool *red, bool *noop)
{
    int64_t axes[64];
    int n = -1;
    const int64_t *v;
    int na = gx_attr_ints(c->node, "axes", &v);
    if (na >= 0) {
        if (na > 64) return gx_unsup(c, "%d axes", na);
        memcpy(axes, v, (size_t)na * sizeof *v);
        n = na;
    } else if (c->n_in > 1 && c->in[1]) {
        if (c->in[1]->dtype != SMELT_DT_I64 || c->in[1]->numel > 64) return gx_fail(c, "'axes' must be int64 with at most 64 entries");
        n = (int)gx_read_ints(c->in[1], axes, 64);
    }
    *noop = false;
    memset(red, 0, GX_MAXD * sizeof *red);
    if (n <= 0) {
        if (gx_attr_i(c->node, "noop_with_empty_axes", 0)) *noop = true;
        else
            for (int d = 0; d < x->ndim; d++) red[d] = true;
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        int a;
        if (!gx_axis(axes[i], x->ndim, &a)) return gx_fail(c, "axis %lld out of range for rank %d", (long long)axes[i], x->ndim);
        red[a] = true;
    }
    return NULL;
}

static smelt_err *reduce(gx_call *c, int op)
{
    const gx_tensor *x = c->in[0];
    if (!reducible(x->dtype)) return gx_dtype_unsup(c, x->dtype);
    bool red[GX_MAXD], noop;
    SMELT_TRY(reduce_axes(c, x, red, &noop));
    bool keep = gx_attr_i(c->node, "keepdims", 1) != 0;
    int64_t oshape[GX_MAXD], kshape[GX_MAXD], st[GX_MAXD], ost[GX_MAXD];
    int on = 0;
    for (int d = 0; d < x->ndim; d++) {
        kshape[d] = red[d] ? 1 : x->shape[d];
        if (!red[d] || keep) oshape[on++] = kshape[d];
    }
    void *o;
    if (noop) {
        SMELT_TRY(gx_out(c, 0, x->dtype, x->ndim, x->shape, &o));
        if (x->numel) memcpy(o, x->data, smelt_dtype_nbytes(x->dtype, (uint64_t)x->numel));
        return NULL;
    }
    SMELT_TRY(gx_out(c, 0, x->dtype, on, oshape, &o));
    int64_t onum = smelt_shape_numel(x->ndim, kshape);
    /* f32 sum / mean over trailing axes (a norm's statistics): contiguous rows, summed in double
     * in memory order as the general walk does, without the copy to doubles */
    int first_red = x->ndim;
    while (first_red > 0 && red[first_red - 1]) first_red--;
    bool trailing = x->ndim > 0 && first_red < x->ndim;
    for (int d = 0; d < first_red; d++) trailing = trailing && !red[d];
    if (trailing && x->dtype == SMELT_DT_F32 && (op == R_SUM || op == R_MEAN) && onum > 0) {
        int64_t n = x->numel / onum;
        const float *xd = x->data;
        for (int64_t i = 0; i < onum; i++) {
            double a = 0;
            for (int64_t k = 0; k < n; k++) a += xd[i * n + k];
            ((float *)o)[i] = (float)(op == R_SUM ? a : n ? a / (double)n : NAN);
        }
        return NULL;
    }
    double *acc = malloc((size_t)(onum ? onum : 1) * sizeof *acc);
    double *v = as_double(x);
    int64_t *cnt = calloc((size_t)(onum ? onum : 1), sizeof *cnt);
    if (!acc || !v || !cnt) {
        free(acc), free(v), free(cnt);
        return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (%s): out of memory", gx_node_name(c->node), c->node->op);
    }
    double init = op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : op == R_PROD ? 1 : 0;
    for (int64_t i = 0; i < onum; i++) acc[i] = init;
    double mx_init = -INFINITY;
    gx_strides(x->ndim, x->shape, st);
    gx_strides(x->ndim, kshape, ost);
    /* LogSumExp needs each group's max first for stability. */
    double *mx = NULL;
    if (op == R_LOGSUMEXP) {
        mx = malloc((size_t)(onum ? onum : 1) * sizeof *mx);
        if (!mx) {
            free(acc), free(v), free(cnt);
            return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (%s): out of memory", gx_node_name(c->node), c->node->op);
        }
        for (int64_t i = 0; i < onum; i++) mx[i] = mx_init;
    }
    for (int pass = op == R_LOGSUMEXP ? 0 : 1; pass < 2; pass++) {
        int64_t idx[GX_MAXD] = {0}, oo = 0;
        for (int64_t i = 0; i < x->numel; i++) {
            double e = v[i];
            if (pass == 0) {
                if (e > mx[oo]) mx[oo] = e;
            } else {
                cnt[oo]++;
                switch (op) {
                case R_SUM: case R_MEAN: acc[oo] += e; break;
                case R_MAX: acc[oo] = isnan(e) || e > acc[oo] ? e : acc[oo]; break;
                case R_MIN: acc[oo] = isnan(e) || e < acc[oo] ? e : acc[oo]; break;
                case R_PROD: acc[oo] *= e; break;
                case R_L1: acc[oo] += fabs(e); break;
                case R_L2: case R_SUMSQ: acc[oo] += e * e; break;
                case R_LOGSUM: acc[oo] += e; break;
                default: acc[oo] += isinf(mx[oo]) ? exp(e) : exp(e - mx[oo]); break;
                }
            }
            for (int d = x->ndim - 1; d >= 0; d--) {
                idx[d]++;
                if (!red[d]) oo += ost[d];
                if (idx[d] < x->shape[d]) break;
                if (!red[d]) oo -= ost[d] * x->shape[d];
                idx[d] = 0;
            }
        }
    }
    for (int64_t i = 0; i < onum; i++) {
        double r = acc[i];
        if (op == R_MEAN) r = cnt[i] ? r / (double)cnt[i] : NAN;
        else if (op == R_L2) r = sqrt(r);
        else if (op == R_LOGSUM) r = log(r);
        else if (op == R_LOGSUMEXP) r = isinf(mx[i]) ? log(r) : log(r) + mx[i];
        store(o, x->dtype, i, r);
    }
    free(acc), free(v), free(cnt), free(mx);
    return NULL;
}

static smelt_err *k_rsum(gx_call *c) { return reduce(c, R_SUM); }
static smelt_err *k_rmean(gx_call *c) { return reduce(c, R_MEAN); }
static smelt_err *k_rmax(gx_call *c) { return reduce(c, R_MAX); }
static smelt_err *k_rmin(gx_call *c) { return reduce(c, R_MIN); }
static smelt_err *k_rprod(gx_call *c) { return reduce(c, R_PROD); }
static smelt_err *k_rl1(gx_call *c) { return reduce(c, R_L1); }
static smelt_err *k_rl2(gx_call *c) { return reduce(c, R_L2); }
static smelt_err *k_rlogsum(gx_call *c) { return reduce(c, R_LOGSUM); }
static smelt_err *k_rlogsumexp(gx_call *c) { return reduce(c, R_LOGSUMEXP); }
static smelt_err *k_rsumsq(gx_call *c) { return reduce(c, R_SUMSQ); }

static smelt_err *arg(gx_call *c, bool max)
{
    const gx_tensor *x = c->in[0];
    if (!reducible(x->dtype)) return gx_dtype_unsup(c, x->dtype);
    int ax;
    if (!gx_axis(gx_attr_i(c->node, "axis", 0), x->ndim, &ax)) return gx_fail(c, "axis out of range for rank %d", x->ndim);
    bool keep = gx_attr_i(c->node, "keepdims", 1) != 0, last = gx_attr_i(c->node, "select_last_index", 0) != 0;
    int64_t oshape[GX_MAXD], outer = 1, n = x->shape[ax], inner = 1;
    int on = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d != ax || keep) oshape[on++] = d == ax ? 1 : x->shape[d];
        if (d < ax) outer *= x->shape[d];
        if (d > ax) inner *= x->shape[d];
    }
    if (n == 0) return gx_fail(c, "cannot take the arg%s of an empty axis", max ? "max" : "min");
    int64_t *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_I64, on, oshape, (void **)&o));
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            double bv = gx_get_f(x, a * n * inner + i);
            for (int64_t k = 1; k < n; k++) {
                double e = gx_get_f(x, (a * n + k) * inner + i);
                bool better = max ? (last ? e >= bv : e > bv) : (last ? e <= bv : e < bv);
                if (better) best = k, bv = e;
            }
            o[a * inner + i] = best;
        }
    return NULL;
}

static smelt_err *k_argmax(gx_call *c) { return arg(c, true); }
static smelt_err *k_argmin(gx_call *c) { return arg(c, false); }

static smelt_err *k_cumsum(gx_call *c)
{
    const gx_tensor *x = c->in[0];
    if (!reducible(x->dtype)) return gx_dtype_unsup(c, x->dtype);
    if (c->n_in < 2 || !c->in[1] || c->in[1]->numel != 1) return gx_fail(c, "'axis' must be a scalar");
    int ax;
    if (!gx_axis(gx_get_i(c->in[1], 0), x->ndim, &ax)) return gx_fail(c, "axis out of range for rank %d", x->ndim);
    bool excl = gx_attr_i(c->node, "exclusive", 0) != 0, rev = gx_attr_i(c->node, "reverse", 0) != 0;
    int64_t outer = 1, n = x->shape[ax], inner = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d < ax) outer *= x->shape[d];
        if (d > ax) inner *= x->shape[d];
    }
    void *o;
    SMELT_TRY(gx_out(c, 0, x->dtype, x->ndim, x->shape, &o));
    bool integer = x->dtype != SMELT_DT_F32 && x->dtype != SMELT_DT_F64;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < inner; i++) {
            double s = 0;
            int64_t si = 0;
            for (int64_t j = 0; j < n; j++) {
                int64_t k = rev ? n - 1 - j : j, at = (a * n + k) * inner + i;
                if (excl) store(o, x->dtype, at, integer ? (double)si : s);
                if (integer) si += gx_get_i(x, at);
                else s += gx_get_f(x, at);
                if (!excl) store(o, x->dtype, at, integer ? (double)si : s);
            }
        }
    return NULL;
}

const gx_op gx_ops_reduce[] = {
    {"ReduceSum", k_rsum, NULL},
    {"ReduceMean", k_rmean, NULL},
    {"ReduceMax", k_rmax, NULL},
    {"ReduceMin", k_rmin, NULL},
    {"ReduceProd", k_rprod, NULL},
    {"ReduceL1", k_rl1, NULL},
    {"ReduceL2", k_rl2, NULL},
    {"ReduceLogSum", k_rlogsum, NULL},
    {"ReduceLogSumExp", k_rlogsumexp, NULL},
    {"ReduceSumSquare", k_rsumsq, NULL},
    {"ArgMax", k_argmax, NULL},
    {"ArgMin", k_argmin, NULL},
    {"CumSum", k_cumsum, NULL},
    {NULL, NULL, NULL},
};
