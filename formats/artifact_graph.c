/* graph.json: the model's nodes, graph inputs/outputs and opset imports.
 *
 *   {"nodes": [{"op", "domain", "name", "inputs": [...], "outputs": [...],
 *               "attrs": [{"name", "type", <value>}]}],
 *    "inputs":  [{"name", "dtype", "dims", "dim_names"}], "outputs": [same],
 *    "opsets":  [{"domain", "version"}]}
 *
 * Attribute values: "f" (float; "nan", "inf" and "-inf" as strings, which JSON numbers cannot
 * hold), "i", "s" (or "b64" for bytes that are not UTF-8), "floats", "ints", "strings" (elements
 * are strings or {"b64": ...}), "constant" (TENSOR: an index into the manifest's "constants") and
 * "n" (GRAPH: how many subgraphs, kept opaque). Doubles are printed with 17 significant digits,
 * so every value survives the round trip exactly.
 */
#define _POSIX_C_SOURCE 200809L
#include "formats/artifact_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const attr_type_names[] = {
    [SMELT_ATTR_FLOAT] = "float", [SMELT_ATTR_INT] = "int",       [SMELT_ATTR_STRING] = "string", [SMELT_ATTR_FLOATS] = "floats",
    [SMELT_ATTR_INTS] = "ints",   [SMELT_ATTR_STRINGS] = "strings", [SMELT_ATTR_TENSOR] = "tensor", [SMELT_ATTR_GRAPH] = "graph",
};
#define N_ATTR_TYPES (int)(sizeof attr_type_names / sizeof attr_type_names[0])

/* ---- building ---- */

static json_t *float_build(double f)
{
    if (isnan(f)) return json_string("nan");
    if (isinf(f)) return json_string(f > 0 ? "inf" : "-inf");
    return json_real(f);
}

/* A byte string as a JSON string when it is UTF-8, else as {"b64": ...}. */
static json_t *bytes_build(art_jb *b, const char *s, size_t len)
{
    json_t *v = json_stringn(s ? s : "", len);
    if (v) return v;
    char *enc = art_base64_encode(s, len);
    v = enc ? json_pack("{s:s}", "b64", enc) : NULL;
    free(enc);
    if (!v && !b->err) b->err = SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", b->path);
    return v;
}

static json_t *strs_build(art_jb *b, char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) art_jb_append(b, a, art_jb_str(b, "a node input or output name", v[i]));
    return a;
}

static json_t *attr_build(art_jb *b, const smelt_attr *a, int *n_const)
{
    json_t *o = json_object();
    art_jb_set(b, o, "name", art_jb_str(b, "an attribute name", a->name));
    art_jb_set(b, o, "type", json_string(attr_type_names[a->type]));
    json_t *arr;
    switch (a->type) {
    case SMELT_ATTR_FLOAT: art_jb_set(b, o, "f", float_build(a->f)); break;
    case SMELT_ATTR_INT: art_jb_set(b, o, "i", art_jb_int(b, a->i)); break;
    case SMELT_ATTR_STRING: {
        json_t *v = bytes_build(b, a->s, a->s_len);
        if (json_is_object(v)) {
            art_jb_set(b, o, "b64", json_incref(json_object_get(v, "b64")));
            json_decref(v);
        } else {
            art_jb_set(b, o, "s", v);
        }
        break;
    }
    case SMELT_ATTR_FLOATS:
        arr = json_array();
        for (size_t i = 0; i < a->n; i++) art_jb_append(b, arr, float_build(a->floats[i]));
        art_jb_set(b, o, "floats", arr);
        break;
    case SMELT_ATTR_INTS:
        arr = json_array();
        for (size_t i = 0; i < a->n; i++) art_jb_append(b, arr, art_jb_int(b, a->ints[i]));
        art_jb_set(b, o, "ints", arr);
        break;
    case SMELT_ATTR_STRINGS:
        arr = json_array();
        for (size_t i = 0; i < a->n; i++) art_jb_append(b, arr, bytes_build(b, a->strings[i], strlen(a->strings[i])));
        art_jb_set(b, o, "strings", arr);
        break;
    case SMELT_ATTR_TENSOR: art_jb_set(b, o, "constant", art_jb_int(b, (*n_const)++)); break;
    case SMELT_ATTR_GRAPH: art_jb_set(b, o, "n", art_jb_int(b, (int64_t)a->n)); break;
    }
    return o;
}

static json_t *value_build(art_jb *b, const smelt_value *v)
{
    json_t *o = json_object(), *dims = json_array(), *names = json_array();
    art_jb_set(b, o, "name", art_jb_str(b, "a graph input or output name", v->name));
    art_jb_set(b, o, "dtype", v->dtype ? json_string(smelt_dtype_name(v->dtype)) : json_null());
    for (int d = 0; d < v->ndim; d++) {
        art_jb_append(b, dims, art_jb_int(b, v->dims[d]));
        art_jb_append(b, names, v->dim_names[d] ? art_jb_str(b, "a dimension name", v->dim_names[d]) : json_null());
    }
    art_jb_set(b, o, "dims", dims);
    art_jb_set(b, o, "dim_names", names);
    return o;
}

smelt_err *art_graph_build(const char *path, const smelt_model *m, json_t **out)
{
    art_jb b = {path, NULL};
    json_t *g = json_object(), *nodes = json_array(), *ins = json_array(), *outs = json_array(), *opsets = json_array();
    int n_const = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const smelt_node *n = &m->nodes[i];
        json_t *o = json_object(), *attrs = json_array();
        art_jb_set(&b, o, "op", art_jb_str(&b, "an op name", n->op));
        art_jb_set(&b, o, "domain", art_jb_str(&b, "an op domain", n->domain));
        art_jb_set(&b, o, "name", art_jb_str(&b, "a node name", n->name));
        art_jb_set(&b, o, "inputs", strs_build(&b, n->inputs, (size_t)n->n_inputs));
        art_jb_set(&b, o, "outputs", strs_build(&b, n->outputs, (size_t)n->n_outputs));
        for (int k = 0; k < n->n_attrs; k++) art_jb_append(&b, attrs, attr_build(&b, &n->attrs[k], &n_const));
        art_jb_set(&b, o, "attrs", attrs);
        art_jb_append(&b, nodes, o);
    }
    for (int i = 0; i < m->n_inputs; i++) art_jb_append(&b, ins, value_build(&b, &m->inputs[i]));
    for (int i = 0; i < m->n_outputs; i++) art_jb_append(&b, outs, value_build(&b, &m->outputs[i]));
    for (int i = 0; i < m->n_opsets; i++)
        art_jb_append(&b, opsets, json_pack("{s:s, s:I}", "domain", m->opsets[i].domain, "version", (json_int_t)m->opsets[i].version));
    art_jb_set(&b, g, "nodes", nodes);
    art_jb_set(&b, g, "inputs", ins);
    art_jb_set(&b, g, "outputs", outs);
    art_jb_set(&b, g, "opsets", opsets);
    if (b.err) {
        json_decref(g);
        return b.err;
    }
    *out = g;
    return NULL;
}

/* ---- parsing ---- */

static smelt_err *nomem(const char *path) { return SMELT_ERR(SMELT_E_NOMEM, "%s: out of memory", path); }

static smelt_err *float_parse(const char *loc, const json_t *v, double *out)
{
    const char *s = json_string_value(v);
    if (json_is_number(v)) *out = json_number_value(v);
    else if (s && strcmp(s, "nan") == 0) *out = NAN;
    else if (s && strcmp(s, "inf") == 0) *out = INFINITY;
    else if (s && strcmp(s, "-inf") == 0) *out = -INFINITY;
    else return SMELT_ERR(SMELT_E_CORRUPT, "%s: expected a number, 'nan', 'inf' or '-inf'", loc);
    return NULL;
}

/* A string or {"b64": ...} into a malloc'd NUL-terminated buffer. */
static smelt_err *bytes_parse(const char *loc, const json_t *v, char **out, size_t *len)
{
    if (json_is_string(v)) {
        *len = json_string_length(v);
        *out = malloc(*len + 1);
        if (!*out) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        memcpy(*out, json_string_value(v), *len + 1);
        return NULL;
    }
    const char *enc = json_string_value(json_object_get(v, "b64"));
    bool oom;
    if (!enc) return SMELT_ERR(SMELT_E_CORRUPT, "%s: expected a string or {\"b64\": ...}", loc);
    if (!art_base64_decode(enc, strlen(enc), out, len, &oom))
        return oom ? SMELT_ERR(SMELT_E_NOMEM, "out of memory") : SMELT_ERR(SMELT_E_CORRUPT, "%s: malformed base64", loc);
    return NULL;
}

static smelt_err *attr_parse(const char *loc, const json_t *o, smelt_node *n, art_consts *consts, bool *used)
{
    const char *name, *type;
    SMELT_TRY(art_get_str(loc, o, "name", &name));
    SMELT_TRY(art_get_str(loc, o, "type", &type));
    int ty = -1;
    for (int i = 0; i < N_ATTR_TYPES; i++)
        if (strcmp(type, attr_type_names[i]) == 0) ty = i;
    if (ty < 0) return SMELT_ERR(SMELT_E_CORRUPT, "%s: attribute '%s' has unknown type '%s'", loc, name, type);
    smelt_attr *a = smelt_node_add_attr(n, name, (smelt_attr_type)ty);
    if (!a) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    json_t *v, *arr;
    switch ((smelt_attr_type)ty) {
    case SMELT_ATTR_FLOAT:
        SMELT_TRY(art_get(loc, o, "f", &v));
        return float_parse(loc, v, &a->f);
    case SMELT_ATTR_INT:
        return art_get_int(loc, o, "i", INT64_MIN, INT64_MAX, &a->i);
    case SMELT_ATTR_STRING:
        v = json_object_get(o, "s");
        if (!v) v = json_object_get(o, "b64") ? (json_t *)o : NULL;
        if (!v) return SMELT_ERR(SMELT_E_CORRUPT, "%s: attribute '%s' has neither 's' nor 'b64'", loc, name);
        return bytes_parse(loc, v, &a->s, &a->s_len);
    case SMELT_ATTR_FLOATS:
        SMELT_TRY(art_get_array(loc, o, "floats", &arr));
        a->floats = malloc((json_array_size(arr) ? json_array_size(arr) : 1) * sizeof *a->floats);
        if (!a->floats) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        for (; a->n < json_array_size(arr); a->n++) {
            double d;
            SMELT_TRY(float_parse(loc, json_array_get(arr, a->n), &d));
            a->floats[a->n] = (float)d;
        }
        return NULL;
    case SMELT_ATTR_INTS:
        SMELT_TRY(art_get_array(loc, o, "ints", &arr));
        a->ints = malloc((json_array_size(arr) ? json_array_size(arr) : 1) * sizeof *a->ints);
        if (!a->ints) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        for (; a->n < json_array_size(arr); a->n++) {
            json_t *x = json_array_get(arr, a->n);
            if (!json_is_integer(x)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: attribute '%s': ints[%zu] is not an integer", loc, name, a->n);
            a->ints[a->n] = json_integer_value(x);
        }
        return NULL;
    case SMELT_ATTR_STRINGS:
        SMELT_TRY(art_get_array(loc, o, "strings", &arr));
        a->strings = calloc(json_array_size(arr) ? json_array_size(arr) : 1, sizeof *a->strings);
        if (!a->strings) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        for (; a->n < json_array_size(arr); a->n++) {
            size_t len;
            SMELT_TRY(bytes_parse(loc, json_array_get(arr, a->n), &a->strings[a->n], &len));
        }
        return NULL;
    case SMELT_ATTR_TENSOR: {
        int64_t idx;
        SMELT_TRY(art_get_int(loc, o, "constant", 0, INT32_MAX, &idx));
        if (idx >= consts->n) return SMELT_ERR(SMELT_E_CORRUPT, "%s: attribute '%s': constant %lld is not in the manifest", loc, name, (long long)idx);
        if (used[idx]) return SMELT_ERR(SMELT_E_CORRUPT, "%s: attribute '%s': constant %lld is used twice", loc, name, (long long)idx);
        a->tensor = malloc(sizeof *a->tensor);
        if (!a->tensor) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        /* the attribute takes the constant's name and quant strings */
        *a->tensor = consts->t[idx];
        memset(&consts->t[idx], 0, sizeof consts->t[idx]);
        used[idx] = true;
        return NULL;
    }
    case SMELT_ATTR_GRAPH: {
        int64_t k;
        SMELT_TRY(art_get_int(loc, o, "n", 0, INT32_MAX, &k));
        a->n = (size_t)k;
        return NULL;
    }
    }
    return NULL;
}

/* A JSON array of strings as a malloc'd array of borrowed pointers. */
static smelt_err *names_parse(const char *loc, const json_t *o, const char *key, const char ***out, int *n)
{
    json_t *arr;
    SMELT_TRY(art_get_array(loc, o, key, &arr));
    size_t len = json_array_size(arr);
    if (len > INT32_MAX) return SMELT_ERR(SMELT_E_CORRUPT, "%s: too many %s", loc, key);
    *out = calloc(len ? len : 1, sizeof **out);
    if (!*out) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        (*out)[i] = json_string_value(json_array_get(arr, i));
        if (!(*out)[i]) return SMELT_ERR(SMELT_E_CORRUPT, "%s: %s[%zu] is not a string", loc, key, i);
    }
    *n = (int)len;
    return NULL;
}

static smelt_err *node_parse(const char *loc, const json_t *o, smelt_model *m, art_consts *consts, bool *used)
{
    if (!json_is_object(o)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: not an object", loc);
    const char *op, *domain, *name;
    json_t *attrs;
    SMELT_TRY(art_get_str(loc, o, "op", &op));
    SMELT_TRY(art_get_str(loc, o, "domain", &domain));
    SMELT_TRY(art_get_str(loc, o, "name", &name));
    SMELT_TRY(art_get_array(loc, o, "attrs", &attrs));
    const char **ins = NULL, **outs = NULL;
    int n_in = 0, n_out = 0;
    smelt_err *err = names_parse(loc, o, "inputs", &ins, &n_in);
    if (!err) err = names_parse(loc, o, "outputs", &outs, &n_out);
    smelt_node *n = NULL;
    if (!err && !(n = smelt_model_add_node(m, op, domain, name, n_in, ins, n_out, outs))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    free(ins);
    free(outs);
    for (size_t k = 0; !err && k < json_array_size(attrs); k++) {
        const json_t *a = json_array_get(attrs, k);
        err = json_is_object(a) ? attr_parse(loc, a, n, consts, used) : SMELT_ERR(SMELT_E_CORRUPT, "%s: attrs[%zu] is not an object", loc, k);
    }
    return err;
}

static smelt_err *values_parse(const char *path, const json_t *g, const char *key, smelt_value **out, int *n_out)
{
    char loc[256];
    snprintf(loc, sizeof loc, "%s: graph.json", path);
    json_t *arr;
    SMELT_TRY(art_get_array(loc, g, key, &arr));
    size_t n = json_array_size(arr);
    if (n > INT32_MAX) return SMELT_ERR(SMELT_E_CORRUPT, "%s: too many %s", loc, key);
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out) return nomem(path);
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        snprintf(loc, sizeof loc, "%s: graph.json: %s[%zu]", path, key, i);
        const char *name;
        json_t *dims, *names;
        smelt_value *v = &(*out)[i];
        if (!json_is_object(o)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: not an object", loc);
        SMELT_TRY(art_get_str(loc, o, "name", &name));
        SMELT_TRY(art_get_dtype(loc, o, "dtype", true, &v->dtype));
        SMELT_TRY(art_get_array(loc, o, "dims", &dims));
        SMELT_TRY(art_get_array(loc, o, "dim_names", &names));
        if (json_array_size(dims) > SMELT_MAX_DIMS || json_array_size(names) != json_array_size(dims))
            return SMELT_ERR(SMELT_E_CORRUPT, "%s: %zu dims and %zu dim_names, expected equal counts of at most %d", loc, json_array_size(dims),
                             json_array_size(names), SMELT_MAX_DIMS);
        SMELT_TRY(art_strdup(name, &v->name));
        (*n_out)++; /* counted as soon as it owns something, so the model frees it */
        v->ndim = (int)json_array_size(dims);
        for (int d = 0; d < v->ndim; d++) {
            json_t *x = json_array_get(dims, (size_t)d), *dn = json_array_get(names, (size_t)d);
            if (!json_is_integer(x)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: dims[%d] is not an integer", loc, d);
            if (!json_is_null(dn) && !json_is_string(dn)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: dim_names[%d] is not a string or null", loc, d);
            v->dims[d] = json_integer_value(x);
            SMELT_TRY(art_strdup(json_string_value(dn), &v->dim_names[d]));
        }
    }
    return NULL;
}

smelt_err *art_graph_parse(const char *path, const json_t *g, smelt_model *m, art_consts *consts)
{
    char loc[512];
    snprintf(loc, sizeof loc, "%s: graph.json", path);
    json_t *nodes, *opsets;
    SMELT_TRY(art_get_array(loc, g, "nodes", &nodes));
    SMELT_TRY(art_get_array(loc, g, "opsets", &opsets));
    bool *used = calloc(consts->n ? (size_t)consts->n : 1, sizeof *used);
    if (!used) return nomem(path);
    smelt_err *err = NULL;
    for (size_t i = 0; !err && i < json_array_size(nodes); i++) {
        const json_t *o = json_array_get(nodes, i);
        const char *nm = json_string_value(json_object_get(o, "name"));
        snprintf(loc, sizeof loc, "%s: graph.json: nodes[%zu]%s%s%s", path, i, nm && *nm ? " '" : "", nm ? nm : "", nm && *nm ? "'" : "");
        err = node_parse(loc, o, m, consts, used);
    }
    free(used);
    if (!err) err = values_parse(path, g, "inputs", &m->inputs, &m->n_inputs);
    if (!err) err = values_parse(path, g, "outputs", &m->outputs, &m->n_outputs);
    if (err) return err;
    snprintf(loc, sizeof loc, "%s: graph.json: opsets", path);
    m->opsets = calloc(json_array_size(opsets) ? json_array_size(opsets) : 1, sizeof *m->opsets);
    if (!m->opsets) return nomem(path);
    for (size_t i = 0; i < json_array_size(opsets); i++) {
        const json_t *o = json_array_get(opsets, i);
        const char *domain;
        int64_t version;
        SMELT_TRY(art_get_str(loc, o, "domain", &domain));
        SMELT_TRY(art_get_int(loc, o, "version", 0, INT64_MAX, &version));
        SMELT_TRY(art_strdup(domain, &m->opsets[i].domain));
        m->opsets[i].version = version;
        m->n_opsets++;
    }
    return NULL;
}
