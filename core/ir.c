/* The model IR: tensors, nodes, graph inputs/outputs, metadata and the storage behind them. */
#define _POSIX_C_SOURCE 200809L
#include "core/ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One owned block of tensor memory: an aligned allocation or a file mapping. */
struct smelt_storage {
    struct smelt_storage *next;
    void *mem;     /* aligned allocation, or NULL */
    smelt_map map; /* file mapping, when mem is NULL */
};

smelt_model *smelt_model_new(smelt_model_kind kind, const char *arch)
{
    smelt_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->kind = kind;
    m->arch = strdup(arch ? arch : "");
    m->meta = json_object();
    if (!m->arch || !m->meta) {
        smelt_model_free(m);
        return NULL;
    }
    return m;
}

static void quant_clear(smelt_quant *q)
{
    free(q->scale);
    free(q->zero);
    memset(q, 0, sizeof *q);
}

static void attr_clear(smelt_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->floats);
    free(a->ints);
    for (size_t i = 0; a->strings && i < a->n; i++) free(a->strings[i]);
    free(a->strings);
    if (a->tensor) {
        free(a->tensor->name);
        quant_clear(&a->tensor->quant);
        free(a->tensor);
    }
}

static void value_clear(smelt_value *v)
{
    free(v->name);
    for (int i = 0; i < SMELT_MAX_DIMS; i++) free(v->dim_names[i]);
}

void smelt_model_free(smelt_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_tensors; i++) {
        free(m->tensors[i].name);
        quant_clear(&m->tensors[i].quant);
    }
    free(m->tensors);
    smelt_strmap_free(&m->tensor_index);
    for (int i = 0; i < m->n_nodes; i++) {
        smelt_node *n = &m->nodes[i];
        free(n->op);
        free(n->domain);
        free(n->name);
        for (int k = 0; k < n->n_inputs; k++) free(n->inputs[k]);
        for (int k = 0; k < n->n_outputs; k++) free(n->outputs[k]);
        for (int k = 0; k < n->n_attrs; k++) attr_clear(&n->attrs[k]);
        free(n->inputs);
        free(n->outputs);
        free(n->attrs);
    }
    free(m->nodes);
    for (int i = 0; i < m->n_inputs; i++) value_clear(&m->inputs[i]);
    for (int i = 0; i < m->n_outputs; i++) value_clear(&m->outputs[i]);
    free(m->inputs);
    free(m->outputs);
    for (int i = 0; i < m->n_opsets; i++) free(m->opsets[i].domain);
    free(m->opsets);
    free(m->arch);
    free(m->hf_config_json);
    free(m->tokenizer_json);
    json_decref(m->meta);
    smelt_storage *s = m->storage;
    while (s) {
        smelt_storage *next = s->next;
        if (s->mem) free(s->mem);
        else smelt_unmap(&s->map);
        free(s);
        s = next;
    }
    free(m);
}

void *smelt_model_alloc(smelt_model *m, size_t nbytes)
{
    smelt_storage *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t rounded = (nbytes + 63) / 64 * 64;
    if (rounded < nbytes) {
        free(s);
        return NULL;
    }
    s->mem = aligned_alloc(64, rounded ? rounded : 64);
    if (!s->mem) {
        free(s);
        return NULL;
    }
    memset(s->mem, 0, rounded ? rounded : 64);
    s->next = m->storage;
    m->storage = s;
    return s->mem;
}

smelt_err *smelt_model_adopt_map(smelt_model *m, smelt_map *map)
{
    smelt_storage *s = calloc(1, sizeof *s);
    if (!s) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    s->map = *map;
    memset(map, 0, sizeof *map);
    s->next = m->storage;
    m->storage = s;
    return NULL;
}

int64_t smelt_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

const char *smelt_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

smelt_err *smelt_model_add_tensor(smelt_model *m, const char *name, smelt_dtype dt, int ndim,
                                  const int64_t *shape, void *data, smelt_tensor **out)
{
    if (ndim < 0 || ndim > SMELT_MAX_DIMS)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "tensor '%s': %d dimensions, at most %d supported", name, ndim, SMELT_MAX_DIMS);
    if (smelt_strmap_get(&m->tensor_index, name, strlen(name), NULL))
        return SMELT_ERR(SMELT_E_CORRUPT, "tensor '%s' appears twice", name);
    int64_t numel = smelt_shape_numel(ndim, shape);
    if (numel < 0) return SMELT_ERR(SMELT_E_CORRUPT, "tensor '%s': shape overflows or has a negative dimension", name);
    if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? m->cap_tensors * 2 : 64;
        smelt_tensor *t = realloc(m->tensors, (size_t)cap * sizeof *t);
        if (!t) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        m->tensors = t;
        m->cap_tensors = cap;
    }
    smelt_tensor *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name || !smelt_strmap_put(&m->tensor_index, name, strlen(name), m->n_tensors)) {
        free(t->name);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = smelt_dtype_nbytes(dt, (uint64_t)numel);
    m->n_tensors++;
    if (out) *out = t;
    return NULL;
}

smelt_tensor *smelt_model_find(const smelt_model *m, const char *name)
{
    int64_t i;
    if (!smelt_strmap_get(&m->tensor_index, name, strlen(name), &i)) return NULL;
    return &m->tensors[i];
}

static char **copy_strs(int n, const char *const *src)
{
    char **d = calloc(n > 0 ? (size_t)n : 1, sizeof *d);
    if (!d) return NULL;
    for (int i = 0; i < n; i++) {
        d[i] = strdup(src[i] ? src[i] : "");
        if (!d[i]) {
            for (int k = 0; k < i; k++) free(d[k]);
            free(d);
            return NULL;
        }
    }
    return d;
}

smelt_node *smelt_model_add_node(smelt_model *m, const char *op, const char *domain, const char *name,
                                 int n_in, const char *const *inputs, int n_out, const char *const *outputs)
{
    if (m->n_nodes == m->cap_nodes) {
        int cap = m->cap_nodes ? m->cap_nodes * 2 : 64;
        smelt_node *p = realloc(m->nodes, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        m->nodes = p;
        m->cap_nodes = cap;
    }
    smelt_node *n = &m->nodes[m->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = strdup(op);
    n->domain = strdup(domain ? domain : "");
    n->name = strdup(name ? name : "");
    n->inputs = copy_strs(n_in, inputs);
    n->outputs = copy_strs(n_out, outputs);
    if (!n->op || !n->domain || !n->name || !n->inputs || !n->outputs) {
        free(n->op);
        free(n->domain);
        free(n->name);
        for (int k = 0; n->inputs && k < n_in; k++) free(n->inputs[k]);
        for (int k = 0; n->outputs && k < n_out; k++) free(n->outputs[k]);
        free(n->inputs);
        free(n->outputs);
        return NULL;
    }
    n->n_inputs = n_in;
    n->n_outputs = n_out;
    m->n_nodes++;
    return n;
}

smelt_attr *smelt_node_add_attr(smelt_node *n, const char *name, smelt_attr_type type)
{
    smelt_attr *a = realloc(n->attrs, (size_t)(n->n_attrs + 1) * sizeof *a);
    if (!a) return NULL;
    n->attrs = a;
    smelt_attr *at = &a[n->n_attrs];
    memset(at, 0, sizeof *at);
    at->name = strdup(name);
    if (!at->name) return NULL;
    at->type = type;
    n->n_attrs++;
    return at;
}

bool smelt_node_set_int(smelt_node *n, const char *name, int64_t v)
{
    smelt_attr *a = smelt_node_add_attr(n, name, SMELT_ATTR_INT);
    if (a) a->i = v;
    return a != NULL;
}

bool smelt_node_set_float(smelt_node *n, const char *name, double v)
{
    smelt_attr *a = smelt_node_add_attr(n, name, SMELT_ATTR_FLOAT);
    if (a) a->f = v;
    return a != NULL;
}

bool smelt_node_set_string(smelt_node *n, const char *name, const char *s)
{
    smelt_attr *a = smelt_node_add_attr(n, name, SMELT_ATTR_STRING);
    if (!a) return false;
    a->s = strdup(s);
    a->s_len = a->s ? strlen(s) : 0;
    return a->s != NULL;
}

const smelt_attr *smelt_node_attr(const smelt_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

/* Scale and zero-point tensors are bookkeeping of a quantized weight, not parameters. */
static bool is_quant_aux(const smelt_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const smelt_quant *q = &m->tensors[i].quant;
        if (q->kind == SMELT_QUANT_NONE) continue;
        if ((q->scale && strcmp(q->scale, name) == 0) || (q->zero && strcmp(q->zero, name) == 0)) return true;
    }
    return false;
}

int64_t smelt_model_param_count(const smelt_model *m)
{
    int64_t total = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const smelt_tensor *t = &m->tensors[i];
        /* Integer tensors that are not quantized weights are indices and shapes, not parameters. */
        if (t->quant.kind == SMELT_QUANT_NONE && !smelt_dtype_traits(t->dtype)->is_float) continue;
        if (is_quant_aux(m, t->name)) continue;
        total += smelt_shape_numel(t->ndim, t->shape);
    }
    return total;
}

smelt_err *smelt_model_validate(const smelt_model *m)
{
    smelt_strmap known = {0};
    smelt_err *err = NULL;
    for (int i = 0; i < m->n_tensors && !err; i++) {
        const smelt_tensor *t = &m->tensors[i];
        int64_t numel = smelt_shape_numel(t->ndim, t->shape);
        if (numel < 0 || smelt_dtype_nbytes(t->dtype, (uint64_t)numel) != t->nbytes)
            err = SMELT_ERR(SMELT_E_CORRUPT, "tensor '%s': %zu bytes do not match dtype %s and its shape", t->name, t->nbytes, smelt_dtype_name(t->dtype));
        else if (!t->data && t->nbytes)
            err = SMELT_ERR(SMELT_E_CORRUPT, "tensor '%s': no data", t->name);
        else if (t->quant.kind != SMELT_QUANT_NONE) {
            if (!t->quant.scale || !smelt_model_find(m, t->quant.scale))
                err = SMELT_ERR(SMELT_E_CORRUPT, "tensor '%s': scale tensor '%s' missing", t->name, t->quant.scale ? t->quant.scale : "");
            else if (!t->quant.symmetric && (!t->quant.zero || !smelt_model_find(m, t->quant.zero)))
                err = SMELT_ERR(SMELT_E_CORRUPT, "tensor '%s': zero-point tensor '%s' missing", t->name, t->quant.zero ? t->quant.zero : "");
        }
        if (!err && !smelt_strmap_put(&known, t->name, strlen(t->name), 1)) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < m->n_inputs && !err; i++)
        if (!smelt_strmap_put(&known, m->inputs[i].name, strlen(m->inputs[i].name), 1)) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; i < m->n_nodes && !err; i++) {
        const smelt_node *n = &m->nodes[i];
        for (int k = 0; k < n->n_inputs && !err; k++) {
            const char *in = n->inputs[k];
            if (in[0] && !smelt_strmap_get(&known, in, strlen(in), NULL))
                err = SMELT_ERR(SMELT_E_CORRUPT, "node '%s' (%s): input '%s' is not a tensor, a graph input or an earlier output", n->name, n->op, in);
        }
        for (int k = 0; k < n->n_outputs && !err; k++)
            if (n->outputs[k][0] && !smelt_strmap_put(&known, n->outputs[k], strlen(n->outputs[k]), 1)) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < m->n_outputs && !err; i++)
        if (!smelt_strmap_get(&known, m->outputs[i].name, strlen(m->outputs[i].name), NULL))
            err = SMELT_ERR(SMELT_E_CORRUPT, "graph output '%s' is produced by no node", m->outputs[i].name);
    smelt_strmap_free(&known);
    return err;
}

smelt_err *smelt_model_convert_dtype(smelt_model *m, smelt_dtype dt)
{
    if (!(dt == SMELT_DT_F32 || dt == SMELT_DT_F16 || dt == SMELT_DT_BF16))
        return SMELT_ERR(SMELT_E_INVALID, "cannot convert weights to %s: expected f32, f16 or bf16", smelt_dtype_name(dt));
    for (int i = 0; i < m->n_tensors; i++) {
        smelt_tensor *t = &m->tensors[i];
        if (t->quant.kind != SMELT_QUANT_NONE || !smelt_dtype_traits(t->dtype)->is_float || t->dtype == dt || t->dtype == SMELT_DT_F64) continue;
        if (is_quant_aux(m, t->name)) continue;
        int64_t numel = smelt_shape_numel(t->ndim, t->shape);
        size_t nb = smelt_dtype_nbytes(dt, (uint64_t)numel);
        void *p = smelt_model_alloc(m, nb);
        if (!p) return SMELT_ERR(SMELT_E_NOMEM, "tensor '%s': out of memory converting to %s", t->name, smelt_dtype_name(dt));
        smelt_convert_float(p, dt, t->data, t->dtype, (size_t)numel);
        t->data = p;
        t->dtype = dt;
        t->nbytes = nb;
    }
    return NULL;
}
