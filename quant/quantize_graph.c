/* Int8 per-channel quantization of an ONNX graph's MatMul / Gemm / Conv weights (see
 * quantize_graph.h). */
#define _POSIX_C_SOURCE 200809L
#include "quant/quantize_graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/rtn.h"

static bool default_domain(const char *d) { return !d || !*d || strcmp(d, "ai.onnx") == 0; }

static int64_t attr_int(const smelt_node *n, const char *name, int64_t dflt)
{
    const smelt_attr *a = smelt_node_attr(n, name);
    return a && a->type == SMELT_ATTR_INT ? a->i : dflt;
}

/* The output-channel axis when input k of node n is a weight we quantize, else -1. */
static int weight_axis(const smelt_node *n, int k, const smelt_tensor *t)
{
    if (k != 1 || !default_domain(n->domain)) return -1;
    if (strcmp(n->op, "MatMul") == 0) return t->ndim == 2 ? 1 : -1;
    if (strcmp(n->op, "Gemm") == 0) return t->ndim == 2 ? (attr_int(n, "transB", 0) ? 0 : 1) : -1;
    if (strcmp(n->op, "Conv") == 0) return t->ndim >= 3 ? 0 : -1;
    return -1;
}

/* The axis tensor ti is quantized along, or -1 when it stays as it is: a float initializer, not a
 * graph input or output, every reader one of the weights above with one axis. */
static int tensor_axis(const smelt_model *m, int ti)
{
    const smelt_tensor *t = &m->tensors[ti];
    if (!smelt_dtype_traits(t->dtype)->is_float || t->dtype == SMELT_DT_F64 || smelt_shape_numel(t->ndim, t->shape) <= 0) return -1;
    for (int i = 0; i < m->n_inputs; i++)
        if (strcmp(m->inputs[i].name, t->name) == 0) return -1; /* a default the caller may replace */
    for (int i = 0; i < m->n_outputs; i++)
        if (strcmp(m->outputs[i].name, t->name) == 0) return -1;
    int axis = -1;
    for (int i = 0; i < m->n_nodes; i++) {
        const smelt_node *n = &m->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            if (strcmp(n->inputs[k], t->name) != 0) continue;
            int a = weight_axis(n, k, t);
            if (a < 0 || (axis >= 0 && a != axis)) return -1;
            axis = a;
        }
    }
    return axis;
}

static smelt_err *check_recipe(const smelt_model *m, const quant_recipe *r)
{
    if (m->kind != SMELT_KIND_GRAPH) return SMELT_ERR(SMELT_E_INVALID, "quantize_graph: the model is not an ONNX graph");
    if (strcmp(r->method, "rtn") != 0)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "ONNX graphs: method '%s' is not supported (supported: rtn)", r->method);
    if (r->scheme.bits != 8 || r->scheme.asym)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "ONNX graphs: scheme %s is not supported (supported: w8, int8 symmetric per output channel)",
                         r->scheme.bits == 4 ? "w4" : r->scheme.asym ? "asymmetric w8" : "other than w8");
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].quant.kind != SMELT_QUANT_NONE)
            return SMELT_ERR(SMELT_E_INVALID, "the model is already quantized (tensor '%s' is %d-bit); quantize the float model", m->tensors[i].name,
                             m->tensors[i].quant.bits);
    return NULL;
}

/* Quantizes tensor ti along axis, adding '<name>.scale'. */
static smelt_err *quantize_one(smelt_model *m, int ti, int axis, quant_report *rep)
{
    smelt_tensor *t = &m->tensors[ti];
    int64_t n = smelt_shape_numel(t->ndim, t->shape), ch = t->shape[axis], per = n / ch; /* per: elements a channel */
    int64_t outer = 1, inner = 1; /* dims before and after the axis */
    for (int d = 0; d < axis; d++) outer *= t->shape[d];
    for (int d = axis + 1; d < t->ndim; d++) inner *= t->shape[d];
    if (ch > INT32_MAX || per > INT32_MAX) return SMELT_ERR(SMELT_E_UNSUPPORTED, "weight '%s': too large to quantize", t->name);
    float *w = malloc((size_t)n * sizeof *w), *rows = malloc((size_t)n * sizeof *rows);
    int8_t *qrows = malloc((size_t)n);
    int8_t *q = smelt_model_alloc(m, (size_t)n);
    float *scale = smelt_model_alloc(m, (size_t)ch * sizeof *scale);
    smelt_err *err = NULL;
    if (!w || !rows || !qrows || !q || !scale) err = SMELT_ERR(SMELT_E_NOMEM, "weight '%s': out of memory", t->name);
    if (!err && !smelt_convert_float(w, SMELT_DT_F32, t->data, t->dtype, (size_t)n))
        err = SMELT_ERR(SMELT_E_UNSUPPORTED, "weight '%s': cannot read %s as f32", t->name, smelt_dtype_name(t->dtype));
    if (err) {
        free(w), free(rows), free(qrows);
        return err;
    }
    /* gather each channel into a row (the layout rtn_quantize takes), quantize, scatter back: the
     * tensor keeps its ONNX layout so the graph reads it as before */
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++)
            for (int64_t i = 0; i < inner; i++) rows[c * per + o * inner + i] = w[(o * ch + c) * inner + i];
    quant_scheme s = {8, (int)per, false};
    rtn_quantize(rows, (int)ch, (int)per, &s, qrows, scale, NULL);
    double num = 0, den = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t src = c * per + o * inner + i, dst = (o * ch + c) * inner + i;
                q[dst] = qrows[src];
                double d = (double)scale[c] * qrows[src] - w[dst];
                num += d * d;
                den += (double)w[dst] * w[dst];
            }
    free(w), free(rows), free(qrows);

    char sname[512];
    if ((size_t)snprintf(sname, sizeof sname, "%s.scale", t->name) >= sizeof sname)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "weight '%s': name too long", t->name);
    if (smelt_model_find(m, sname)) return SMELT_ERR(SMELT_E_INVALID, "weight '%s': the graph already has a tensor '%s'", t->name, sname);
    char *name = strdup(t->name);
    size_t before = t->nbytes;
    smelt_dtype orig = t->dtype;
    int64_t sshape[1] = {ch};
    err = name ? smelt_model_add_tensor(m, sname, SMELT_DT_F32, 1, sshape, scale, NULL) : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (err) {
        free(name);
        return err;
    }
    t = &m->tensors[ti]; /* the table may have moved */
    t->dtype = SMELT_DT_I8;
    t->data = q;
    t->nbytes = (size_t)n;
    t->quant = (smelt_quant){SMELT_QUANT_PER_CHANNEL, 8, axis, 0, true, strdup(sname), NULL, orig};
    if (!t->quant.scale) {
        free(name);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    *rep = (quant_report){name, 8, (int)per, den > 0 ? sqrt(num / den) : 0, before, (size_t)n + (size_t)ch * sizeof(float), -1};
    return NULL;
}

smelt_err *quantize_graph(smelt_model *m, const quant_recipe *r, quant_progress_fn progress, void *ctx, quant_report **rep_out, int *n_rep)
{
    *rep_out = NULL;
    *n_rep = 0;
    SMELT_TRY(check_recipe(m, r));
    int n0 = m->n_tensors, total = 0;
    int *axis = malloc(((size_t)n0 + 1) * sizeof *axis);
    if (!axis) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; i < n0; i++) total += (axis[i] = tensor_axis(m, i)) >= 0;
    if (total == 0) {
        free(axis);
        return SMELT_ERR(SMELT_E_INVALID, "no float MatMul, Gemm or Conv weight initializer to quantize in the graph");
    }
    quant_report *rep = calloc((size_t)total, sizeof *rep);
    smelt_err *err = rep ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < n0 && !err; i++) {
        if (axis[i] < 0) continue;
        err = quantize_one(m, i, axis[i], &rep[k]);
        if (!err) k++;
        if (progress) progress(ctx, k, total);
    }
    free(axis);
    json_t *q = json_pack("{s:s, s:i, s:i, s:b}", "method", r->method, "bits", 8, "group", 0, "asym", 0);
    if (!err && (!q || json_object_set_new(m->meta, "quantization", q) != 0)) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    else if (err) json_decref(q);
    if (err) {
        quant_report_free(rep, k);
        return err;
    }
    *rep_out = rep;
    *n_rep = k;
    return NULL;
}

smelt_err *quantize_graph_adopt_tokenizer(smelt_model *m, const char *onnx_path)
{
    if (m->tokenizer_json) return NULL;
    const char *slash = strrchr(onnx_path, '/');
    size_t dl = slash ? (size_t)(slash - onnx_path) : 1;
    char *dir = malloc(dl + 1);
    if (!dir) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    memcpy(dir, slash ? onnx_path : ".", dl);
    dir[dl] = 0;
    char *path = smelt_path_join(dir, "tokenizer.json");
    free(dir);
    if (!path) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    smelt_err *err = NULL;
    if (smelt_file_exists(path)) {
        size_t len;
        err = smelt_read_file(path, (size_t)1 << 30, &m->tokenizer_json, &len);
    }
    free(path);
    return err;
}
