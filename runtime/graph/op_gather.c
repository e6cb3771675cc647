/* Indexing ops: Gather, GatherElements, GatherND, Scatter/ScatterElements, ScatterND (with
 * reductions), OneHot, NonZero, TopK. Indices may be negative (counted from the end) and are
 * bounds-checked: an index out of range is an error naming the node, never a wild read. */
#include <stdlib.h>
#include <string.h>

#include "runtime/graph/gx.h"

static bool is_index(const gx_tensor *t) { return t && (t->dtype == SMELT_DT_I64 || t->dtype == SMELT_DT_I32); }

static smelt_err *k_gather(gx_call *c)
{
    const gx_tensor *x = c->in[0], *ix = c->in[1];
    if (!is_index(ix)) return gx_fail(c, "indices must be int32 or int64");
    int ax;
    if (!gx_axis(gx_attr_i(c->node, "axis", 0), x->ndim, &ax)) return gx_fail(c, "axis out of range for rank %d", x->ndim);
    int nd = x->ndim - 1 + ix->ndim;
    if (nd > GX_MAXD) return gx_unsup(c, "%d output dims", nd);
    int64_t shape[GX_MAXD], outer = 1, inner = gx_esize(x->dtype), n = x->shape[ax];
    int k = 0;
    for (int d = 0; d < ax; d++) shape[k++] = x->shape[d], outer *= x->shape[d];
    for (int d = 0; d < ix->ndim; d++) shape[k++] = ix->shape[d];
    for (int d = ax + 1; d < x->ndim; d++) shape[k++] = x->shape[d], inner *= x->shape[d];
    char *o;
    SMELT_TRY(gx_out(c, 0, x->dtype, nd, shape, (void **)&o));
    int64_t m = ix->numel;
    for (int64_t j = 0; j < m; j++) {
        int64_t i = gx_get_i(ix, j);
        if (i < 0) i += n;
        if (i < 0 || i >= n) return gx_fail(c, "index %lld out of range for axis %d of size %lld", (long long)gx_get_i(ix, j), ax, (long long)n);
        for (int64_t a = 0; a < outer; a++)
            memcpy(o + (a * m + j) * inner, (const char *)x->data + (a * n + i) * inner, (size_t)inner);
    }
    return NULL;
}

/* Element j of indices (shape = ix's) maps to data offset with index replaced along axis. */
static smelt_err *elements(gx_call *c, const gx_tensor *x, const gx_tensor *ix, int ax, int64_t *offs)
{
    int64_t st[GX_MAXD], idx[GX_MAXD] = {0};
    gx_strides(x->ndim, x->shape, st);
    for (int64_t j = 0; j < ix->numel; j++) {
        int64_t i = gx_get_i(ix, j), n = x->shape[ax];
        if (i < 0) i += n;
        if (i < 0 || i >= n) return gx_fail(c, "index %lld out of range for axis %d of size %lld", (long long)gx_get_i(ix, j), ax, (long long)n);
        int64_t off = 0;
        for (int d = 0; d < x->ndim; d++) off += (d == ax ? i : idx[d]) * st[d];
        offs[j] = off;
        for (int d = ix->ndim - 1; d >= 0; d--) {
            if (++idx[d] < ix->shape[d]) break;
            idx[d] = 0;
        }
    }
    return NULL;
}

static smelt_err *k_gather_elements(gx_call *c)
{
    const gx_tensor *x = c->in[0], *ix = c->in[1];
    if (!is_index(ix) || ix->ndim != x->ndim) return gx_fail(c, "indices must be int32/int64 of the data's rank");
    for (int d = 0; d < x->ndim; d++)
        if (ix->shape[d] > x->shape[d] && d != (int)gx_attr_i(c->node, "axis", 0)) return gx_fail(c, "indices dim %d exceeds data", d);
    int ax;
    if (!gx_axis(gx_attr_i(c->node, "axis", 0), x->ndim, &ax)) return gx_fail(c, "axis out of range for rank %d", x->ndim);
    int64_t *offs = malloc((size_t)(ix->numel + 1) * sizeof *offs);
    if (!offs) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    smelt_err *err = elements(c, x, ix, ax, offs);
    char *o = NULL;
    if (!err) err = gx_out(c, 0, x->dtype, ix->ndim, ix->shape, (void **)&o);
    int es = gx_esize(x->dtype);
    for (int64_t j = 0; !err && j < ix->numel; j++) memcpy(o + j * es, (const char *)x->data + offs[j] * es, (size_t)es);
    free(offs);
    return err;
}

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static int reduction_of(const smelt_node *n)
{
    const char *r = gx_attr_s(n, "reduction", "none");
    return strcmp(r, "none") == 0 ? RED_NONE : strcmp(r, "add") == 0 ? RED_ADD : strcmp(r, "mul") == 0 ? RED_MUL : strcmp(r, "max") == 0 ? RED_MAX
           : strcmp(r, "min") == 0                                                                                    ? RED_MIN
                                                                                                                      : -1;
}

static smelt_err *check_reduction(const smelt_node *n, int opset)
{
    if (reduction_of(n) < 0) return gx_node_unsup(n, "attribute 'reduction'='%s' not supported", gx_attr_s(n, "reduction", ""));
    return NULL;
}

/* dst[k] (op)= src[j] for one element, in dt. */
static void scatter_one(char *dst, const char *src, smelt_dtype dt, int red)
{
    if (red == RED_NONE) {
        memcpy(dst, src, (size_t)gx_esize(dt));
        return;
    }
#define RED(T)                                                         \
    do {                                                               \
        T *d = (T *)dst, s = *(const T *)src;                          \
        if (red == RED_ADD) *d = (T)(*d + s);                          \
        else if (red == RED_MUL) *d = (T)(*d * s);                     \
        else if (red == RED_MAX) *d = *d > s ? *d : s;                 \
        else *d = *d < s ? *d : s;                                     \
    } while (0)
    switch (dt) {
    case SMELT_DT_F32: RED(float); break;
    case SMELT_DT_F64: RED(double); break;
    case SMELT_DT_I64: RED(int64_t); break;
    case SMELT_DT_I32: RED(int32_t); break;
    default: RED(uint8_t); break;
    }
#undef RED
}

static smelt_err *k_scatter_elements(gx_call *c)
{
    const gx_tensor *x = c->in[0], *ix = c->in[1], *up = c->in[2];
    if (!is_index(ix) || !up || ix->ndim != x->ndim || up->ndim != ix->ndim || up->dtype != x->dtype)
        return gx_fail(c, "indices and updates must match the data's rank and type");
    for (int d = 0; d < ix->ndim; d++)
        if (up->shape[d] != ix->shape[d]) return gx_fail(c, "updates and indices differ in shape");
    int red = reduction_of(c->node);
    if (red != RED_NONE && x->dtype != SMELT_DT_F32 && x->dtype != SMELT_DT_F64 && x->dtype != SMELT_DT_I64 && x->dtype != SMELT_DT_I32)
        return gx_dtype_unsup(c, x->dtype);
    int ax;
    if (!gx_axis(gx_attr_i(c->node, "axis", 0), x->ndim, &ax)) return gx_fail(c, "axis out of range for rank %d", x->ndim);
    int64_t *offs = malloc((size_t)(ix->numel + 1) * sizeof *offs);
    if (!offs) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    smelt_err *err = elements(c, x, ix, ax, offs);
    char *o = NULL;
    if (!err) err = gx_out(c, 0, x->dtype, x->ndim, x->shape, (void **)&o);
    int es = gx_esize(x->dtype);
    if (!err && x->numel) memcpy(o, x->data, (size_t)(x->numel * es));
    for (int64_t j = 0; !err && j < ix->numel; j++) scatter_one(o + offs[j] * es, (const char *)up->data + j * es, x->dtype, red);
    free(offs);
    return err;
}

/* GatherND / ScatterND: the last dim of indices (length q) addresses the leading q dims of data. */
static smelt_err *nd_offset(gx_call *c, const gx_tensor *x, const gx_tensor *ix, int64_t row, int64_t q, int bdims, int64_t batch, int64_t slice, int64_t *off)
{
    int64_t o = 0, mul = slice;
    for (int64_t k = q - 1; k >= 0; k--) {
        int64_t n = x->shape[bdims + k], i = gx_get_i(ix, row * q + k);
        if (i < 0) i += n;
        if (i < 0 || i >= n) return gx_fail(c, "index %lld out of range for dim %lld of size %lld", (long long)gx_get_i(ix, row * q + k), (long long)(bdims + k), (long long)n);
        o += i * mul;
        mul *= n;
    }
    *off = batch * mul + o;
    return NULL;
}

static smelt_err *k_gather_nd(gx_call *c)
{
    const gx_tensor *x = c->in[0], *ix = c->in[1];
    if (!is_index(ix) || ix->ndim < 1) return gx_fail(c, "indices must be int64 with at least 1 dim");
    int b = (int)gx_attr_i(c->node, "batch_dims", 0);
    int64_t q = ix->shape[ix->ndim - 1];
    if (b < 0 || b >= ix->ndim || q + b > x->ndim) return gx_fail(c, "indices' last dim %lld too large for data rank %d", (long long)q, x->ndim);
    int64_t shape[GX_MAXD], slice = 1, batch = 1;
    int nd = 0;
    for (int d = 0; d < ix->ndim - 1; d++) shape[nd++] = ix->shape[d];
    for (int d = b + (int)q; d < x->ndim; d++) {
        if (nd >= GX_MAXD) return gx_unsup(c, "too many output dims");
        shape[nd++] = x->shape[d];
        slice *= x->shape[d];
    }
    for (int d = 0; d < b; d++) batch *= ix->shape[d];
    int64_t rows = ix->numel / (q ? q : 1), per_batch = batch ? rows / batch : 0;
    if (q == 0) rows = smelt_shape_numel(ix->ndim - 1, ix->shape), per_batch = batch ? rows / batch : 0;
    int es = gx_esize(x->dtype);
    char *o;
    SMELT_TRY(gx_out(c, 0, x->dtype, nd, shape, (void **)&o));
    for (int64_t r = 0; r < rows; r++) {
        int64_t off;
        SMELT_TRY(nd_offset(c, x, ix, r, q, b, per_batch ? r / per_batch : 0, slice, &off));
        memcpy(o + r * slice * es, (const char *)x->data + off * es, (size_t)(slice * es));
    }
    return NULL;
}

static smelt_err *k_scatter_nd(gx_call *c)
{
    const gx_tensor *x = c->in[0], *ix = c->in[1], *up = c->in[2];
    if (!is_index(ix) || ix->ndim < 1 || !up || up->dtype != x->dtype) return gx_fail(c, "bad indices or updates");
    int red = reduction_of(c->node);
    if (red != RED_NONE && x->dtype != SMELT_DT_F32 && x->dtype != SMELT_DT_F64 && x->dtype != SMELT_DT_I64 && x->dtype != SMELT_DT_I32)
        return gx_dtype_unsup(c, x->dtype);
    int64_t q = ix->shape[ix->ndim - 1];
    if (q > x->ndim) return gx_fail(c, "indices' last dim %lld exceeds data rank %d", (long long)q, x->ndim);
    int64_t slice = 1, rows = smelt_shape_numel(ix->ndim - 1, ix->shape);
    for (int d = (int)q; d < x->ndim; d++) slice *= x->shape[d];
    if (up->numel != rows * slice) return gx_fail(c, "updates have %lld elements, expected %lld", (long long)up->numel, (long long)(rows * slice));
    int es = gx_esize(x->dtype);
    char *o;
    SMELT_TRY(gx_out(c, 0, x->dtype, x->ndim, x->shape, (void **)&o));
    if (x->numel) memcpy(o, x->data, (size_t)(x->numel * es));
    for (int64_t r = 0; r < rows; r++) {
        int64_t off;
        SMELT_TRY(nd_offset(c, x, ix, r, q, 0, 0, slice, &off));
        for (int64_t s = 0; s < slice; s++) scatter_one(o + (off + s) * es, (const char *)up->data + (r * slice + s) * es, x->dtype, red);
    }
    return NULL;
}

static smelt_err *k_onehot(gx_call *c)
{
    const gx_tensor *ix = c->in[0], *depth = c->in[1], *vals = c->in[2];
    if (!depth || !vals || depth->numel != 1 || vals->numel != 2) return gx_fail(c, "depth must be a scalar and values hold 2 elements");
    int64_t D = (int64_t)gx_get_f(depth, 0);
    if (D < 0) return gx_fail(c, "negative depth");
    int nd = ix->ndim + 1;
    if (nd > GX_MAXD) return gx_unsup(c, "too many dims");
    int ax;
    if (!gx_axis(gx_attr_i(c->node, "axis", -1), nd, &ax)) return gx_fail(c, "axis out of range");
    int64_t shape[GX_MAXD], outer = 1, inner = 1;
    for (int d = 0, k = 0; d < nd; d++) shape[d] = d == ax ? D : ix->shape[k++];
    for (int d = 0; d < ax; d++) outer *= shape[d];
    for (int d = ax + 1; d < nd; d++) inner *= shape[d];
    int es = gx_esize(vals->dtype);
    char *o;
    SMELT_TRY(gx_out(c, 0, vals->dtype, nd, shape, (void **)&o));
    const char *off = vals->data, *on = (const char *)vals->data + es;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t k = 0; k < D; k++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t v = (int64_t)gx_get_f(ix, a * inner + i);
                if (v < 0) v += D;
                memcpy(o + ((a * D + k) * inner + i) * es, v == k ? on : off, (size_t)es);
            }
    return NULL;
}

static smelt_err *k_nonzero(gx_call *c)
{
    const gx_tensor *x = c->in[0];
    int64_t cnt = 0;
    for (int64_t i = 0; i < x->numel; i++) cnt += gx_get_f(x, i) != 0;
    int64_t shape[2] = {x->ndim, cnt}, st[GX_MAXD];
    int64_t *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_I64, 2, shape, (void **)&o));
    gx_strides(x->ndim, x->shape, st);
    int64_t j = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        if (gx_get_f(x, i) == 0) continue;
        for (int d = 0; d < x->ndim; d++) o[d * cnt + j] = (i / st[d]) % x->shape[d];
        j++;
    }
    return NULL;
}

typedef struct {
    double v;
    int64_t i;
} topk_item;

static int by_largest(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int by_smallest(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static smelt_err *k_topk(gx_call *c)
{
    const gx_tensor *x = c->in[0], *kt = c->in[1];
    if (!kt || kt->numel != 1) return gx_fail(c, "K must be a 1-element tensor");
    if (x->dtype != SMELT_DT_F32 && x->dtype != SMELT_DT_F64 && x->dtype != SMELT_DT_I64 && x->dtype != SMELT_DT_I32) return gx_dtype_unsup(c, x->dtype);
    int ax;
    if (!gx_axis(gx_attr_i(c->node, "axis", -1), x->ndim, &ax)) return gx_fail(c, "axis out of range");
    int64_t K = gx_get_i(kt, 0), n = x->shape[ax], outer = 1, inner = 1;
    if (K < 0 || K > n) return gx_fail(c, "K=%lld out of range for axis of size %lld", (long long)K, (long long)n);
    bool largest = gx_attr_i(c->node, "largest", 1) != 0;
    int64_t shape[GX_MAXD];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = K;
    for (int d = 0; d < ax; d++) outer *= x->shape[d];
    for (int d = ax + 1; d < x->ndim; d++) inner *= x->shape[d];
    void *vo;
    int64_t *io;
    SMELT_TRY(gx_out(c, 0, x->dtype, x->ndim, shape, &vo));
    SMELT_TRY(gx_out(c, 1, SMELT_DT_I64, x->ndim, shape, (void **)&io));
    topk_item *items = malloc((size_t)(n ? n : 1) * sizeof *items);
    if (!items) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    int es = gx_esize(x->dtype);
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < inner; i++) {
            for (int64_t k = 0; k < n; k++) items[k] = (topk_item){gx_get_f(x, (a * n + k) * inner + i), k};
            qsort(items, (size_t)n, sizeof *items, largest ? by_largest : by_smallest);
            for (int64_t k = 0; k < K; k++) {
                int64_t at = (a * K + k) * inner + i;
                memcpy((char *)vo + at * es, (const char *)x->data + ((a * n + items[k].i) * inner + i) * es, (size_t)es);
                io[at] = items[k].i;
            }
        }
    free(items);
    return NULL;
}

const gx_op gx_ops_gather[] = {
    {"Gather", k_gather, NULL},
    {"GatherElements", k_gather_elements, NULL},
    {"GatherND", k_gather_nd, NULL},
    {"ScatterElements", k_scatter_elements, check_reduction},
    {"Scatter", k_scatter_elements, check_reduction},
    {"ScatterND", k_scatter_nd, check_reduction},
    {"OneHot", k_onehot, NULL},
    {"NonZero", k_nonzero, NULL},
    {"TopK", k_topk, NULL},
    {NULL, NULL, NULL},
};
