/* Shape and layout ops: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout
 * (inference), Transpose, Concat, Split, Slice, Expand, Tile, Pad, Constant, ConstantOfShape, Range,
 * EyeLike, Trilu, DepthToSpace, SpaceToDepth. Views (Reshape & co) share the input's buffer; the
 * others move bytes through one strided-copy loop specialised by element size. */
#include <math.h>
#include <string.h>

#include "runtime/graph/gx.h"

/* dst (contiguous, shape) <- src walked with element strides sstr (0 = broadcast). */
#define STRIDED(T)                                                                          \
    do {                                                                                    \
        T *d = dst;                                                                         \
        const T *s = src;                                                                   \
        for (int64_t r = 0; r < rows; r++) {                                                \
            const T *sr = s + off;                                                          \
            if (sl == 1) memcpy(d, sr, (size_t)inner * sizeof(T));                          \
            else                                                                            \
                for (int64_t i = 0; i < inner; i++) d[i] = sr[i * sl];                      \
            d += inner;                                                                     \
            for (int k = ndim - 2; k >= 0; k--) {                                           \
                idx[k]++;                                                                   \
                off += sstr[k];                                                             \
                if (idx[k] < shape[k]) break;                                               \
                off -= sstr[k] * shape[k];                                                  \
                idx[k] = 0;                                                                 \
            }                                                                               \
        }                                                                                   \
    } while (0)

static void copy_strided(void *dst, const void *src, int es, int ndim, const int64_t *shape, const int64_t *sstr, int64_t base)
{
    if (ndim == 0) {
        memcpy(dst, (const char *)src + base * es, (size_t)es);
        return;
    }
    int64_t numel = smelt_shape_numel(ndim, shape);
    if (numel <= 0) return;
    int64_t inner = shape[ndim - 1], rows = numel / inner, sl = sstr[ndim - 1], off = base;
    int64_t idx[GX_MAXD] = {0};
    switch (es) {
    case 1: STRIDED(uint8_t); break;
    case 2: STRIDED(uint16_t); break;
    case 4: STRIDED(uint32_t); break;
    default: STRIDED(uint64_t); break;
    }
}

static smelt_err *need_ints(gx_call *c, int i, const char *what)
{
    if (c->n_in <= i || !c->in[i]) return gx_fail(c, "input '%s' is missing", what);
    if (c->in[i]->dtype != SMELT_DT_I64 && c->in[i]->dtype != SMELT_DT_I32)
        return gx_fail(c, "input '%s' is %s, expected int64", what, smelt_dtype_name(c->in[i]->dtype));
    if (c->in[i]->numel > 64) return gx_fail(c, "input '%s' has %lld values", what, (long long)c->in[i]->numel);
    return NULL;
}

static smelt_err *k_shape(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    int64_t r = a->ndim, s = gx_attr_i(c->node, "start", 0), e = gx_attr_i(c->node, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t n = e > s ? e - s : 0;
    int64_t *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_I64, 1, &n, (void **)&o));
    for (int64_t i = 0; i < n; i++) o[i] = a->shape[s + i];
    return NULL;
}

static smelt_err *k_size(gx_call *c)
{
    int64_t *o;
    SMELT_TRY(gx_out(c, 0, SMELT_DT_I64, 0, NULL, (void **)&o));
    *o = c->in[0]->numel;
    return NULL;
}

static smelt_err *k_identity(gx_call *c) { return gx_alias(c, 0, 0, c->in[0]->ndim, c->in[0]->shape); }

static smelt_err *k_dropout(gx_call *c)
{
    bool training = c->n_in > 2 && c->in[2] && gx_get_i(c->in[2], 0);
    double ratio = c->n_in > 1 && c->in[1] ? gx_get_f(c->in[1], 0) : gx_attr_f(c->node, "ratio", 0.5);
    if (training && ratio != 0) return gx_unsup(c, "training mode (random masks) not supported");
    SMELT_TRY(gx_alias(c, 0, 0, c->in[0]->ndim, c->in[0]->shape));
    if (c->n_out > 1) {
        uint8_t *m;
        SMELT_TRY(gx_out(c, 1, SMELT_DT_BOOL, c->in[0]->ndim, c->in[0]->shape, (void **)&m));
        memset(m, 1, (size_t)c->in[0]->numel);
    }
    return NULL;
}

static smelt_err *k_reshape(gx_call *c)
{
    SMELT_TRY(need_ints(c, 1, "shape"));
    const gx_tensor *a = c->in[0];
    int64_t want[64], shape[GX_MAXD];
    int64_t n = gx_read_ints(c->in[1], want, 64);
    if (n > GX_MAXD) return gx_unsup(c, "%lld dimensions", (long long)n);
    bool allowzero = gx_attr_i(c->node, "allowzero", 0);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        shape[i] = want[i];
        if (want[i] == 0 && !allowzero) {
            if (i >= a->ndim) return gx_fail(c, "shape[%d] is 0 but the input has %d dims", i, a->ndim);
            shape[i] = a->shape[i];
        }
        if (shape[i] == -1) {
            if (infer >= 0) return gx_fail(c, "more than one -1 in the target shape");
            infer = i;
            continue;
        }
        if (shape[i] < 0) return gx_fail(c, "invalid target dim %lld", (long long)shape[i]);
        known *= shape[i];
    }
    if (infer >= 0) {
        if (known == 0 || a->numel % known) {
            char s1[160];
            return gx_fail(c, "cannot reshape %s to the requested shape", gx_shape_str(a, s1, sizeof s1));
        }
        shape[infer] = a->numel / known;
    }
    if (smelt_shape_numel((int)n, shape) != a->numel) {
        char s1[160], s2[160];
        return gx_fail(c, "cannot reshape %s (%lld elements) to %s", gx_shape_str(a, s1, sizeof s1), (long long)a->numel,
                       smelt_shape_str((int)n, shape, s2, sizeof s2));
    }
    return gx_alias(c, 0, 0, (int)n, shape);
}

static smelt_err *k_flatten(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    int64_t axis = gx_attr_i(c->node, "axis", 1);
    if (axis < 0) axis += a->ndim;
    if (axis < 0 || axis > a->ndim) return gx_fail(c, "axis %lld out of range for rank %d", (long long)gx_attr_i(c->node, "axis", 1), a->ndim);
    int64_t shape[2] = {1, 1};
    for (int d = 0; d < a->ndim; d++) shape[d >= axis] *= a->shape[d];
    return gx_alias(c, 0, 0, 2, shape);
}

/* Axes from the 'axes' attribute (older opsets) or input 1; returns the count, -1 when absent. */
static int axes_of(gx_call *c, int64_t *axes, smelt_err **err)
{
    const int64_t *v;
    int n = gx_attr_ints(c->node, "axes", &v);
    *err = NULL;
    if (n >= 0) {
        if (n > 64) n = 64;
        memcpy(axes, v, (size_t)n * sizeof *v);
        return n;
    }
    if (c->n_in > 1 && c->in[1]) {
        if ((*err = need_ints(c, 1, "axes"))) return -1;
        return (int)gx_read_ints(c->in[1], axes, 64);
    }
    return -1;
}

static smelt_err *k_squeeze(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    int64_t axes[64], shape[GX_MAXD];
    smelt_err *err;
    int n = axes_of(c, axes, &err);
    if (err) return err;
    bool drop[GX_MAXD] = {false};
    for (int i = 0; i < n; i++) {
        int ax;
        if (!gx_axis(axes[i], a->ndim, &ax)) return gx_fail(c, "axis %lld out of range for rank %d", (long long)axes[i], a->ndim);
        if (a->shape[ax] != 1) return gx_fail(c, "cannot squeeze axis %d of size %lld", ax, (long long)a->shape[ax]);
        drop[ax] = true;
    }
    int nd = 0;
    for (int d = 0; d < a->ndim; d++)
        if (!(n >= 0 ? drop[d] : a->shape[d] == 1)) shape[nd++] = a->shape[d];
    return gx_alias(c, 0, 0, nd, shape);
}

static smelt_err *k_unsqueeze(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    int64_t axes[64], shape[GX_MAXD];
    smelt_err *err;
    int n = axes_of(c, axes, &err);
    if (err) return err;
    if (n < 0) return gx_fail(c, "'axes' is missing");
    int nd = a->ndim + n;
    if (nd > GX_MAXD) return gx_unsup(c, "%d dimensions", nd);
    bool ins[GX_MAXD] = {false};
    for (int i = 0; i < n; i++) {
        int ax;
        if (!gx_axis(axes[i], nd, &ax) || ins[ax]) return gx_fail(c, "axis %lld out of range or repeated", (long long)axes[i]);
        ins[ax] = true;
    }
    for (int d = 0, k = 0; d < nd; d++) shape[d] = ins[d] ? 1 : a->shape[k++];
    return gx_alias(c, 0, 0, nd, shape);
}

static smelt_err *k_transpose(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    int64_t perm[GX_MAXD], shape[GX_MAXD], st[GX_MAXD], sstr[GX_MAXD];
    const int64_t *p;
    int n = gx_attr_ints(c->node, "perm", &p);
    if (n >= 0 && n != a->ndim) return gx_fail(c, "perm has %d entries for rank %d", n, a->ndim);
    bool seen[GX_MAXD] = {false};
    for (int d = 0; d < a->ndim; d++) {
        perm[d] = n >= 0 ? p[d] : a->ndim - 1 - d;
        if (perm[d] < 0) perm[d] += a->ndim;
        if (perm[d] < 0 || perm[d] >= a->ndim || seen[perm[d]]) return gx_fail(c, "perm is not a permutation");
        seen[perm[d]] = true;
    }
    gx_strides(a->ndim, a->shape, st);
    for (int d = 0; d < a->ndim; d++) {
        shape[d] = a->shape[perm[d]];
        sstr[d] = st[perm[d]];
    }
    void *o;
    SMELT_TRY(gx_out(c, 0, a->dtype, a->ndim, shape, &o));
    copy_strided(o, a->data, gx_esize(a->dtype), a->ndim, shape, sstr, 0);
    return NULL;
}

static smelt_err *k_concat(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    int ax;
    if (!gx_axis(gx_attr_i(c->node, "axis", 0), a->ndim, &ax)) return gx_fail(c, "axis out of range for rank %d", a->ndim);
    int64_t shape[GX_MAXD];
    memcpy(shape, a->shape, sizeof shape);
    shape[ax] = 0;
    for (int k = 0; k < c->n_in; k++) {
        const gx_tensor *t = c->in[k];
        if (!t) continue;
        bool ok = t->dtype == a->dtype && t->ndim == a->ndim;
        for (int d = 0; ok && d < a->ndim; d++) ok = d == ax || t->shape[d] == a->shape[d];
        if (!ok) {
            char s1[160], s2[160];
            return gx_fail(c, "input %d (%s %s) does not match input 0 (%s %s) outside axis %d", k, smelt_dtype_name(t->dtype),
                           gx_shape_str(t, s1, sizeof s1), smelt_dtype_name(a->dtype), gx_shape_str(a, s2, sizeof s2), ax);
        }
        shape[ax] += t->shape[ax];
    }
    char *o;
    SMELT_TRY(gx_out(c, 0, a->dtype, a->ndim, shape, (void **)&o));
    int64_t outer = 1, inner = gx_esize(a->dtype);
    for (int d = 0; d < ax; d++) outer *= shape[d];
    for (int d = ax + 1; d < a->ndim; d++) inner *= shape[d];
    int64_t row = shape[ax] * inner, pos = 0;
    for (int k = 0; k < c->n_in; k++) {
        const gx_tensor *t = c->in[k];
        if (!t) continue;
        int64_t chunk = t->shape[ax] * inner;
        for (int64_t r = 0; r < outer && chunk; r++) memcpy(o + r * row + pos, (const char *)t->data + r * chunk, (size_t)chunk);
        pos += chunk;
    }
    return NULL;
}

static smelt_err *k_split(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    int ax;
    if (!gx_axis(gx_attr_i(c->node, "axis", 0), a->ndim, &ax)) return gx_fail(c, "axis out of range for rank %d", a->ndim);
    int64_t sizes[64];
    int n = c->n_out;
    if (n > 64) return gx_unsup(c, "%d outputs", n);
    const int64_t *v;
    int ns = gx_attr_ints(c->node, "split", &v);
    if (ns >= 0) {
        if (ns != n) return gx_fail(c, "'split' has %d entries for %d outputs", ns, n);
        memcpy(sizes, v, (size_t)n * sizeof *v);
    } else if (c->n_in > 1 && c->in[1]) {
        SMELT_TRY(need_ints(c, 1, "split"));
        if (c->in[1]->numel != n) return gx_fail(c, "'split' has %lld entries for %d outputs", (long long)c->in[1]->numel, n);
        gx_read_ints(c->in[1], sizes, 64);
    } else {
        int64_t per = (a->shape[ax] + n - 1) / n;
        for (int i = 0; i < n; i++) {
            int64_t left = a->shape[ax] - per * i;
            sizes[i] = left < 0 ? 0 : left < per ? left : per;
        }
    }
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 0) return gx_fail(c, "negative split size");
        total += sizes[i];
    }
    if (total != a->shape[ax]) return gx_fail(c, "split sizes sum to %lld, axis %d has %lld", (long long)total, ax, (long long)a->shape[ax]);
    int64_t outer = 1, inner = gx_esize(a->dtype);
    for (int d = 0; d < ax; d++) outer *= a->shape[d];
    for (int d = ax + 1; d < a->ndim; d++) inner *= a->shape[d];
    int64_t row = a->shape[ax] * inner, pos = 0;
    for (int i = 0; i < n; i++) {
        int64_t shape[GX_MAXD];
        memcpy(shape, a->shape, sizeof shape);
        shape[ax] = sizes[i];
        char *o;
        SMELT_TRY(gx_out(c, i, a->dtype, a->ndim, shape, (void **)&o));
        int64_t chunk = sizes[i] * inner;
        for (int64_t r = 0; r < outer && chunk; r++) memcpy(o + r * chunk, (const char *)a->data + r * row + pos, (size_t)chunk);
        pos += chunk;
    }
    return NULL;
}

static smelt_err *k_slice(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    int64_t starts[64], ends[64], axes[64], steps[64];
    int n;
    if (c->opset < 10) {
        const int64_t *s, *e, *x;
        n = gx_attr_ints(c->node, "starts", &s);
        if (n < 0 || n > 64 || gx_attr_ints(c->node, "ends", &e) != n) return gx_fail(c, "'starts' and 'ends' must have the same length");
        memcpy(starts, s, (size_t)n * sizeof *s);
        memcpy(ends, e, (size_t)n * sizeof *e);
        int na = gx_attr_ints(c->node, "axes", &x);
        for (int i = 0; i < n; i++) {
            axes[i] = na >= 0 && i < na ? x[i] : i;
            steps[i] = 1;
        }
    } else {
        SMELT_TRY(need_ints(c, 1, "starts"));
        SMELT_TRY(need_ints(c, 2, "ends"));
        n = (int)gx_read_ints(c->in[1], starts, 64);
        if (gx_read_ints(c->in[2], ends, 64) != n) return gx_fail(c, "'starts' and 'ends' must have the same length");
        for (int i = 0; i < n; i++) axes[i] = i, steps[i] = 1;
        if (c->n_in > 3 && c->in[3]) {
            SMELT_TRY(need_ints(c, 3, "axes"));
            if (gx_read_ints(c->in[3], axes, 64) != n) return gx_fail(c, "'axes' must have as many entries as 'starts'");
        }
        if (c->n_in > 4 && c->in[4]) {
            SMELT_TRY(need_ints(c, 4, "steps"));
            if (gx_read_ints(c->in[4], steps, 64) != n) return gx_fail(c, "'steps' must have as many entries as 'starts'");
        }
    }
    int64_t st[GX_MAXD], shape[GX_MAXD], sstr[GX_MAXD], base = 0;
    int64_t beg[GX_MAXD], stp[GX_MAXD];
    gx_strides(a->ndim, a->shape, st);
    for (int d = 0; d < a->ndim; d++) beg[d] = 0, stp[d] = 1, shape[d] = a->shape[d];
    bool seen[GX_MAXD] = {false};
    for (int i = 0; i < n; i++) {
        int ax;
        if (!gx_axis(axes[i], a->ndim, &ax) || seen[ax]) return gx_fail(c, "axis %lld out of range or repeated", (long long)axes[i]);
        seen[ax] = true;
        int64_t dim = a->shape[ax], s = starts[i], e = ends[i], k = steps[i];
        if (k == 0) return gx_fail(c, "step is 0");
        if (s < 0) s += dim;
        if (e < 0 && e > INT64_MIN / 2) e += dim;
        if (k > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            shape[ax] = e > s ? (e - s + k - 1) / k : 0;
        } else {
            s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            shape[ax] = s > e ? (s - e + (-k) - 1) / (-k) : 0;
        }
        beg[ax] = s;
        stp[ax] = k;
    }
    for (int d = 0; d < a->ndim; d++) {
        sstr[d] = st[d] * stp[d];
        if (shape[d] > 0) base += beg[d] * st[d];
    }
    void *o;
    SMELT_TRY(gx_out(c, 0, a->dtype, a->ndim, shape, &o));
    copy_strided(o, a->data, gx_esize(a->dtype), a->ndim, shape, sstr, base);
    return NULL;
}

/* dst (contiguous, out shape) <- a broadcast to it. */
static void broadcast_copy(void *dst, const gx_tensor *a, int nd, const int64_t *shape)
{
    int64_t st[GX_MAXD], sstr[GX_MAXD];
    gx_strides(a->ndim, a->shape, st);
    for (int d = 0; d < nd; d++) {
        int ad = d - (nd - a->ndim);
        sstr[d] = ad < 0 || a->shape[ad] == 1 ? 0 : st[ad];
    }
    copy_strided(dst, a->data, gx_esize(a->dtype), nd, shape, sstr, 0);
}

static smelt_err *k_expand(gx_call *c)
{
    SMELT_TRY(need_ints(c, 1, "shape"));
    const gx_tensor *a = c->in[0];
    gx_tensor want = {.dtype = a->dtype};
    int64_t v[64];
    int64_t n = gx_read_ints(c->in[1], v, 64);
    if (n > GX_MAXD) return gx_unsup(c, "%lld dimensions", (long long)n);
    want.ndim = (int)n;
    memcpy(want.shape, v, (size_t)n * sizeof *v);
    const gx_tensor *ins[2] = {a, &want};
    int nd;
    int64_t shape[GX_MAXD];
    SMELT_TRY(gx_bcast_shape(c, 2, ins, &nd, shape));
    void *o;
    SMELT_TRY(gx_out(c, 0, a->dtype, nd, shape, &o));
    broadcast_copy(o, a, nd, shape);
    return NULL;
}

static smelt_err *k_tile(gx_call *c)
{
    SMELT_TRY(need_ints(c, 1, "repeats"));
    const gx_tensor *a = c->in[0];
    int64_t rep[64], shape[GX_MAXD];
    if (gx_read_ints(c->in[1], rep, 64) != a->ndim) return gx_fail(c, "'repeats' must have one entry per input dim");
    for (int d = 0; d < a->ndim; d++) {
        if (rep[d] < 0) return gx_fail(c, "negative repeat");
        shape[d] = a->shape[d] * rep[d];
    }
    char *o;
    SMELT_TRY(gx_out(c, 0, a->dtype, a->ndim, shape, (void **)&o));
    int es = gx_esize(a->dtype);
    int64_t st[GX_MAXD], idx[GX_MAXD] = {0}, n = smelt_shape_numel(a->ndim, shape);
    gx_strides(a->ndim, a->shape, st);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < a->ndim; d++) off += (idx[d] % a->shape[d]) * st[d];
        memcpy(o + i * es, (const char *)a->data + off * es, (size_t)es);
        for (int d = a->ndim - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
    return NULL;
}

static smelt_err *k_pad(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    const char *mode = gx_attr_s(c->node, "mode", "constant");
    int m = strcmp(mode, "constant") == 0 ? 0 : strcmp(mode, "reflect") == 0 ? 1 : strcmp(mode, "edge") == 0 ? 2 : strcmp(mode, "wrap") == 0 ? 3 : -1;
    if (m < 0) return gx_unsup(c, "attribute 'mode'='%s' not supported", mode);
    int64_t pads[2 * GX_MAXD] = {0}, p[64], axes[GX_MAXD];
    int np, nax = a->ndim;
    double cval = 0;
    if (c->opset < 11) {
        const int64_t *v;
        np = gx_attr_ints(c->node, "pads", &v);
        if (np != 2 * a->ndim) return gx_fail(c, "'pads' has %d entries for rank %d", np, a->ndim);
        memcpy(p, v, (size_t)np * sizeof *v);
        cval = gx_attr_f(c->node, "value", 0);
    } else {
        SMELT_TRY(need_ints(c, 1, "pads"));
        np = (int)gx_read_ints(c->in[1], p, 64);
        if (c->n_in > 2 && c->in[2] && c->in[2]->numel > 0) cval = gx_get_f(c->in[2], 0);
    }
    for (int d = 0; d < a->ndim; d++) axes[d] = d;
    if (c->n_in > 3 && c->in[3]) {
        int64_t ax[64];
        SMELT_TRY(need_ints(c, 3, "axes"));
        nax = (int)gx_read_ints(c->in[3], ax, 64);
        for (int i = 0; i < nax && i < GX_MAXD; i++) {
            int axn;
            if (!gx_axis(ax[i], a->ndim, &axn)) return gx_fail(c, "axis %lld out of range", (long long)ax[i]);
            axes[i] = axn;
        }
    }
    if (np != 2 * nax || nax > GX_MAXD) return gx_fail(c, "'pads' has %d entries for %d axes", np, nax);
    for (int i = 0; i < nax; i++) {
        pads[axes[i]] = p[i];
        pads[axes[i] + a->ndim] = p[i + nax];
    }
    int64_t shape[GX_MAXD];
    for (int d = 0; d < a->ndim; d++) {
        shape[d] = a->shape[d] + pads[d] + pads[d + a->ndim];
        if (shape[d] < 0) return gx_fail(c, "pads make dim %d negative", d);
        if (m != 0 && a->shape[d] == 0 && shape[d] > 0) return gx_fail(c, "cannot %s-pad an empty dim", mode);
    }
    if (a->dtype != SMELT_DT_F32 && a->dtype != SMELT_DT_F64 && a->dtype != SMELT_DT_I64 && a->dtype != SMELT_DT_I32 && a->dtype != SMELT_DT_U8 &&
        a->dtype != SMELT_DT_I8 && a->dtype != SMELT_DT_BOOL)
        return gx_dtype_unsup(c, a->dtype);
    char *o;
    SMELT_TRY(gx_out(c, 0, a->dtype, a->ndim, shape, (void **)&o));
    int es = gx_esize(a->dtype);
    int64_t st[GX_MAXD], idx[GX_MAXD] = {0}, n = smelt_shape_numel(a->ndim, shape);
    gx_strides(a->ndim, a->shape, st);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < a->ndim; d++) {
            int64_t j = idx[d] - pads[d], L = a->shape[d];
            if (j < 0 || j >= L) {
                if (m == 0) inside = false;
                else if (m == 1) {
                    if (L == 1) j = 0;
                    else {
                        int64_t per = 2 * (L - 1);
                        j = ((j % per) + per) % per;
                        if (j >= L) j = per - j;
                    }
                } else if (m == 2) j = j < 0 ? 0 : L - 1;
                else j = ((j % L) + L) % L;
            }
            off += j * st[d];
        }
        if (inside) memcpy(o + i * es, (const char *)a->data + off * es, (size_t)es);
        else {
            int64_t z = 0;
            switch (a->dtype) {
            case SMELT_DT_F32: ((float *)o)[i] = (float)cval; break;
            case SMELT_DT_F64: ((double *)o)[i] = cval; break;
            default: z = (int64_t)cval; memcpy(o + i * es, &z, (size_t)es); break; /* little-endian low bytes */
            }
        }
        for (int d = a->ndim - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
    return NULL;
}

static smelt_err *check_pad(const smelt_node *n, int opset)
{
    const char *mode = gx_attr_s(n, "mode", "constant");
    if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge") && strcmp(mode, "wrap"))
        return gx_node_unsup(n, "attribute 'mode'='%s' not supported", mode);
    return NULL;
}

/* Constant with value_float(s) / value_int(s); the 'value' tensor form is bound at load time. */
static smelt_err *k_constant(gx_call *c)
{
    const smelt_attr *a;
    if ((a = smelt_node_attr(c->node, "value_float"))) {
        float *o;
        SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, 0, NULL, (void **)&o));
        *o = (float)a->f;
    } else if ((a = smelt_node_attr(c->node, "value_int"))) {
        int64_t *o;
        SMELT_TRY(gx_out(c, 0, SMELT_DT_I64, 0, NULL, (void **)&o));
        *o = a->i;
    } else if ((a = smelt_node_attr(c->node, "value_floats")) && a->type == SMELT_ATTR_FLOATS) {
        float *o;
        int64_t n = (int64_t)a->n;
        SMELT_TRY(gx_out(c, 0, SMELT_DT_F32, 1, &n, (void **)&o));
        if (n) memcpy(o, a->floats, (size_t)n * sizeof *o);
    } else if ((a = smelt_node_attr(c->node, "value_ints")) && a->type == SMELT_ATTR_INTS) {
        int64_t *o, n = (int64_t)a->n;
        SMELT_TRY(gx_out(c, 0, SMELT_DT_I64, 1, &n, (void **)&o));
        if (n) memcpy(o, a->ints, (size_t)n * sizeof *o);
    } else {
        return gx_unsup(c, "only 'value', 'value_float(s)' and 'value_int(s)' constants are supported");
    }
    return NULL;
}

static smelt_err *check_constant(const smelt_node *n, int opset)
{
    static const char *const ok[] = {"value", "value_float", "value_floats", "value_int", "value_ints"};
    for (int i = 0; i < n->n_attrs; i++) {
        bool found = false;
        for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) found |= strcmp(n->attrs[i].name, ok[k]) == 0;
        if (!found) return gx_node_unsup(n, "attribute '%s' not supported", n->attrs[i].name);
    }
    return NULL;
}

static smelt_err *k_constant_of_shape(gx_call *c)
{
    SMELT_TRY(need_ints(c, 0, "input"));
    int64_t shape[64];
    int64_t n = gx_read_ints(c->in[0], shape, 64);
    if (n > GX_MAXD) return gx_unsup(c, "%lld dimensions", (long long)n);
    for (int i = 0; i < n; i++)
        if (shape[i] < 0) return gx_fail(c, "negative dim %lld", (long long)shape[i]);
    const smelt_attr *v = smelt_node_attr(c->node, "value");
    smelt_dtype dt = SMELT_DT_F32;
    const void *val = NULL;
    if (v && v->type == SMELT_ATTR_TENSOR && v->tensor) {
        if (smelt_shape_numel(v->tensor->ndim, v->tensor->shape) != 1) return gx_fail(c, "'value' must hold one element");
        dt = v->tensor->dtype;
        val = v->tensor->data;
    }
    if (gx_esize(dt) < 1) return gx_dtype_unsup(c, dt);
    char *o;
    SMELT_TRY(gx_out(c, 0, dt, (int)n, shape, (void **)&o));
    int es = gx_esize(dt);
    int64_t numel = c->out[0]->numel;
    if (!val) memset(o, 0, (size_t)(numel * es));
    else
        for (int64_t i = 0; i < numel; i++) memcpy(o + i * es, val, (size_t)es);
    return NULL;
}

static smelt_err *k_range(gx_call *c)
{
    for (int i = 0; i < 3; i++)
        if (!c->in[i] || c->in[i]->numel != 1) return gx_fail(c, "inputs must be scalars");
    smelt_dtype dt = c->in[0]->dtype;
    double s = gx_get_f(c->in[0], 0), l = gx_get_f(c->in[1], 0), d = gx_get_f(c->in[2], 0);
    if (d == 0) return gx_fail(c, "delta is 0");
    double cnt = ceil((l - s) / d);
    int64_t n = cnt > 0 ? (int64_t)cnt : 0;
    if (cnt > 1e9) return gx_fail(c, "range of %.0f elements", cnt);
    void *o;
    switch (dt) {
    case SMELT_DT_F32: case SMELT_DT_F64: case SMELT_DT_I64: case SMELT_DT_I32: case SMELT_DT_I16: break;
    default: return gx_dtype_unsup(c, dt);
    }
    SMELT_TRY(gx_out(c, 0, dt, 1, &n, &o));
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case SMELT_DT_F32: ((float *)o)[i] = (float)((float)s + (float)i * (float)d); break;
        case SMELT_DT_F64: ((double *)o)[i] = s + (double)i * d; break;
        case SMELT_DT_I64: ((int64_t *)o)[i] = gx_get_i(c->in[0], 0) + i * gx_get_i(c->in[2], 0); break;
        case SMELT_DT_I32: ((int32_t *)o)[i] = (int32_t)(gx_get_i(c->in[0], 0) + i * gx_get_i(c->in[2], 0)); break;
        default: ((int16_t *)o)[i] = (int16_t)(gx_get_i(c->in[0], 0) + i * gx_get_i(c->in[2], 0)); break;
        }
    }
    return NULL;
}

static smelt_err *k_eyelike(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    if (a->ndim != 2) return gx_fail(c, "input must be 2-D");
    smelt_dtype dt = a->dtype;
    if (smelt_node_attr(c->node, "dtype")) dt = smelt_dtype_from_onnx((int)gx_attr_i(c->node, "dtype", 1));
    if (dt == SMELT_DT_INVALID || gx_esize(dt) < 1) return gx_dtype_unsup(c, dt);
    int64_t k = gx_attr_i(c->node, "k", 0);
    char *o;
    SMELT_TRY(gx_out(c, 0, dt, 2, a->shape, (void **)&o));
    int es = gx_esize(dt);
    memset(o, 0, (size_t)(a->numel * es));
    for (int64_t i = 0; i < a->shape[0]; i++) {
        int64_t j = i + k;
        if (j < 0 || j >= a->shape[1]) continue;
        char *e = o + (i * a->shape[1] + j) * es;
        switch (dt) {
        case SMELT_DT_F32: *(float *)e = 1; break;
        case SMELT_DT_F64: *(double *)e = 1; break;
        case SMELT_DT_F16: *(uint16_t *)e = 0x3c00; break;
        default: *e = 1; break; /* integers and bool: little-endian 1 */
        }
    }
    return NULL;
}

static smelt_err *k_trilu(gx_call *c)
{
    const gx_tensor *a = c->in[0];
    if (a->ndim < 2) return gx_fail(c, "input must have at least 2 dims");
    int64_t k = c->n_in > 1 && c->in[1] ? gx_get_i(c->in[1], 0) : 0;
    bool upper = gx_attr_i(c->node, "upper", 1);
    char *o;
    SMELT_TRY(gx_out(c, 0, a->dtype, a->ndim, a->shape, (void **)&o));
    int es = gx_esize(a->dtype);
    int64_t R = a->shape[a->ndim - 2], C = a->shape[a->ndim - 1], mats = R > 0 && C > 0 ? a->numel / (R * C) : 0;
    if (a->numel) memcpy(o, a->data, (size_t)(a->numel * es));
    for (int64_t b = 0; b < mats; b++)
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) {
                bool keep = upper ? j - i >= k : j - i <= k;
                if (!keep) memset(o + ((b * R + i) * C + j) * es, 0, (size_t)es);
            }
    return NULL;
}

/* DepthToSpace / SpaceToDepth as a reshape to 6-D plus a transpose. */
static smelt_err *space_depth(gx_call *c, bool to_space)
{
    const gx_tensor *a = c->in[0];
    if (a->ndim != 4) return gx_fail(c, "input must be 4-D");
    int64_t b = gx_attr_i(c->node, "blocksize", 0);
    if (b <= 0) return gx_fail(c, "'blocksize' must be positive");
    int64_t N = a->shape[0], C = a->shape[1], H = a->shape[2], W = a->shape[3];
    int64_t shape6[6], perm[6], oshape[4];
    bool crd = strcmp(gx_attr_s(c->node, "mode", "DCR"), "CRD") == 0;
    if (to_space) {
        if (C % (b * b)) return gx_fail(c, "channels %lld not divisible by blocksize^2", (long long)C);
        int64_t c2 = C / (b * b);
        if (crd) {
            int64_t s[6] = {N, c2, b, b, H, W}, p[6] = {0, 1, 4, 2, 5, 3};
            memcpy(shape6, s, sizeof s), memcpy(perm, p, sizeof p);
        } else {
            int64_t s[6] = {N, b, b, c2, H, W}, p[6] = {0, 3, 4, 1, 5, 2};
            memcpy(shape6, s, sizeof s), memcpy(perm, p, sizeof p);
        }
        oshape[0] = N, oshape[1] = c2, oshape[2] = H * b, oshape[3] = W * b;
    } else {
        if (H % b || W % b) return gx_fail(c, "spatial dims not divisible by blocksize");
        int64_t s[6] = {N, C, H / b, b, W / b, b}, p[6] = {0, 3, 5, 1, 2, 4};
        memcpy(shape6, s, sizeof s), memcpy(perm, p, sizeof p);
        oshape[0] = N, oshape[1] = C * b * b, oshape[2] = H / b, oshape[3] = W / b;
    }
    int64_t st[6], tshape[6], sstr[6];
    gx_strides(6, shape6, st);
    for (int d = 0; d < 6; d++) tshape[d] = shape6[perm[d]], sstr[d] = st[perm[d]];
    void *o;
    SMELT_TRY(gx_out(c, 0, a->dtype, 4, oshape, &o));
    copy_strided(o, a->data, gx_esize(a->dtype), 6, tshape, sstr, 0);
    return NULL;
}

static smelt_err *k_depth_to_space(gx_call *c) { return space_depth(c, true); }
static smelt_err *k_space_to_depth(gx_call *c) { return space_depth(c, false); }

const gx_op gx_ops_shape[] = {
    {"Shape", k_shape, NULL},
    {"Size", k_size, NULL},
    {"Identity", k_identity, NULL},
    {"Dropout", k_dropout, NULL},
    {"Reshape", k_reshape, NULL},
    {"Flatten", k_flatten, NULL},
    {"Squeeze", k_squeeze, NULL},
    {"Unsqueeze", k_unsqueeze, NULL},
    {"Transpose", k_transpose, NULL},
    {"Concat", k_concat, NULL},
    {"Split", k_split, NULL},
    {"Slice", k_slice, NULL},
    {"Expand", k_expand, NULL},
    {"Tile", k_tile, NULL},
    {"Pad", k_pad, check_pad},
    {"Constant", k_constant, check_constant},
    {"ConstantOfShape", k_constant_of_shape, NULL},
    {"Range", k_range, NULL},
    {"EyeLike", k_eyelike, NULL},
    {"Trilu", k_trilu, NULL},
    {"DepthToSpace", k_depth_to_space, NULL},
    {"SpaceToDepth", k_space_to_depth, NULL},
    {NULL, NULL, NULL},
};
