/* ONNX import: an .onnx file (onnx.ModelProto, parsed by protobuf-c from Debian's onnx.proto)
 * becomes a smelt_model of kind GRAPH.
 *
 * protobuf-c does the wire-format work and bounds its own allocations by the input size; this file
 * maps the message onto the IR: opsets and model metadata, initializers (decoded by onnx_tensor.c),
 * graph inputs and outputs with their symbolic dims, and nodes with their attributes. Initializers
 * that older exporters also list as graph inputs are left out of the inputs: they are weights, not
 * something a caller feeds. Subgraph attributes (If/Loop/Scan bodies) are kept as opaque
 * SMELT_ATTR_GRAPH entries without content.
 */
#include "formats/onnx.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "formats/onnx_tensor.h"

static const char *str_or_empty(const char *s) { return s ? s : ""; }

/* "" and "ai.onnx" both name the default operator set; the IR uses "" for it. */
static const char *norm_domain(const char *d)
{
    if (!d || strcmp(d, "ai.onnx") == 0) return "";
    return d;
}

static smelt_err *nomem(const onnx_ctx *ctx) { return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", ctx->path); }

/* Model-level facts a reader of the IR may want: who produced it and under which IR version. */
static smelt_err *import_meta(onnx_ctx *ctx, const Onnx__ModelProto *mp)
{
    json_t *meta = ctx->m->meta;
    int bad = 0;
    if (mp->has_ir_version) bad |= json_object_set_new(meta, "ir_version", json_integer(mp->ir_version));
    bad |= json_object_set_new(meta, "producer_name", json_string(str_or_empty(mp->producer_name)));
    bad |= json_object_set_new(meta, "producer_version", json_string(str_or_empty(mp->producer_version)));
    bad |= json_object_set_new(meta, "domain", json_string(str_or_empty(mp->domain)));
    if (mp->has_model_version) bad |= json_object_set_new(meta, "model_version", json_integer(mp->model_version));
    bad |= json_object_set_new(meta, "graph_name", json_string(str_or_empty(mp->graph->name)));
    if (mp->n_metadata_props) {
        json_t *props = json_object();
        for (size_t i = 0; props && i < mp->n_metadata_props; i++) {
            const Onnx__StringStringEntryProto *e = mp->metadata_props[i];
            bad |= json_object_set_new(props, str_or_empty(e->key), json_string(str_or_empty(e->value)));
        }
        bad |= json_object_set_new(meta, "metadata_props", props);
    }
    /* json_string returns NULL for invalid UTF-8, which json_object_set_new reports as failure. */
    if (bad) return SMELT_ERR(SMELT_E_CORRUPT, "%s: model metadata (producer, domain, graph name or metadata_props) is not valid UTF-8", ctx->path);
    return NULL;
}

static smelt_err *import_opsets(onnx_ctx *ctx, const Onnx__ModelProto *mp)
{
    if (mp->n_opset_import > INT_MAX) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %zu opset imports", ctx->path, mp->n_opset_import);
    smelt_model *m = ctx->m;
    m->opsets = calloc(mp->n_opset_import ? mp->n_opset_import : 1, sizeof *m->opsets);
    if (!m->opsets) return nomem(ctx);
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (!o->has_version) return SMELT_ERR(SMELT_E_CORRUPT, "%s: opset import '%s' has no version", ctx->path, str_or_empty(o->domain));
        m->opsets[i].domain = strdup(norm_domain(o->domain));
        if (!m->opsets[i].domain) return nomem(ctx);
        m->opsets[i].version = o->version;
        m->n_opsets++;
    }
    return NULL;
}

/* The graph's initializers, decoded before any becomes a model tensor so that re-tied copies
 * (see find_ties) can be left out. */
typedef struct {
    const char *name; /* the proto's own string, valid while the message lives */
    onnx_tensor_data t;
    int tied_to; /* index of the initializer this one is the transpose of, or -1 */
} onnx_init;

typedef struct {
    onnx_init *v;
    size_t n;
    smelt_strmap index; /* name -> index into v */
} onnx_inits;

static void inits_free(onnx_inits *in)
{
    free(in->v);
    smelt_strmap_free(&in->index);
}

static int inits_find(const onnx_inits *in, const char *name)
{
    int64_t i;
    if (!name || !smelt_strmap_get(&in->index, name, strlen(name), &i)) return -1;
    return (int)i;
}

static smelt_err *decode_initializers(onnx_ctx *ctx, const Onnx__GraphProto *g, onnx_inits *in)
{
    if (g->n_sparse_initializer)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: graph has %zu sparse initializers, which are not supported", ctx->path, g->n_sparse_initializer);
    if (g->n_initializer > INT_MAX) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %zu initializers", ctx->path, g->n_initializer);
    in->v = calloc(g->n_initializer ? g->n_initializer : 1, sizeof *in->v);
    if (!in->v) return nomem(ctx);
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *tp = g->initializer[i];
        if (!tp->name || !*tp->name) return SMELT_ERR(SMELT_E_CORRUPT, "%s: initializer #%zu has no name", ctx->path, i);
        if (inits_find(in, tp->name) >= 0) return SMELT_ERR(SMELT_E_CORRUPT, "%s: initializer '%s' appears twice", ctx->path, tp->name);
        char *what = onnx_fmt("initializer '%s'", tp->name);
        if (!what) return nomem(ctx);
        smelt_err *err = onnx_tensor_decode(ctx, tp, what, &in->v[i].t);
        free(what);
        if (err) return err;
        in->v[i].name = tp->name;
        in->v[i].tied_to = -1;
        if (!smelt_strmap_put(&in->index, tp->name, strlen(tp->name), (int64_t)i)) return nomem(ctx);
        in->n++;
    }
    return NULL;
}

/* True when b ([c, r]) holds exactly the transpose of a ([r, c]), bit for bit. */
static bool is_transpose_of(const onnx_tensor_data *a, const onnx_tensor_data *b)
{
    if (a->dtype != b->dtype || a->ndim != 2 || b->ndim != 2 || a->shape[0] != b->shape[1] || a->shape[1] != b->shape[0]) return false;
    size_t es = (size_t)smelt_dtype_traits(a->dtype)->bits / 8, r = (size_t)a->shape[0], c = (size_t)a->shape[1];
    const uint8_t *pa = a->data, *pb = b->data;
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++)
            if (memcmp(pa + (i * c + j) * es, pb + (j * r + i) * es, es) != 0) return false;
    return true;
}

/* Tied embeddings, re-tied. A model whose output head shares the token-embedding matrix is
 * exported by torch.onnx with the head as a second initializer, a transposed copy of the
 * embedding (tiny-llama: 'onnx::MatMul_594' [128, 4096] beside 'model.embed_tokens.weight'
 * [4096, 128]). Counting both would overstate the parameters (1,417,856 instead of 893,568) and
 * let a quantizer treat one matrix two ways. So when a MatMul's weight is bit for bit the transpose
 * of a Gather's table, the copy is dropped and recomputed by a Transpose node (see add_tie_nodes).
 * Requiring the Gather/MatMul pair keeps coincidences (two all-zero matrices) from being merged. */
static void find_ties(const Onnx__GraphProto *g, onnx_inits *in)
{
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *mm = g->node[i];
        if (!mm->op_type || strcmp(mm->op_type, "MatMul") != 0 || *norm_domain(mm->domain) || mm->n_input < 2) continue;
        int b = inits_find(in, mm->input[1]);
        if (b < 0 || in->v[b].tied_to >= 0 || in->v[b].t.ndim != 2 || !smelt_dtype_traits(in->v[b].t.dtype)->is_float) continue;
        for (size_t k = 0; k < g->n_node; k++) {
            const Onnx__NodeProto *ga = g->node[k];
            if (!ga->op_type || strcmp(ga->op_type, "Gather") != 0 || *norm_domain(ga->domain) || ga->n_input < 1) continue;
            int a = inits_find(in, ga->input[0]);
            if (a < 0 || a == b || in->v[a].tied_to >= 0 || !is_transpose_of(&in->v[a].t, &in->v[b].t)) continue;
            in->v[b].tied_to = a;
            break;
        }
    }
}

static smelt_err *add_initializers(onnx_ctx *ctx, const onnx_inits *in)
{
    for (size_t i = 0; i < in->n; i++) {
        const onnx_init *it = &in->v[i];
        if (it->tied_to >= 0) continue;
        SMELT_TRY(smelt_err_wrap(smelt_model_add_tensor(ctx->m, it->name, it->t.dtype, it->t.ndim, it->t.shape, it->t.data, NULL), "%s", ctx->path));
    }
    return NULL;
}

/* Recomputes each re-tied copy from its source with a Transpose node placed before all others,
 * and records the tie in m->meta["tied_initializers"] ({copy: source}). */
static smelt_err *add_tie_nodes(onnx_ctx *ctx, const onnx_inits *in)
{
    json_t *ties = NULL;
    for (size_t i = 0; i < in->n; i++) {
        const onnx_init *it = &in->v[i];
        if (it->tied_to < 0) continue;
        const char *src = in->v[it->tied_to].name;
        char *name = onnx_fmt("smelt.retie/%s", it->name);
        smelt_node *n = name ? smelt_model_add_node(ctx->m, "Transpose", "", name, 1, &src, 1, &it->name) : NULL;
        free(name);
        smelt_attr *perm = n ? smelt_node_add_attr(n, "perm", SMELT_ATTR_INTS) : NULL;
        if (perm && (perm->ints = malloc(2 * sizeof *perm->ints))) {
            perm->ints[0] = 1;
            perm->ints[1] = 0;
            perm->n = 2;
        }
        if (!ties && !(ties = json_object())) return nomem(ctx);
        if (!perm || !perm->ints || json_object_set_new(ties, it->name, json_string(src)) != 0) {
            json_decref(ties);
            return nomem(ctx);
        }
    }
    if (ties && json_object_set_new(ctx->m->meta, "tied_initializers", ties) != 0) return nomem(ctx);
    return NULL;
}

/* A graph input or output. Unknown element type: SMELT_DT_INVALID; unknown rank (no shape):
 * ndim -1; an unknown or symbolic dim: -1, with its name (dim_param) when it has one. */
static smelt_err *import_value(onnx_ctx *ctx, const Onnx__ValueInfoProto *vi, const char *kind, smelt_value *v)
{
    const char *name = str_or_empty(vi->name);
    if (!*name) return SMELT_ERR(SMELT_E_CORRUPT, "%s: a graph %s has no name", ctx->path, kind);
    v->name = strdup(name);
    if (!v->name) return nomem(ctx);
    v->ndim = -1;
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) return NULL;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: graph %s '%s': only tensor types are supported (not sequences, maps or optionals)", ctx->path,
                         kind, name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0) {
        v->dtype = smelt_dtype_from_onnx(tt->elem_type);
        if (v->dtype == SMELT_DT_INVALID) {
            const char *tn = onnx_type_name(tt->elem_type);
            return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: graph %s '%s': element type %s (%d) is not supported", ctx->path, kind, name,
                             tn ? tn : "unknown", tt->elem_type);
        }
    }
    if (!tt->shape) return NULL;
    if (tt->shape->n_dim > SMELT_MAX_DIMS)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: graph %s '%s': %zu dimensions, at most %d supported", ctx->path, kind, name, tt->shape->n_dim,
                         SMELT_MAX_DIMS);
    v->ndim = (int)tt->shape->n_dim;
    for (int i = 0; i < v->ndim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        v->dims[i] = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return SMELT_ERR(SMELT_E_CORRUPT, "%s: graph %s '%s': dim %d is %lld, expected a non-negative size or a name", ctx->path, kind, name,
                                 i, (long long)d->dim_value);
            v->dims[i] = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param && *d->dim_param) {
            v->dim_names[i] = strdup(d->dim_param);
            if (!v->dim_names[i]) return nomem(ctx);
        }
    }
    return NULL;
}

static smelt_err *import_io(onnx_ctx *ctx, const Onnx__GraphProto *g, const onnx_inits *in)
{
    smelt_model *m = ctx->m;
    if (g->n_input > INT_MAX || g->n_output > INT_MAX) return SMELT_ERR(SMELT_E_CORRUPT, "%s: too many graph inputs or outputs", ctx->path);
    m->inputs = calloc(g->n_input ? g->n_input : 1, sizeof *m->inputs);
    m->outputs = calloc(g->n_output ? g->n_output : 1, sizeof *m->outputs);
    if (!m->inputs || !m->outputs) return nomem(ctx);
    for (size_t i = 0; i < g->n_input; i++) {
        /* Exporters before IR version 4 list every initializer as an input too. */
        if (inits_find(in, g->input[i]->name) >= 0) continue;
        /* Counted before filling so that smelt_model_free releases a half-filled value. */
        smelt_value *v = &m->inputs[m->n_inputs++];
        SMELT_TRY(import_value(ctx, g->input[i], "input", v));
    }
    for (size_t i = 0; i < g->n_output; i++) {
        smelt_value *v = &m->outputs[m->n_outputs++];
        SMELT_TRY(import_value(ctx, g->output[i], "output", v));
    }
    return NULL;
}

/* ONNX files from before attribute types were recorded leave `type` unset: infer it from the one
 * field that is filled. */
static Onnx__AttributeProto__AttributeType attr_type(const Onnx__AttributeProto *a)
{
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return a->type;
    if (a->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    if (a->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    if (a->has_s) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    if (a->t) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    if (a->g) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    if (a->n_floats) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    if (a->n_ints) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    if (a->n_strings) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
    if (a->n_graphs) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS;
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

/* ONNX's name for an attribute type the IR cannot hold, for messages. */
static const char *attr_type_name(Onnx__AttributeProto__AttributeType ty)
{
    switch (ty) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS: return "TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR: return "SPARSE_TENSOR";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS: return "SPARSE_TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO: return "TYPE_PROTO";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS: return "TYPE_PROTOS";
    default: return "?";
    }
}

/* Copies a protobuf bytes value to a NUL-terminated string (it may itself contain NULs). */
static char *copy_bytes(const ProtobufCBinaryData *b)
{
    char *s = malloc(b->len + 1);
    if (!s) return NULL;
    if (b->len) memcpy(s, b->data, b->len);
    s[b->len] = 0;
    return s;
}

/* A TENSOR attribute (Constant's `value`): a tensor owned by the attribute, data in model storage.
 * It is named after the proto's own name, else the node's first output. */
static smelt_err *import_attr_tensor(onnx_ctx *ctx, const Onnx__TensorProto *tp, const char *what, const char *fallback, smelt_attr *a)
{
    onnx_tensor_data t;
    SMELT_TRY(onnx_tensor_decode(ctx, tp, what, &t));
    a->tensor = calloc(1, sizeof *a->tensor);
    if (!a->tensor) return nomem(ctx);
    a->tensor->name = strdup(tp->name && *tp->name ? tp->name : fallback);
    if (!a->tensor->name) return nomem(ctx);
    a->tensor->dtype = t.dtype;
    a->tensor->ndim = t.ndim;
    memcpy(a->tensor->shape, t.shape, sizeof t.shape);
    a->tensor->data = t.data;
    a->tensor->nbytes = t.nbytes;
    return NULL;
}

static smelt_err *import_attr(onnx_ctx *ctx, const Onnx__AttributeProto *pa, const char *node_what, const char *out0, smelt_node *n)
{
    const char *name = str_or_empty(pa->name);
    if (!*name) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: an attribute has no name", ctx->path, node_what);
    Onnx__AttributeProto__AttributeType ty = attr_type(pa);
    smelt_attr_type st;
    switch (ty) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: st = SMELT_ATTR_FLOAT; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: st = SMELT_ATTR_INT; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: st = SMELT_ATTR_STRING; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: st = SMELT_ATTR_FLOATS; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: st = SMELT_ATTR_INTS; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: st = SMELT_ATTR_STRINGS; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: st = SMELT_ATTR_TENSOR; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS: st = SMELT_ATTR_GRAPH; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED:
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: attribute '%s' has no type and no value", ctx->path, node_what, name);
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS:
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: %s: attribute '%s' is of type %s, which is not supported", ctx->path, node_what, name,
                         attr_type_name(ty));
    default:
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: attribute '%s' has unknown type %d", ctx->path, node_what, name, (int)ty);
    }
    smelt_attr *a = smelt_node_add_attr(n, name, st);
    if (!a) return nomem(ctx);
    switch (st) {
    case SMELT_ATTR_FLOAT: a->f = pa->f; break;
    case SMELT_ATTR_INT: a->i = pa->i; break;
    case SMELT_ATTR_STRING:
        if (!(a->s = copy_bytes(&pa->s))) return nomem(ctx);
        a->s_len = pa->s.len;
        break;
    case SMELT_ATTR_FLOATS:
        a->floats = malloc((pa->n_floats ? pa->n_floats : 1) * sizeof *a->floats);
        if (!a->floats) return nomem(ctx);
        if (pa->n_floats) memcpy(a->floats, pa->floats, pa->n_floats * sizeof *a->floats);
        a->n = pa->n_floats;
        break;
    case SMELT_ATTR_INTS:
        a->ints = malloc((pa->n_ints ? pa->n_ints : 1) * sizeof *a->ints);
        if (!a->ints) return nomem(ctx);
        if (pa->n_ints) memcpy(a->ints, pa->ints, pa->n_ints * sizeof *a->ints);
        a->n = pa->n_ints;
        break;
    case SMELT_ATTR_STRINGS:
        a->strings = calloc(pa->n_strings ? pa->n_strings : 1, sizeof *a->strings);
        if (!a->strings) return nomem(ctx);
        for (; a->n < pa->n_strings; a->n++)
            if (!(a->strings[a->n] = copy_bytes(&pa->strings[a->n]))) return nomem(ctx);
        break;
    case SMELT_ATTR_TENSOR: {
        if (!pa->t) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: attribute '%s' is a tensor but holds none", ctx->path, node_what, name);
        char *what = onnx_fmt("%s: attribute '%s'", node_what, name);
        if (!what) return nomem(ctx);
        smelt_err *err = import_attr_tensor(ctx, pa->t, what, out0, a);
        free(what);
        return err;
    }
    case SMELT_ATTR_GRAPH: a->n = ty == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH ? 1 : pa->n_graphs; break;
    }
    return NULL;
}

static smelt_err *import_nodes(onnx_ctx *ctx, const Onnx__GraphProto *g)
{
    if (g->n_node > INT_MAX) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %zu nodes", ctx->path, g->n_node);
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *pn = g->node[i];
        const char *op = str_or_empty(pn->op_type), *name = str_or_empty(pn->name);
        char *what = *name && *op ? onnx_fmt("node '%s' (%s)", name, op)
                     : *name      ? onnx_fmt("node '%s'", name)
                     : *op        ? onnx_fmt("node #%zu (%s)", i, op)
                                  : onnx_fmt("node #%zu", i);
        if (!what) return nomem(ctx);
        smelt_err *err = NULL;
        if (!*op) err = SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: no op_type", ctx->path, what);
        else if (pn->n_input > INT_MAX || pn->n_output > INT_MAX) err = SMELT_ERR(SMELT_E_CORRUPT, "%s: %s: too many inputs or outputs", ctx->path, what);
        smelt_node *n = NULL;
        if (!err) {
            /* protobuf-c's char ** holds no NULLs for repeated strings; smelt_model_add_node maps NULL to "" anyway. */
            n = smelt_model_add_node(ctx->m, op, norm_domain(pn->domain), name, (int)pn->n_input, (const char *const *)pn->input, (int)pn->n_output,
                                     (const char *const *)pn->output);
            if (!n) err = nomem(ctx);
        }
        const char *out0 = pn->n_output ? str_or_empty(pn->output[0]) : name;
        for (size_t k = 0; !err && k < pn->n_attribute; k++) err = import_attr(ctx, pn->attribute[k], what, out0, n);
        free(what);
        if (err) return err;
    }
    return NULL;
}

smelt_err *onnx_read(const char *path, smelt_model **out)
{
    *out = NULL;
    smelt_map map;
    SMELT_TRY(smelt_map_file(path, &map));
    /* protobuf-c copies every bytes field, so the mapping is not needed once unpacked. */
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, map.size, map.data);
    smelt_unmap(&map);
    if (!mp) return SMELT_ERR(SMELT_E_CORRUPT, "%s: not a valid ONNX protobuf (truncated or corrupt)", path);
    /* An empty file is a valid (empty) protobuf message: the missing graph is what tells. */
    if (!mp->graph) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: no graph: not an ONNX model (or an empty file)", path);
    }
    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "onnx");
    onnx_ctx ctx = {0};
    onnx_inits inits = {0};
    smelt_err *err = m ? onnx_ctx_init(&ctx, path, m) : SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", path);
    if (!err) err = import_meta(&ctx, mp);
    if (!err) err = import_opsets(&ctx, mp);
    if (!err) err = decode_initializers(&ctx, mp->graph, &inits);
    if (!err) {
        find_ties(mp->graph, &inits);
        err = add_initializers(&ctx, &inits);
    }
    if (!err) err = import_io(&ctx, mp->graph, &inits);
    if (!err) err = add_tie_nodes(&ctx, &inits);
    if (!err) err = import_nodes(&ctx, mp->graph);
    if (!err) err = smelt_err_wrap(smelt_model_validate(m), "%s", path);
    inits_free(&inits);
    onnx_ctx_free(&ctx);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (err) {
        smelt_model_free(m);
        return err;
    }
    *out = m;
    return NULL;
}
