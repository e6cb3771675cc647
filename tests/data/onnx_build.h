/* Building small ONNX messages in C with protobuf-c, for tests and for the corrupt fixtures.
 *
 * Used by tests/unit/test_onnx.c (valid models built at test time: external data, typed fields,
 * every attribute type) and tests/data/make_onnx_bad.c (the files under tests/data/bad/onnx_*).
 * Every string, array and sub-message is malloc'd exactly as protobuf-c's unpacker would lay it
 * out, so a whole tree is released with onnx__model_proto__free_unpacked(m, NULL) (or the
 * tensor's own free_unpacked). Allocation failures abort: this is test scaffolding, not library code.
 */
#ifndef SMELT_TESTS_ONNX_BUILD_H
#define SMELT_TESTS_ONNX_BUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

static inline void *ob_alloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) abort();
    return p;
}

static inline char *ob_str(const char *s)
{
    char *d = ob_alloc(strlen(s) + 1);
    memcpy(d, s, strlen(s) + 1);
    return d;
}

static inline void *ob_dup(const void *src, size_t n)
{
    void *d = ob_alloc(n);
    if (n) memcpy(d, src, n);
    return d;
}

/* Appends item to a protobuf-c repeated pointer field (arr, n). */
#define OB_PUSH(arr, n, item)                                          \
    do {                                                               \
        void *grown_ = realloc((arr), ((n) + 1) * sizeof *(arr));      \
        if (!grown_) abort();                                          \
        (arr) = grown_;                                                \
        (arr)[(n)++] = (item);                                         \
    } while (0)

/* A tensor header: name, TensorProto.DataType (0 = leave unset) and dims; no data yet. */
static inline Onnx__TensorProto *ob_tensor(const char *name, int dtype, int ndim, const int64_t *dims)
{
    Onnx__TensorProto *t = ob_alloc(sizeof *t);
    onnx__tensor_proto__init(t);
    if (name) t->name = ob_str(name);
    if (dtype) {
        t->has_data_type = 1;
        t->data_type = dtype;
    }
    t->n_dims = (size_t)ndim;
    t->dims = ob_dup(dims, (size_t)ndim * sizeof *dims);
    return t;
}

static inline void ob_raw(Onnx__TensorProto *t, const void *data, size_t len)
{
    t->has_raw_data = 1;
    t->raw_data.len = len;
    t->raw_data.data = ob_dup(data, len);
}

static inline void ob_floats(Onnx__TensorProto *t, size_t n, const float *v)
{
    t->n_float_data = n;
    t->float_data = ob_dup(v, n * sizeof *v);
}

static inline void ob_int32s(Onnx__TensorProto *t, size_t n, const int32_t *v)
{
    t->n_int32_data = n;
    t->int32_data = ob_dup(v, n * sizeof *v);
}

static inline void ob_int64s(Onnx__TensorProto *t, size_t n, const int64_t *v)
{
    t->n_int64_data = n;
    t->int64_data = ob_dup(v, n * sizeof *v);
}

static inline void ob_doubles(Onnx__TensorProto *t, size_t n, const double *v)
{
    t->n_double_data = n;
    t->double_data = ob_dup(v, n * sizeof *v);
}

static inline void ob_uint64s(Onnx__TensorProto *t, size_t n, const uint64_t *v)
{
    t->n_uint64_data = n;
    t->uint64_data = ob_dup(v, n * sizeof *v);
}

static inline void ob_kv(Onnx__TensorProto *t, const char *k, const char *v)
{
    Onnx__StringStringEntryProto *e = ob_alloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = ob_str(k);
    e->value = ob_str(v);
    OB_PUSH(t->external_data, t->n_external_data, e);
}

/* Marks t as external: data at location (relative to the model's folder); offset and length are
 * written only when non-NULL (they are strings in ONNX). */
static inline void ob_external(Onnx__TensorProto *t, const char *location, const char *offset, const char *length)
{
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (location) ob_kv(t, "location", location);
    if (offset) ob_kv(t, "offset", offset);
    if (length) ob_kv(t, "length", length);
}

/* A tensor-typed graph input/output. dims[i] < 0 is symbolic, named params[i] when given;
 * ndim < 0 leaves the shape out entirely. */
static inline Onnx__ValueInfoProto *ob_value(const char *name, int elem_type, int ndim, const int64_t *dims, const char *const *params)
{
    Onnx__ValueInfoProto *v = ob_alloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = ob_str(name);
    v->type = ob_alloc(sizeof *v->type);
    onnx__type_proto__init(v->type);
    v->type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    Onnx__TypeProto__Tensor *tt = ob_alloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    v->type->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    if (ndim < 0) return v;
    tt->shape = ob_alloc(sizeof *tt->shape);
    onnx__tensor_shape_proto__init(tt->shape);
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = ob_alloc(sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] >= 0 || !params || !params[i]) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = ob_str(params[i]);
        }
        OB_PUSH(tt->shape->dim, tt->shape->n_dim, d);
    }
    return v;
}

static inline Onnx__NodeProto *ob_node(Onnx__GraphProto *g, const char *op, const char *name, int n_in, const char *const *in, int n_out,
                                const char *const *out)
{
    Onnx__NodeProto *n = ob_alloc(sizeof *n);
    onnx__node_proto__init(n);
    if (op) n->op_type = ob_str(op);
    if (name) n->name = ob_str(name);
    for (int i = 0; i < n_in; i++) OB_PUSH(n->input, n->n_input, ob_str(in[i]));
    for (int i = 0; i < n_out; i++) OB_PUSH(n->output, n->n_output, ob_str(out[i]));
    OB_PUSH(g->node, g->n_node, n);
    return n;
}

/* A named attribute of the given type with no value; the caller fills the matching field. */
static inline Onnx__AttributeProto *ob_attr(Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = ob_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = ob_str(name);
    a->has_type = 1;
    a->type = type;
    OB_PUSH(n->attribute, n->n_attribute, a);
    return a;
}

static inline Onnx__GraphProto *ob_graph(const char *name)
{
    Onnx__GraphProto *g = ob_alloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = ob_str(name);
    return g;
}

/* A model around g (taking ownership), importing the default opset at `opset`. */
static inline Onnx__ModelProto *ob_model(Onnx__GraphProto *g, int64_t opset)
{
    Onnx__ModelProto *m = ob_alloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    m->producer_name = ob_str("smelt-tests");
    m->producer_version = ob_str("1");
    m->graph = g;
    Onnx__OperatorSetIdProto *o = ob_alloc(sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = ob_str("");
    o->has_version = 1;
    o->version = opset;
    OB_PUSH(m->opset_import, m->n_opset_import, o);
    return m;
}

/* Serialized bytes of m (malloc'd; *len set). */
static inline uint8_t *ob_pack_model(const Onnx__ModelProto *m, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = ob_alloc(*len);
    onnx__model_proto__pack(m, buf);
    return buf;
}

/* Writes len bytes to path; returns 0 on success. */
static inline int ob_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = fwrite(data, 1, len, f);
    int rc = fclose(f);
    return put == len && rc == 0 ? 0 : -1;
}

/* Packs m to path and frees it. Returns 0 on success. */
static inline int ob_write_model(const char *path, Onnx__ModelProto *m)
{
    size_t len;
    uint8_t *buf = ob_pack_model(m, &len);
    int rc = ob_write(path, buf, len);
    free(buf);
    onnx__model_proto__free_unpacked(m, NULL);
    return rc;
}

#endif
