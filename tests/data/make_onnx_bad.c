/* Writes the corrupt ONNX fixtures tests/data/bad/onnx_* (see tests/data/bad/README-onnx.md).
 *
 * Each file is a minimal valid model (input 'x' float [1] -> Identity -> output 'y') with exactly
 * one defect, so each trips exactly one check of formats/onnx*.c. The files are committed; this
 * program documents how they were made and remakes them:
 *
 *   make build/gen/onnx.pb-c.h
 *   gcc -std=c11 -Ibuild/gen tests/data/make_onnx_bad.c build/gen/onnx.pb-c.c -lprotobuf-c -o /tmp/make_onnx_bad
 *   /tmp/make_onnx_bad tests/data/bad
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_build.h"

enum { FLOAT = 1, INT8 = 3, INT64 = 7, STRING = 8, UINT32 = 12 };

static const char *out_dir;

static Onnx__ModelProto *base(void)
{
    Onnx__GraphProto *g = ob_graph("g");
    const int64_t one = 1;
    OB_PUSH(g->input, g->n_input, ob_value("x", FLOAT, 1, &one, NULL));
    OB_PUSH(g->output, g->n_output, ob_value("y", FLOAT, 1, &one, NULL));
    const char *x = "x", *y = "y";
    ob_node(g, "Identity", "id", 1, &x, 1, &y);
    return ob_model(g, 13);
}

/* base() plus one initializer t. */
static Onnx__ModelProto *with_init(Onnx__TensorProto *t)
{
    Onnx__ModelProto *m = base();
    OB_PUSH(m->graph->initializer, m->graph->n_initializer, t);
    return m;
}

static void put(const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    if (ob_write(path, data, len) != 0) {
        fprintf(stderr, "make_onnx_bad: cannot write %s\n", path);
        exit(1);
    }
}

static void put_model(const char *name, Onnx__ModelProto *m)
{
    size_t len;
    uint8_t *buf = ob_pack_model(m, &len);
    put(name, buf, len);
    free(buf);
    onnx__model_proto__free_unpacked(m, NULL);
}

/* A float [n] initializer 'w' with external data at location/offset/length. */
static Onnx__ModelProto *ext(int64_t n, const char *location, const char *offset, const char *length)
{
    Onnx__TensorProto *t = ob_tensor("w", FLOAT, 1, &n);
    ob_external(t, location, offset, length);
    return with_init(t);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_onnx_bad OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    const float f4[4] = {1, 2, 3, 4};
    const int64_t d128x1[2] = {128, 1}, d2x2[2] = {2, 2}, d4 = 4, d2 = 2;

    /* A valid model with a 512-byte initializer, cut in the middle of its raw_data. */
    {
        Onnx__TensorProto *t = ob_tensor("fc.weight", FLOAT, 2, d128x1);
        float w[128] = {0};
        ob_raw(t, w, sizeof w);
        size_t len;
        Onnx__ModelProto *m = with_init(t);
        uint8_t *buf = ob_pack_model(m, &len);
        put("onnx_truncated.onnx", buf, len / 2);
        free(buf);
        onnx__model_proto__free_unpacked(m, NULL);
    }
    put("onnx_garbage.onnx", "this is not an onnx model\n", 26);
    put("onnx_empty.onnx", "", 0);
    {
        Onnx__TensorProto *t = ob_tensor("fc.weight", FLOAT, 2, d128x1);
        uint8_t raw[100] = {0};
        ob_raw(t, raw, sizeof raw);
        put_model("onnx_raw_size.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *t = ob_tensor("w", FLOAT, 2, d2x2);
        ob_floats(t, 3, f4);
        put_model("onnx_short_typed.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *t = ob_tensor("w", FLOAT, 2, d2x2);
        const int64_t v[4] = {1, 2, 3, 4};
        ob_int64s(t, 4, v);
        put_model("onnx_wrong_field.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *t = ob_tensor("w", FLOAT, 1, &d4);
        ob_raw(t, f4, sizeof f4);
        ob_floats(t, 4, f4);
        put_model("onnx_raw_and_typed.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *t = ob_tensor("names", STRING, 1, &d2);
        ProtobufCBinaryData s[2] = {{1, (uint8_t *)"a"}, {1, (uint8_t *)"b"}};
        t->n_string_data = 2;
        t->string_data = ob_alloc(2 * sizeof *t->string_data);
        for (int i = 0; i < 2; i++) t->string_data[i] = (ProtobufCBinaryData){1, ob_dup(s[i].data, 1)};
        put_model("onnx_dtype_string.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *t = ob_tensor("w", 99, 1, &d4);
        ob_raw(t, f4, sizeof f4);
        put_model("onnx_dtype_unknown.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *t = ob_tensor("w", 0, 1, &d4);
        ob_raw(t, f4, sizeof f4);
        put_model("onnx_no_dtype.onnx", with_init(t));
    }
    {
        const int64_t d[3] = {INT64_C(1) << 32, INT64_C(1) << 32, INT64_C(1) << 32};
        Onnx__TensorProto *t = ob_tensor("w", FLOAT, 3, d);
        ob_raw(t, f4, sizeof f4);
        put_model("onnx_dims_overflow.onnx", with_init(t));
    }
    {
        const int64_t d = -1;
        Onnx__TensorProto *t = ob_tensor("w", FLOAT, 1, &d);
        ob_raw(t, f4, 4);
        put_model("onnx_dims_negative.onnx", with_init(t));
    }
    {
        const int64_t d[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
        Onnx__TensorProto *t = ob_tensor("w", FLOAT, 9, d);
        ob_raw(t, f4, 4);
        put_model("onnx_too_many_dims.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *t = ob_tensor("q", INT8, 1, &d2);
        const int32_t v[2] = {1, 300};
        ob_int32s(t, 2, v);
        put_model("onnx_int8_range.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *t = ob_tensor("u", UINT32, 1, &d2);
        const uint64_t v[2] = {1, UINT64_C(1) << 33};
        ob_uint64s(t, 2, v);
        put_model("onnx_uint32_range.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *t = ob_tensor("w", FLOAT, 1, &d4);
        ob_raw(t, f4, sizeof f4);
        t->segment = ob_alloc(sizeof *t->segment);
        onnx__tensor_proto__segment__init(t->segment);
        put_model("onnx_segment.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *t = ob_tensor(NULL, FLOAT, 1, &d4);
        ob_raw(t, f4, sizeof f4);
        put_model("onnx_init_no_name.onnx", with_init(t));
    }
    {
        Onnx__TensorProto *a = ob_tensor("w", FLOAT, 1, &d4), *b = ob_tensor("w", FLOAT, 1, &d4);
        ob_raw(a, f4, sizeof f4);
        ob_raw(b, f4, sizeof f4);
        Onnx__ModelProto *m = with_init(a);
        OB_PUSH(m->graph->initializer, m->graph->n_initializer, b);
        put_model("onnx_dup_initializer.onnx", m);
    }

    /* External data: onnx_ext.bin holds 16 bytes (four floats 1..4). */
    put("onnx_ext.bin", f4, sizeof f4);
    put_model("onnx_ext_absolute.onnx", ext(4, "/etc/passwd", NULL, NULL));
    put_model("onnx_ext_escape.onnx", ext(4, "../onnx_ext.bin", NULL, NULL));
    put_model("onnx_ext_escape_inner.onnx", ext(4, "sub/../../bad/onnx_ext.bin", NULL, NULL));
    put_model("onnx_ext_oob.onnx", ext(4, "onnx_ext.bin", "8", "16"));
    put_model("onnx_ext_offset_past.onnx", ext(4, "onnx_ext.bin", "100", NULL));
    put_model("onnx_ext_length.onnx", ext(4, "onnx_ext.bin", "0", "8"));
    put_model("onnx_ext_bad_offset.onnx", ext(4, "onnx_ext.bin", "-4", NULL));
    put_model("onnx_ext_missing_file.onnx", ext(4, "onnx_no_such_file.bin", NULL, NULL));
    put_model("onnx_ext_no_location.onnx", ext(4, NULL, "0", "16"));
    {
        Onnx__ModelProto *m = ext(4, "onnx_ext.bin", NULL, NULL);
        ob_raw(m->graph->initializer[0], f4, sizeof f4);
        put_model("onnx_ext_and_raw.onnx", m);
    }

    /* Graph structure. */
    {
        Onnx__ModelProto *m = base();
        const int64_t d = -3;
        OB_PUSH(m->graph->input, m->graph->n_input, ob_value("z", FLOAT, 1, &d, NULL));
        put_model("onnx_input_dim.onnx", m);
    }
    {
        Onnx__ModelProto *m = base();
        Onnx__ValueInfoProto *v = ob_value("s", FLOAT, -1, NULL, NULL);
        /* Turn the tensor type into a sequence of tensors. */
        Onnx__TypeProto *elem = v->type;
        v->type = ob_alloc(sizeof *v->type);
        onnx__type_proto__init(v->type);
        v->type->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
        v->type->sequence_type = ob_alloc(sizeof *v->type->sequence_type);
        onnx__type_proto__sequence__init(v->type->sequence_type);
        v->type->sequence_type->elem_type = elem;
        OB_PUSH(m->graph->input, m->graph->n_input, v);
        put_model("onnx_input_sequence.onnx", m);
    }
    {
        Onnx__ModelProto *m = base();
        const char *in = "nowhere", *out = "z";
        ob_node(m->graph, "Relu", "r", 1, &in, 1, &out);
        put_model("onnx_dangling_input.onnx", m);
    }
    {
        Onnx__ModelProto *m = base();
        const char *in = "x", *out = "z";
        ob_node(m->graph, NULL, "nop", 1, &in, 1, &out);
        put_model("onnx_no_op_type.onnx", m);
    }
    {
        Onnx__ModelProto *m = base();
        const char *out = "c";
        Onnx__NodeProto *n = ob_node(m->graph, "Constant", "c", 0, NULL, 1, &out);
        Onnx__AttributeProto *a = ob_attr(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
        a->t = ob_tensor("c", FLOAT, 1, &d4);
        ob_raw(a->t, f4, 12);
        put_model("onnx_constant_bad.onnx", m);
    }
    {
        Onnx__ModelProto *m = base();
        const char *out = "c";
        Onnx__NodeProto *n = ob_node(m->graph, "Constant", "c", 0, NULL, 1, &out);
        Onnx__AttributeProto *a = ob_attr(n, "sparse_value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR);
        a->sparse_tensor = ob_alloc(sizeof *a->sparse_tensor);
        onnx__sparse_tensor_proto__init(a->sparse_tensor);
        put_model("onnx_attr_sparse.onnx", m);
    }

    /* A single TensorProto (as in conformance test_data_set_*), cut short. */
    {
        Onnx__TensorProto *t = ob_tensor("input_0", FLOAT, 1, &d4);
        ob_raw(t, f4, sizeof f4);
        size_t len = onnx__tensor_proto__get_packed_size(t);
        uint8_t *buf = ob_alloc(len);
        onnx__tensor_proto__pack(t, buf);
        put("onnx_tensor_truncated.pb", buf, len - 5);
        free(buf);
        onnx__tensor_proto__free_unpacked(t, NULL);
    }
    return 0;
}
