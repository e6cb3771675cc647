/* Helpers every op family uses: the op table lookup, node-naming errors, attribute getters,
 * integer inputs, and numpy broadcasting (shape rule plus a row-by-row walk with coalesced dims). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/graph/graph_exec.h"
#include "runtime/graph/gx.h"

static const gx_op *const families[] = {gx_ops_elementwise, gx_ops_logic, gx_ops_reduce, gx_ops_shape,
                                        gx_ops_matmul,      gx_ops_conv,  gx_ops_norm,   gx_ops_gather, gx_ops_misc};

const gx_op *gx_find_op(const char *op)
{
    for (size_t f = 0; f < sizeof families / sizeof *families; f++)
        for (const gx_op *o = families[f]; o->op; o++)
            if (strcmp(o->op, op) == 0) return o;
    return NULL;
}

bool smelt_graph_op_supported(const char *op) { return gx_find_op(op) != NULL; }

const char *gx_node_name(const smelt_node *n)
{
    if (n->name && *n->name) return n->name;
    return n->n_outputs > 0 ? n->outputs[0] : "";
}

static smelt_err *vfail(smelt_err_kind kind, const smelt_node *n, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return SMELT_ERR(kind, "node '%s' (%s): %s", gx_node_name(n), n->op, msg);
}

smelt_err *gx_fail(const gx_call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    smelt_err *e = vfail(SMELT_E_INVALID, c->node, fmt, ap);
    va_end(ap);
    return e;
}

smelt_err *gx_unsup(const gx_call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    smelt_err *e = vfail(SMELT_E_UNSUPPORTED, c->node, fmt, ap);
    va_end(ap);
    return e;
}

smelt_err *gx_node_unsup(const smelt_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    smelt_err *e = vfail(SMELT_E_UNSUPPORTED, n, fmt, ap);
    va_end(ap);
    return e;
}

smelt_err *gx_dtype_unsup(const gx_call *c, smelt_dtype dt)
{
    return gx_unsup(c, "dtype '%s' not supported", smelt_dtype_name(dt));
}

int64_t gx_attr_i(const smelt_node *n, const char *name, int64_t dflt)
{
    const smelt_attr *a = smelt_node_attr(n, name);
    if (!a) return dflt;
    if (a->type == SMELT_ATTR_INT) return a->i;
    if (a->type == SMELT_ATTR_FLOAT) return (int64_t)a->f;
    return dflt;
}

double gx_attr_f(const smelt_node *n, const char *name, double dflt)
{
    const smelt_attr *a = smelt_node_attr(n, name);
    if (!a) return dflt;
    if (a->type == SMELT_ATTR_FLOAT) return a->f;
    if (a->type == SMELT_ATTR_INT) return (double)a->i;
    return dflt;
}

const char *gx_attr_s(const smelt_node *n, const char *name, const char *dflt)
{
    const smelt_attr *a = smelt_node_attr(n, name);
    return a && a->type == SMELT_ATTR_STRING && a->s ? a->s : dflt;
}

int gx_attr_ints(const smelt_node *n, const char *name, const int64_t **v)
{
    const smelt_attr *a = smelt_node_attr(n, name);
    if (!a || a->type != SMELT_ATTR_INTS) return -1;
    *v = a->ints;
    return (int)a->n;
}

int gx_esize(smelt_dtype dt) { return smelt_dtype_traits(dt)->bits / 8; }

const char *gx_shape_str(const gx_tensor *t, char *buf, size_t cap) { return smelt_shape_str(t->ndim, t->shape, buf, cap); }

bool gx_axis(int64_t axis, int rank, int *out)
{
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return false;
    *out = (int)axis;
    return true;
}

int64_t gx_get_i(const gx_tensor *t, int64_t k)
{
    const void *p = t->data;
    switch (t->dtype) {
    case SMELT_DT_I64: return ((const int64_t *)p)[k];
    case SMELT_DT_I32: return ((const int32_t *)p)[k];
    case SMELT_DT_I16: return ((const int16_t *)p)[k];
    case SMELT_DT_I8: return ((const int8_t *)p)[k];
    case SMELT_DT_U8: return ((const uint8_t *)p)[k];
    case SMELT_DT_U16: return ((const uint16_t *)p)[k];
    case SMELT_DT_U32: return ((const uint32_t *)p)[k];
    case SMELT_DT_U64: return (int64_t)((const uint64_t *)p)[k];
    case SMELT_DT_BOOL: return ((const uint8_t *)p)[k] != 0;
    default: {
        double d = gx_get_f(t, k);
        return isfinite(d) && fabs(d) < 9.2e18 ? (int64_t)d : 0;
    }
    }
}

double gx_get_f(const gx_tensor *t, int64_t k)
{
    const void *p = t->data;
    switch (t->dtype) {
    case SMELT_DT_F32: return ((const float *)p)[k];
    case SMELT_DT_F64: return ((const double *)p)[k];
    case SMELT_DT_F16: return smelt_f16_to_f32(((const uint16_t *)p)[k]);
    case SMELT_DT_BF16: return smelt_bf16_to_f32(((const uint16_t *)p)[k]);
    case SMELT_DT_U64: return (double)((const uint64_t *)p)[k];
    default: return (double)gx_get_i(t, k);
    }
}

int64_t gx_read_ints(const gx_tensor *t, int64_t *v, int64_t cap)
{
    if (t->dtype != SMELT_DT_I64 && t->dtype != SMELT_DT_I32) return -1;
    if (t->numel > cap) return -1;
    for (int64_t i = 0; i < t->numel; i++) v[i] = gx_get_i(t, i);
    return t->numel;
}

void gx_strides(int ndim, const int64_t *shape, int64_t *strides)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= shape[d];
    }
}

smelt_err *gx_bcast_shape(gx_call *c, int nin, const gx_tensor *const *ins, int *ndim, int64_t *shape)
{
    int nd = 0;
    for (int k = 0; k < nin; k++)
        if (ins[k]->ndim > nd) nd = ins[k]->ndim;
    for (int d = 0; d < nd; d++) {
        int64_t v = 1;
        for (int k = 0; k < nin; k++) {
            int kd = d - (nd - ins[k]->ndim);
            if (kd < 0) continue;
            int64_t s = ins[k]->shape[kd];
            if (s == v || s == 1) continue;
            if (v == 1) {
                v = s;
                continue;
            }
            char a[160], b[160];
            return gx_fail(c, "shapes %s and %s cannot be broadcast together", gx_shape_str(ins[0], a, sizeof a),
                           gx_shape_str(ins[k == 0 ? 1 : k], b, sizeof b));
        }
        shape[d] = v;
    }
    *ndim = nd;
    return NULL;
}

void gx_bcast_init(gx_bcast *b, int nin, const gx_tensor *const *ins, int ndim, const int64_t *shape)
{
    /* Per input, whether each output dim is broadcast (stride 0) or walked; dims of size 1 drop
     * out, and neighbours with the same pattern for every input merge into one. */
    b->nin = nin;
    int nd = 0;
    int64_t sh[GX_MAXD];
    bool full[3][GX_MAXD];
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        bool f[3];
        for (int k = 0; k < nin; k++) {
            int kd = d - (ndim - ins[k]->ndim);
            f[k] = kd >= 0 && ins[k]->shape[kd] != 1;
        }
        bool merge = nd > 0;
        for (int k = 0; k < nin && merge; k++) merge = full[k][nd - 1] == f[k];
        if (merge) {
            sh[nd - 1] *= shape[d];
        } else {
            sh[nd] = shape[d];
            for (int k = 0; k < nin; k++) full[k][nd] = f[k];
            nd++;
        }
    }
    if (nd == 0) {
        sh[0] = 1;
        for (int k = 0; k < nin; k++) full[k][0] = true;
        nd = 1;
    }
    b->ndim = nd;
    memcpy(b->shape, sh, (size_t)nd * sizeof *sh);
    for (int k = 0; k < nin; k++) {
        int64_t s = 1;
        for (int d = nd - 1; d >= 0; d--) {
            b->strides[k][d] = full[k][d] ? s : 0;
            if (full[k][d]) s *= sh[d];
        }
        b->off[k] = 0;
    }
    memset(b->idx, 0, sizeof b->idx);
    b->inner = sh[nd - 1];
    int64_t numel = smelt_shape_numel(ndim, shape);
    b->rows = b->inner ? numel / b->inner : 0;
}

void gx_bcast_seek(gx_bcast *b, int64_t row)
{
    for (int k = 0; k < b->nin; k++) b->off[k] = 0;
    for (int d = b->ndim - 2; d >= 0; d--) {
        b->idx[d] = row % b->shape[d];
        row /= b->shape[d];
        for (int k = 0; k < b->nin; k++) b->off[k] += b->idx[d] * b->strides[k][d];
    }
}

void gx_bcast_next(gx_bcast *b)
{
    for (int d = b->ndim - 2; d >= 0; d--) {
        b->idx[d]++;
        for (int k = 0; k < b->nin; k++) b->off[k] += b->strides[k][d];
        if (b->idx[d] < b->shape[d]) return;
        for (int k = 0; k < b->nin; k++) b->off[k] -= b->strides[k][d] * b->shape[d];
        b->idx[d] = 0;
    }
}
