/* The graph executor's planner and run loop.
 *
 * Load: every value name (initializer, Constant node, graph input, node output) becomes a slot;
 * nodes are ordered topologically and each gets its op table entry; the last step reading each
 * intermediate is recorded so its buffer returns to the pool right after. Run: inputs are bound to
 * their slots, steps run in order, outputs are handed to the caller (the pooled buffer itself when
 * nothing else shares it, a copy otherwise).
 */
#include "runtime/graph/graph_exec.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/graph/gemm_packed.h"
#include "runtime/graph/gx.h"

enum { SLOT_CONST, SLOT_INPUT, SLOT_VALUE };

typedef struct {
    const char *name;
    int kind;
    int producer; /* step producing it, -1 for constants and inputs */
    gx_tensor t;
} gx_slot;

typedef struct {
    const smelt_node *node;
    const gx_op *op;
    int *in, *out;   /* slot indices; in[i] == -1 for an omitted optional input */
    int *release;    /* slots whose last reader is this step */
    int n_release;
    int fuse;        /* GX_FUSE_*: an activation folded into this step's output */
} gx_step;

typedef struct {
    void *p;
    size_t cap;
    int refs;
} gx_buf;

struct gx_exec {
    gx_buf *bufs;
    int n_bufs, cap_bufs;
    int scratch[8]; /* pool buffers lent to the running kernel by gx_scratch */
    int n_scratch;
};

struct smelt_graph {
    const smelt_model *m;
    int opset;
    gx_slot *slots;
    int n_slots;
    smelt_strmap names;
    gx_step *steps;
    int n_steps;
    int *input_slot, *output_slot; /* per model input / output */
    gx_exec x;
    const gx_tensor **in_scratch;
    gx_tensor **out_scratch;
    int max_io;
    void **folded; /* buffers of values computed at load time (constant folding), owned */
    int n_folded;
    gx_qweight *qws; /* int8 weights, one per quantized tensor of the model (slots point here) */
    int n_qws;
};

/* ---- the buffer pool ---- */

static int pool_get(gx_exec *x, size_t size)
{
    size = (size + 63) & ~(size_t)63;
    if (size == 0) size = 64;
    int best = -1, largest = -1, empty = -1;
    for (int i = 0; i < x->n_bufs; i++) {
        gx_buf *b = &x->bufs[i];
        if (b->refs) continue;
        if (!b->p) {
            empty = i;
            continue;
        }
        if (b->cap >= size && (best < 0 || b->cap < x->bufs[best].cap)) best = i;
        if (largest < 0 || b->cap > x->bufs[largest].cap) largest = i;
    }
    if (best >= 0) {
        x->bufs[best].refs = 1;
        return best;
    }
    /* Nothing free fits: grow the largest free buffer rather than keep adding buffers. */
    int slot = largest >= 0 ? largest : empty;
    if (slot < 0) {
        if (x->n_bufs == x->cap_bufs) {
            int nc = x->cap_bufs ? 2 * x->cap_bufs : 32;
            gx_buf *nb = realloc(x->bufs, (size_t)nc * sizeof *nb);
            if (!nb) return -1;
            x->bufs = nb;
            x->cap_bufs = nc;
        }
        slot = x->n_bufs++;
        x->bufs[slot] = (gx_buf){0};
    }
    free(x->bufs[slot].p);
    x->bufs[slot].p = aligned_alloc(64, size);
    x->bufs[slot].cap = x->bufs[slot].p ? size : 0;
    if (!x->bufs[slot].p) return -1;
    x->bufs[slot].refs = 1;
    return slot;
}

static void pool_put(gx_exec *x, int buf)
{
    if (buf >= 0 && x->bufs[buf].refs > 0) x->bufs[buf].refs--;
}

static void slot_release(smelt_graph *g, gx_slot *s)
{
    if (s->kind != SLOT_VALUE) return;
    pool_put(&g->x, s->t.buf);
    s->t.buf = -1;
    s->t.data = NULL;
    s->t.ndim = -1;
}

smelt_err *gx_out(gx_call *c, int i, smelt_dtype dt, int ndim, const int64_t *shape, void **data)
{
    gx_tensor *t = c->out[i];
    int64_t n = smelt_shape_numel(ndim, shape);
    if (n < 0) return gx_fail(c, "output %d has an invalid shape", i);
    size_t nb = smelt_dtype_nbytes(dt, (uint64_t)n);
    if (nb == SIZE_MAX) return gx_fail(c, "output %d is too large", i);
    if (t->buf >= 0) pool_put(c->x, t->buf); /* a kernel re-shaping an output it already made */
    int b = pool_get(c->x, nb);
    if (b < 0) return SMELT_ERR(SMELT_E_NOMEM, "node '%s' (%s): out of memory for %zu bytes", gx_node_name(c->node), c->node->op, nb);
    t->dtype = dt;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = n;
    t->buf = b;
    t->qw = NULL;
    t->pk = NULL;
    t->data = c->x->bufs[b].p;
    if (data) *data = t->data;
    return NULL;
}

void *gx_scratch(gx_call *c, size_t bytes)
{
    gx_exec *x = c->x;
    if (x->n_scratch == (int)(sizeof x->scratch / sizeof x->scratch[0])) return NULL;
    int b = pool_get(x, bytes);
    if (b < 0) return NULL;
    x->scratch[x->n_scratch++] = b;
    return x->bufs[b].p;
}

static void scratch_release(gx_exec *x)
{
    for (int i = 0; i < x->n_scratch; i++) pool_put(x, x->scratch[i]);
    x->n_scratch = 0;
}

smelt_err *gx_alias(gx_call *c, int i, int j, int ndim, const int64_t *shape)
{
    const gx_tensor *src = c->in[j];
    gx_tensor *t = c->out[i];
    int64_t n = smelt_shape_numel(ndim, shape);
    if (n != src->numel) return gx_fail(c, "cannot view %lld elements as %lld", (long long)src->numel, (long long)n);
    if (t->buf >= 0) pool_put(c->x, t->buf);
    t->dtype = src->dtype;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = n;
    t->data = src->data;
    t->buf = src->buf;
    t->qw = NULL;
    t->pk = NULL;
    if (t->buf >= 0) c->x->bufs[t->buf].refs++;
    return NULL;
}

/* Runs one step: binds its slots, calls the kernel, checks every named output was produced. */
static smelt_err *run_step(smelt_graph *g, const gx_step *st)
{
    const smelt_node *nd = st->node;
    gx_call c = {.node = nd, .opset = g->opset, .n_in = nd->n_inputs, .n_out = nd->n_outputs, .in = g->in_scratch, .out = g->out_scratch, .x = &g->x,
                 .fuse = st->fuse};
    for (int k = 0; k < nd->n_inputs; k++) c.in[k] = st->in[k] >= 0 ? &g->slots[st->in[k]].t : NULL;
    for (int k = 0; k < nd->n_outputs; k++) {
        c.out[k] = &g->slots[st->out[k]].t;
        c.out[k]->ndim = -1;
        c.out[k]->buf = -1;
        c.out[k]->qw = NULL;
        c.out[k]->pk = NULL;
    }
    smelt_err *err = st->op->run(&c);
    scratch_release(&g->x);
    for (int k = 0; k < nd->n_outputs && !err; k++)
        if (c.out[k]->ndim < 0) err = gx_unsup(&c, "output %d ('%s') is not produced", k, nd->outputs[k]);
    return err;
}

/* ---- load ---- */

static int slot_add(smelt_graph *g, const char *name, int kind)
{
    int i = g->n_slots++;
    g->slots[i] = (gx_slot){.name = name, .kind = kind, .producer = -1};
    g->slots[i].t.buf = -1;
    g->slots[i].t.ndim = -1;
    if (*name && !smelt_strmap_put(&g->names, name, strlen(name), i)) return -1;
    return i;
}

static int slot_find(const smelt_graph *g, const char *name)
{
    int64_t v;
    return smelt_strmap_get(&g->names, name, strlen(name), &v) ? (int)v : -1;
}

static void set_const(gx_slot *s, const smelt_tensor *t)
{
    s->t.dtype = t->dtype;
    s->t.ndim = t->ndim;
    memcpy(s->t.shape, t->shape, sizeof t->shape);
    s->t.numel = smelt_shape_numel(t->ndim, t->shape);
    s->t.data = t->data;
    s->t.buf = -1;
    s->t.qw = NULL;
    s->t.pk = NULL;
}

static bool is_default_domain(const char *d) { return !d || !*d || strcmp(d, "ai.onnx") == 0; }

static bool is_const_node(const smelt_node *n)
{
    const smelt_attr *a = smelt_node_attr(n, "value");
    return strcmp(n->op, "Constant") == 0 && is_default_domain(n->domain) && a && a->type == SMELT_ATTR_TENSOR && a->tensor;
}

static void step_free(gx_step *st)
{
    free(st->in);
    free(st->out);
    free(st->release);
}

/* Ops whose result may differ from run to run: never computed at load. */
static bool is_random_op(const char *op)
{
    return strncmp(op, "Random", 6) == 0 || strcmp(op, "Bernoulli") == 0 || strcmp(op, "Multinomial") == 0 || strcmp(op, "Dropout") == 0;
}

/* Keeps p (malloc'd) until the graph is freed. */
static bool keep_buffer(smelt_graph *g, void *p)
{
    void **nf = realloc(g->folded, ((size_t)g->n_folded + 1) * sizeof *nf);
    if (!nf) return false;
    g->folded = nf;
    g->folded[g->n_folded++] = p;
    return true;
}

/* ---- int8 weights ---- */

/* Checks a quantized tensor is a form the kernels run (int8, per channel, symmetric, f32 scales)
 * and describes it in qw. */
static smelt_err *qweight_init(const smelt_model *m, const smelt_tensor *t, gx_qweight *qw)
{
    const smelt_quant *q = &t->quant;
    if (q->kind != SMELT_QUANT_PER_CHANNEL || q->bits != 8 || !q->symmetric || t->dtype != SMELT_DT_I8)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "tensor '%s': the graph executor runs int8 symmetric per-channel weights; this one is %d-bit %s%s", t->name,
                         q->bits, q->kind == SMELT_QUANT_GROUP ? "group-wise" : "per-channel", q->symmetric ? "" : " asymmetric");
    if (q->axis < 0 || q->axis >= t->ndim) return SMELT_ERR(SMELT_E_CORRUPT, "tensor '%s': quant axis %d out of range", t->name, q->axis);
    const smelt_tensor *sc = q->scale ? smelt_model_find(m, q->scale) : NULL;
    if (!sc || sc->dtype != SMELT_DT_F32 || smelt_shape_numel(sc->ndim, sc->shape) != t->shape[q->axis])
        return SMELT_ERR(SMELT_E_CORRUPT, "tensor '%s': scale tensor '%s' must be f32 with %lld values (one per channel)", t->name, q->scale ? q->scale : "",
                         (long long)t->shape[q->axis]);
    qw->axis = q->axis;
    qw->channels = t->shape[q->axis];
    qw->inner = smelt_shape_numel(t->ndim - q->axis - 1, t->shape + q->axis + 1);
    qw->q = t->data;
    qw->scale = sc->data;
    qw->qt = NULL;
    return NULL;
}

/* Whether step input k may read the int8 weight t as such: the weight of a MatMul ([K, N] by
 * channel N), a Gemm ([N, K] with transB, else [K, N]) or a Conv ([M, C/g, k...] by channel M). */
static bool qweight_reader_ok(const smelt_node *nd, int k, const gx_tensor *t)
{
    if (k != 1 || !is_default_domain(nd->domain)) return false;
    if (strcmp(nd->op, "MatMul") == 0) return t->ndim == 2 && t->qw->axis == 1;
    if (strcmp(nd->op, "Gemm") == 0) return t->ndim == 2 && t->qw->axis == (gx_attr_i(nd, "transB", 0) ? 0 : 1);
    if (strcmp(nd->op, "Conv") == 0) return t->ndim >= 3 && t->qw->axis == 0;
    return false;
}

/* Each int8 weight either stays int8 (every reader runs it through an int8 kernel; a MatMul weight
 * also gets its transposed rows for qmatmul) or, read by anything else, becomes an f32 constant
 * here, once. */
static smelt_err *place_qweights(smelt_graph *g)
{
    for (int i = 0; i < g->n_slots; i++) {
        gx_slot *sl = &g->slots[i];
        if (sl->kind != SLOT_CONST || !sl->t.qw) continue;
        bool ok = true, matmul = false;
        for (int s = 0; s < g->n_steps && ok; s++)
            for (int k = 0; k < g->steps[s].node->n_inputs && ok; k++) {
                if (g->steps[s].in[k] != i) continue;
                ok = qweight_reader_ok(g->steps[s].node, k, &sl->t);
                matmul |= strcmp(g->steps[s].node->op, "MatMul") == 0;
            }
        for (int o = 0; o < g->m->n_outputs; o++) ok &= g->output_slot[o] != i;
        gx_qweight *qw = (gx_qweight *)sl->t.qw;
        if (!ok) {
            float *f = malloc((size_t)(sl->t.numel ? sl->t.numel : 1) * sizeof *f);
            if (!f || !keep_buffer(g, f)) {
                free(f);
                return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
            }
            gx_dequant(qw, sl->t.numel, f);
            sl->t.dtype = SMELT_DT_F32;
            sl->t.data = f;
            sl->t.qw = NULL;
        } else if (matmul && sl->t.numel > 0) {
            int64_t K = sl->t.shape[0], N = sl->t.shape[1];
            if (K > INT32_MAX || N > INT32_MAX) continue;
            int8_t *qt = malloc((size_t)sl->t.numel);
            if (!qt || !keep_buffer(g, qt)) {
                free(qt);
                return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
            }
            for (int64_t k = 0; k < K; k++)
                for (int64_t n = 0; n < N; n++) qt[n * K + k] = qw->q[k * N + n];
            qw->qt = qt;
        }
    }
    return NULL;
}

/* Constant folding: a step whose inputs are all constants (initializers, Constant nodes, values
 * folded before it) runs once here, and its outputs become constants owned by the graph (e.g. a
 * Transpose of a weight). A step that fails is left to fail at run time with its usual error. */
static smelt_err *fold_constants(smelt_graph *g)
{
    int kept = 0;
    for (int s = 0; s < g->n_steps; s++) {
        gx_step *st = &g->steps[s];
        const smelt_node *nd = st->node;
        int n_real = 0;
        bool fold = !is_random_op(nd->op);
        for (int k = 0; k < nd->n_inputs && fold; k++) {
            if (st->in[k] < 0) continue;
            n_real++;
            fold = g->slots[st->in[k]].kind == SLOT_CONST;
        }
        if (fold && n_real > 0) {
            smelt_err *err = run_step(g, st);
            if (!err) {
                void **nf = realloc(g->folded, ((size_t)g->n_folded + (size_t)nd->n_outputs + 1) * sizeof *nf);
                if (!nf) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
                g->folded = nf;
                for (int k = 0; k < nd->n_outputs; k++) {
                    gx_slot *o = &g->slots[st->out[k]];
                    if (o->t.buf >= 0) {
                        gx_buf *b = &g->x.bufs[o->t.buf];
                        if (b->refs == 1 && b->p == o->t.data) {
                            g->folded[g->n_folded++] = b->p; /* adopt the pooled buffer */
                            *b = (gx_buf){0};
                        } else {
                            size_t nb = smelt_dtype_nbytes(o->t.dtype, (uint64_t)o->t.numel);
                            void *p = malloc(nb ? nb : 1);
                            if (!p) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
                            if (nb) memcpy(p, o->t.data, nb);
                            pool_put(&g->x, o->t.buf);
                            o->t.data = g->folded[g->n_folded++] = p;
                        }
                    }
                    o->t.buf = -1;
                    o->kind = SLOT_CONST;
                    o->producer = -1;
                }
                step_free(st);
                continue;
            }
            smelt_err_free(err);
            for (int k = 0; k < nd->n_outputs; k++) slot_release(g, &g->slots[st->out[k]]);
        }
        g->steps[kept++] = *st;
    }
    g->n_steps = kept;
    return NULL;
}

/* Constant f32 weights of MatMul ([K, N]) and Gemm (B, either layout) also packed for
 * gx_gemm_packed, once, here (after folding, so a weight made by a folded Transpose qualifies). */
static smelt_err *pack_weights(smelt_graph *g)
{
    if (!gx_gemm_packed_ok()) return NULL;
    for (int s = 0; s < g->n_steps; s++) {
        const smelt_node *nd = g->steps[s].node;
        bool mm = strcmp(nd->op, "MatMul") == 0, gemm = strcmp(nd->op, "Gemm") == 0;
        if ((!mm && !gemm) || nd->n_inputs < 2 || g->steps[s].in[1] < 0) continue;
        gx_slot *sl = &g->slots[g->steps[s].in[1]];
        gx_tensor *t = &sl->t;
        if (sl->kind != SLOT_CONST || t->dtype != SMELT_DT_F32 || t->qw || t->pk || t->ndim != 2 || t->numel == 0) continue;
        bool trans = gemm && gx_attr_i(nd, "transB", 0);
        int64_t K = trans ? t->shape[1] : t->shape[0], N = trans ? t->shape[0] : t->shape[1];
        size_t bytes = ((size_t)gx_pack_floats(K, N) * sizeof(float) + 63) / 64 * 64;
        float *pk = aligned_alloc(64, bytes);
        if (!pk || !keep_buffer(g, pk)) {
            free(pk);
            return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
        }
        gx_pack_b(t->data, trans, K, N, pk);
        t->pk = pk;
    }
    return NULL;
}

/* A MaxPool the Conv kernel can apply as it writes (GX_FUSE_RELU_POOL2): 2x2 windows, stride 2, no
 * padding or dilation, floor mode, no Indices output. */
static bool pool2_fusable(const smelt_node *n)
{
    const int64_t *v;
    int nk = gx_attr_ints(n, "kernel_shape", &v);
    if (nk != 2 || v[0] != 2 || v[1] != 2 || n->n_outputs != 1) return false;
    if (gx_attr_ints(n, "strides", &v) != 2 || v[0] != 2 || v[1] != 2) return false;
    int np = gx_attr_ints(n, "pads", &v);
    for (int i = 0; i < np; i++)
        if (v[i] != 0) return false;
    int nd = gx_attr_ints(n, "dilations", &v);
    for (int i = 0; i < nd; i++)
        if (v[i] != 1) return false;
    const char *ap = gx_attr_s(n, "auto_pad", "NOTSET");
    return gx_attr_i(n, "ceil_mode", 0) == 0 && (strcmp(ap, "NOTSET") == 0 || strcmp(ap, "VALID") == 0);
}

/* Folds a Relu into the Conv producing its input when nothing else reads the Conv's output: the
 * Conv writes the Relu's output directly (GX_FUSE_RELU), one pass over memory less; likewise a
 * 2x2/2 MaxPool after such a Conv+Relu (GX_FUSE_RELU_POOL2): the full-size activation is never
 * written. */
static smelt_err *fuse_activations(smelt_graph *g)
{
    int *readers = calloc((size_t)g->n_slots + 1, sizeof *readers);
    if (!readers) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
    for (int s = 0; s < g->n_steps; s++)
        for (int k = 0; k < g->steps[s].node->n_inputs; k++)
            if (g->steps[s].in[k] >= 0) readers[g->steps[s].in[k]]++;
    for (int i = 0; i < g->m->n_outputs; i++) readers[g->output_slot[i]] += 2;
    int kept = 0;
    for (int s = 0; s < g->n_steps; s++) {
        gx_step *st = &g->steps[s];
        const smelt_node *nd = st->node;
        bool drop = false;
        if (strcmp(nd->op, "Relu") == 0 && nd->n_inputs == 1 && st->in[0] >= 0 && readers[st->in[0]] == 1) {
            int src = st->in[0];
            for (int p = kept - 1; p >= 0; p--) {
                gx_step *ps = &g->steps[p];
                if (ps->node->n_outputs < 1 || ps->out[0] != src) continue;
                if (strcmp(ps->node->op, "Conv") == 0 && ps->node->n_outputs == 1 && ps->fuse == GX_FUSE_NONE) {
                    ps->fuse = GX_FUSE_RELU;
                    ps->out[0] = st->out[0];
                    g->slots[src].producer = -1;
                    drop = true;
                }
                break;
            }
        }
        if (!drop && strcmp(nd->op, "MaxPool") == 0 && nd->n_inputs == 1 && st->in[0] >= 0 && readers[st->in[0]] == 1 && pool2_fusable(nd)) {
            int src = st->in[0];
            for (int p = kept - 1; p >= 0; p--) {
                gx_step *ps = &g->steps[p];
                if (ps->node->n_outputs < 1 || ps->out[0] != src) continue;
                if (strcmp(ps->node->op, "Conv") == 0 && ps->node->n_outputs == 1 && ps->fuse == GX_FUSE_RELU) {
                    ps->fuse = GX_FUSE_RELU_POOL2;
                    ps->out[0] = st->out[0];
                    g->slots[src].producer = -1;
                    drop = true;
                }
                break;
            }
        }
        if (drop) {
            step_free(st);
            continue;
        }
        g->steps[kept++] = *st;
    }
    g->n_steps = kept;
    free(readers);
    return NULL;
}

/* Orders the nodes so each runs after the producers of its inputs (ONNX requires the file to be
 * sorted already; this also accepts files that are not). */
static smelt_err *plan(smelt_graph *g, const smelt_model *m)
{
    int n = m->n_nodes;
    bool *done = calloc((size_t)n + 1, 1);
    bool *ready = calloc((size_t)g->n_slots + 1, 1);
    int *node_of_step = malloc(((size_t)n + 1) * sizeof *node_of_step);
    if (!done || !ready || !node_of_step) {
        free(done), free(ready), free(node_of_step);
        return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
    }
    for (int i = 0; i < g->n_slots; i++) ready[i] = g->slots[i].kind != SLOT_VALUE;
    int n_steps = 0, todo = 0;
    for (int i = 0; i < n; i++) {
        if (is_const_node(&m->nodes[i])) done[i] = true;
        else todo++;
    }
    bool progress = true;
    while (todo && progress) {
        progress = false;
        for (int i = 0; i < n; i++) {
            if (done[i]) continue;
            const smelt_node *nd = &m->nodes[i];
            bool ok = true;
            for (int k = 0; k < nd->n_inputs && ok; k++) {
                if (!*nd->inputs[k]) continue;
                int s = slot_find(g, nd->inputs[k]);
                ok = s >= 0 && ready[s];
            }
            if (!ok) continue;
            for (int k = 0; k < nd->n_outputs; k++) {
                int s = slot_find(g, nd->outputs[k]);
                if (s >= 0) ready[s] = true;
            }
            done[i] = true;
            node_of_step[n_steps++] = i;
            todo--;
            progress = true;
        }
    }
    smelt_err *err = NULL;
    if (todo) {
        for (int i = 0; i < n && !err; i++) {
            if (done[i]) continue;
            const smelt_node *nd = &m->nodes[i];
            for (int k = 0; k < nd->n_inputs && !err; k++) {
                if (!*nd->inputs[k]) continue;
                if (slot_find(g, nd->inputs[k]) < 0)
                    err = SMELT_ERR(SMELT_E_CORRUPT, "node '%s' (%s): input '%s' is not produced by any node, initializer or graph input",
                                    gx_node_name(nd), nd->op, nd->inputs[k]);
            }
        }
        if (!err) err = SMELT_ERR(SMELT_E_CORRUPT, "graph: %d nodes form a cycle", todo);
    }
    free(done);
    free(ready);
    if (err) {
        free(node_of_step);
        return err;
    }
    g->steps = calloc((size_t)n_steps + 1, sizeof *g->steps);
    if (!g->steps) {
        free(node_of_step);
        return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
    }
    g->n_steps = n_steps;
    for (int s = 0; s < n_steps && !err; s++) {
        const smelt_node *nd = &m->nodes[node_of_step[s]];
        gx_step *st = &g->steps[s];
        st->node = nd;
        st->op = gx_find_op(nd->op);
        st->in = malloc(((size_t)nd->n_inputs + 1) * sizeof *st->in);
        st->out = malloc(((size_t)nd->n_outputs + 1) * sizeof *st->out);
        if (!st->in || !st->out) {
            err = SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
            break;
        }
        for (int k = 0; k < nd->n_inputs; k++) st->in[k] = *nd->inputs[k] ? slot_find(g, nd->inputs[k]) : -1;
        for (int k = 0; k < nd->n_outputs; k++) {
            int sl = *nd->outputs[k] ? slot_find(g, nd->outputs[k]) : -1;
            if (sl < 0) sl = slot_add(g, "", SLOT_VALUE); /* unnamed output: released right after */
            if (sl < 0) err = SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
            else g->slots[sl].producer = s;
            st->out[k] = sl;
        }
        if (nd->n_inputs > g->max_io) g->max_io = nd->n_inputs;
        if (nd->n_outputs > g->max_io) g->max_io = nd->n_outputs;
    }
    free(node_of_step);
    if (err) return err;
    g->in_scratch = calloc((size_t)g->max_io + 1, sizeof *g->in_scratch);
    g->out_scratch = calloc((size_t)g->max_io + 1, sizeof *g->out_scratch);
    if (!g->in_scratch || !g->out_scratch) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
    SMELT_TRY(place_qweights(g));
    SMELT_TRY(fold_constants(g));
    SMELT_TRY(pack_weights(g));
    SMELT_TRY(fuse_activations(g));
    for (int s = 0; s < g->n_steps; s++)
        for (int k = 0; k < g->steps[s].node->n_outputs; k++) g->slots[g->steps[s].out[k]].producer = s;

    /* Last use of each value: graph outputs are never released; a value nobody reads is released
     * right after the step producing it. */
    int *last = malloc(((size_t)g->n_slots + 1) * sizeof *last);
    if (!last) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
    for (int i = 0; i < g->n_slots; i++) last[i] = g->slots[i].producer;
    for (int s = 0; s < g->n_steps; s++)
        for (int k = 0; k < g->steps[s].node->n_inputs; k++)
            if (g->steps[s].in[k] >= 0) last[g->steps[s].in[k]] = s;
    for (int i = 0; i < m->n_outputs; i++) last[g->output_slot[i]] = INT_MAX;
    for (int i = 0; i < g->n_slots; i++) {
        if (g->slots[i].kind != SLOT_VALUE || last[i] < 0 || last[i] == INT_MAX) continue;
        gx_step *st = &g->steps[last[i]];
        int *r = realloc(st->release, ((size_t)st->n_release + 1) * sizeof *r);
        if (!r) {
            free(last);
            return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
        }
        st->release = r;
        r[st->n_release++] = i;
    }
    free(last);
    return NULL;
}

static smelt_err *load(smelt_graph *g, const smelt_model *m)
{
    if (m->kind != SMELT_KIND_GRAPH) return SMELT_ERR(SMELT_E_INVALID, "graph: the model is not an ONNX-style graph");
    g->m = m;
    g->opset = 17;
    for (int i = 0; i < m->n_opsets; i++)
        if (is_default_domain(m->opsets[i].domain)) g->opset = (int)m->opsets[i].version;

    int cap = m->n_tensors + m->n_inputs + 2 * m->n_nodes + 8;
    for (int i = 0; i < m->n_nodes; i++) cap += m->nodes[i].n_outputs;
    g->slots = calloc((size_t)cap, sizeof *g->slots);
    g->input_slot = calloc((size_t)m->n_inputs + 1, sizeof(int));
    g->output_slot = calloc((size_t)m->n_outputs + 1, sizeof(int));
    if (!g->slots || !g->input_slot || !g->output_slot) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");

    g->qws = calloc((size_t)m->n_tensors + 1, sizeof *g->qws);
    if (!g->qws) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
    for (int i = 0; i < m->n_tensors; i++) {
        int s = slot_add(g, m->tensors[i].name, SLOT_CONST);
        if (s < 0) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
        set_const(&g->slots[s], &m->tensors[i]);
        if (m->tensors[i].quant.kind != SMELT_QUANT_NONE) {
            SMELT_TRY(qweight_init(m, &m->tensors[i], &g->qws[g->n_qws]));
            g->slots[s].t.qw = &g->qws[g->n_qws++];
        }
    }
    for (int i = 0; i < m->n_inputs; i++) {
        if (slot_find(g, m->inputs[i].name) >= 0) {
            g->input_slot[i] = slot_find(g, m->inputs[i].name);
            continue; /* an input with an initializer as its default: the initializer is used */
        }
        int s = slot_add(g, m->inputs[i].name, SLOT_INPUT);
        if (s < 0) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
        g->input_slot[i] = s;
    }
    for (int i = 0; i < m->n_nodes; i++) {
        const smelt_node *n = &m->nodes[i];
        if (!is_default_domain(n->domain))
            return SMELT_ERR(SMELT_E_UNSUPPORTED, "node '%s' (%s): op '%s' of domain '%s' is not supported", gx_node_name(n), n->op, n->op,
                             n->domain);
        bool cn = is_const_node(n);
        if (!cn) {
            const gx_op *op = gx_find_op(n->op);
            if (!op) return SMELT_ERR(SMELT_E_UNSUPPORTED, "node '%s' (%s): op '%s' is not supported", gx_node_name(n), n->op, n->op);
            if (op->check) SMELT_TRY(op->check(n, g->opset));
        }
        for (int k = 0; k < n->n_outputs; k++) {
            if (!*n->outputs[k]) continue;
            if (slot_find(g, n->outputs[k]) >= 0)
                return SMELT_ERR(SMELT_E_CORRUPT, "node '%s' (%s): output '%s' is already defined", gx_node_name(n), n->op, n->outputs[k]);
            int s = slot_add(g, n->outputs[k], cn ? SLOT_CONST : SLOT_VALUE);
            if (s < 0) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
            if (cn) set_const(&g->slots[s], smelt_node_attr(n, "value")->tensor);
        }
    }
    for (int i = 0; i < m->n_outputs; i++) {
        int s = slot_find(g, m->outputs[i].name);
        if (s < 0) return SMELT_ERR(SMELT_E_CORRUPT, "graph: output '%s' is not produced by any node", m->outputs[i].name);
        g->output_slot[i] = s;
    }
    return plan(g, m);
}

smelt_err *smelt_graph_load(const smelt_model *m, smelt_graph **out)
{
    smelt_graph *g = calloc(1, sizeof *g);
    if (!g) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
    /* The executor splits its matrix products over smelt's own thread pool; OpenBLAS threads spinning
     * beside the pool's on the same cores would only slow both down (as in the LLM engine). */
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    smelt_err *err = load(g, m);
    if (err) {
        smelt_graph_free(g);
        return err;
    }
    *out = g;
    return NULL;
}

void smelt_graph_free(smelt_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_steps; i++) step_free(&g->steps[i]);
    free(g->steps);
    for (int i = 0; i < g->n_folded; i++) free(g->folded[i]);
    free(g->folded);
    free(g->qws);
    for (int i = 0; i < g->x.n_bufs; i++) free(g->x.bufs[i].p);
    free(g->x.bufs);
    free(g->slots);
    smelt_strmap_free(&g->names);
    free(g->input_slot);
    free(g->output_slot);
    free(g->in_scratch);
    free(g->out_scratch);
    free(g);
}

/* ---- run ---- */

static smelt_err *bind_inputs(smelt_graph *g, const smelt_tensor *inputs, int n_inputs)
{
    const smelt_model *m = g->m;
    for (int k = 0; k < n_inputs; k++) {
        int i = 0;
        while (i < m->n_inputs && strcmp(m->inputs[i].name, inputs[k].name) != 0) i++;
        if (i == m->n_inputs) return SMELT_ERR(SMELT_E_INVALID, "graph: '%s' is not an input of the graph", inputs[k].name);
    }
    for (int i = 0; i < m->n_inputs; i++) {
        const smelt_value *v = &m->inputs[i];
        const smelt_tensor *t = NULL;
        for (int k = 0; k < n_inputs && !t; k++)
            if (strcmp(inputs[k].name, v->name) == 0) t = &inputs[k];
        gx_slot *s = &g->slots[g->input_slot[i]];
        if (s->kind == SLOT_CONST) continue; /* an input with an initializer: the initializer is used */
        if (!t) return SMELT_ERR(SMELT_E_INVALID, "graph: input '%s' is missing", v->name);
        if (v->dtype != SMELT_DT_INVALID && t->dtype != v->dtype)
            return SMELT_ERR(SMELT_E_INVALID, "graph: input '%s' is %s, expected %s", v->name, smelt_dtype_name(t->dtype), smelt_dtype_name(v->dtype));
        char a[160], b[160];
        bool bad = v->ndim >= 0 && v->ndim != t->ndim; /* ndim -1: rank not declared */
        for (int d = 0; !bad && d < t->ndim && d < v->ndim; d++) bad = v->dims[d] >= 0 && v->dims[d] != t->shape[d];
        if (bad)
            return SMELT_ERR(SMELT_E_INVALID, "graph: input '%s' has shape %s, expected %s", v->name, smelt_shape_str(t->ndim, t->shape, a, sizeof a),
                             smelt_shape_str(v->ndim, v->dims, b, sizeof b));
        set_const(s, t);
    }
    return NULL;
}

static void release_all(smelt_graph *g)
{
    for (int i = 0; i < g->n_slots; i++) slot_release(g, &g->slots[i]);
}

static smelt_err *take_outputs(smelt_graph *g, smelt_tensor **outputs, int *n_outputs)
{
    const smelt_model *m = g->m;
    smelt_tensor *o = calloc((size_t)m->n_outputs + 1, sizeof *o);
    if (!o) return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
    for (int i = 0; i < m->n_outputs; i++) {
        gx_tensor *t = &g->slots[g->output_slot[i]].t;
        o[i].name = strdup(m->outputs[i].name);
        o[i].dtype = t->dtype;
        o[i].ndim = t->ndim;
        memcpy(o[i].shape, t->shape, sizeof t->shape);
        o[i].nbytes = smelt_dtype_nbytes(t->dtype, (uint64_t)t->numel);
        if (t->buf >= 0 && g->x.bufs[t->buf].refs == 1) {
            o[i].data = t->data; /* hand the pooled buffer over */
            g->x.bufs[t->buf] = (gx_buf){0};
            t->buf = -1;
        } else {
            o[i].data = malloc(o[i].nbytes ? o[i].nbytes : 1);
            if (o[i].data && o[i].nbytes) memcpy(o[i].data, t->data, o[i].nbytes);
        }
        if (!o[i].name || !o[i].data) {
            smelt_graph_outputs_free(o, i + 1);
            return SMELT_ERR(SMELT_E_NOMEM, "graph: out of memory");
        }
    }
    *outputs = o;
    *n_outputs = m->n_outputs;
    return NULL;
}

smelt_err *smelt_graph_run(smelt_graph *g, const smelt_tensor *inputs, int n_inputs, smelt_tensor **outputs, int *n_outputs)
{
    smelt_err *err = bind_inputs(g, inputs, n_inputs);
    for (int s = 0; s < g->n_steps && !err; s++) {
        gx_step *st = &g->steps[s];
        err = run_step(g, st);
        for (int k = 0; k < st->n_release; k++) slot_release(g, &g->slots[st->release[k]]);
    }
    if (!err) err = take_outputs(g, outputs, n_outputs);
    release_all(g);
    return err;
}

void smelt_graph_outputs_free(smelt_tensor *outputs, int n_outputs)
{
    if (!outputs) return;
    for (int i = 0; i < n_outputs; i++) {
        free(outputs[i].name);
        free(outputs[i].data);
    }
    free(outputs);
}
