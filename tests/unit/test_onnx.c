/* ONNX import (formats/onnx.c, formats/onnx_tensor.c): models built here with tests/data/onnx_build.h
 * check that typed fields and raw_data give identical tensors for every dtype, that external data
 * honours location, offset and length, that every attribute type and the opsets, graph inputs and
 * symbolic dims come through; the fixture models give their known parameter counts and shapes; a
 * conformance-test TensorProto decodes to the right values; and each corrupt file under
 * tests/data/bad/onnx_* gives its own error. Built models are written under a mkdtemp folder that
 * teardown removes. */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "formats/onnx.h"
#include "tests/data/onnx_build.h"

/* onnx.TensorProto.DataType values */
enum {
    T_FLOAT = 1, T_UINT8 = 2, T_INT8 = 3, T_UINT16 = 4, T_INT16 = 5, T_INT32 = 6, T_INT64 = 7, T_BOOL = 9,
    T_FLOAT16 = 10, T_DOUBLE = 11, T_UINT32 = 12, T_UINT64 = 13, T_BFLOAT16 = 16, T_UINT4 = 21, T_INT4 = 22,
};

#define ABS_DIR "/usr/share/libonnx-testdata/data/node/test_abs/test_data_set_0"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/smelt-onnx-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmpdir/name, in a static buffer (one path at a time is enough here). */
static const char *tmp_path(const char *name)
{
    static char buf[2][256];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", tmpdir, name);
    return buf[which];
}

static smelt_model *read_ok(const char *path)
{
    smelt_model *m = NULL;
    smelt_err *err = onnx_read(path, &m);
    if (err) fail_msg("%s: unexpected error: %s", path, smelt_err_msg(err));
    assert_non_null(m);
    assert_string_equal(m->arch, "onnx");
    assert_int_equal(m->kind, SMELT_KIND_GRAPH);
    return m;
}

static const smelt_tensor *find(const smelt_model *m, const char *name)
{
    const smelt_tensor *t = smelt_model_find(m, name);
    if (!t) fail_msg("no tensor '%s'", name);
    return t;
}

static const smelt_node *find_node(const smelt_model *m, const char *name)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (strcmp(m->nodes[i].name, name) == 0) return &m->nodes[i];
    fail_msg("no node '%s'", name);
    return NULL;
}

static const smelt_attr *find_attr(const smelt_node *n, const char *name, smelt_attr_type type)
{
    const smelt_attr *a = smelt_node_attr(n, name);
    if (!a) fail_msg("node '%s': no attribute '%s'", n->name, name);
    if (a->type != type) fail_msg("node '%s': attribute '%s' has type %d, expected %d", n->name, name, (int)a->type, (int)type);
    return a;
}

/* The skeleton make_onnx_bad.c uses too: input 'x' float [1] -> Identity -> output 'y'. */
static Onnx__ModelProto *base_model(int64_t opset)
{
    Onnx__GraphProto *g = ob_graph("g");
    const int64_t one = 1;
    OB_PUSH(g->input, g->n_input, ob_value("x", T_FLOAT, 1, &one, NULL));
    OB_PUSH(g->output, g->n_output, ob_value("y", T_FLOAT, 1, &one, NULL));
    const char *x = "x", *y = "y";
    ob_node(g, "Identity", "id", 1, &x, 1, &y);
    return ob_model(g, opset);
}

static void write_model(const char *path, Onnx__ModelProto *mp)
{
    if (ob_write_model(path, mp) != 0) fail_msg("cannot write %s", path);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    if (ob_write(path, data, len) != 0) fail_msg("cannot write %s", path);
}

static void add_init(Onnx__ModelProto *mp, Onnx__TensorProto *t) { OB_PUSH(mp->graph->initializer, mp->graph->n_initializer, t); }

/* ---- typed fields vs raw_data ---- */

enum { FLD_FLOAT, FLD_INT32, FLD_INT64, FLD_DOUBLE, FLD_UINT64 };

typedef struct {
    const char *name;
    int onnx;
    smelt_dtype dt;
    int field;      /* the typed field ONNX stores this type in */
    int width;      /* bytes of one stored value: element size, 1 for a packed 4-bit byte */
    int is_signed;  /* for int32_data: sign-extend (int8, int16) or not (uint8, bool, 16-bit floats) */
    size_t nbytes;  /* of the [2, 3] tensor */
    const void *values; /* the tensor's bytes, as raw_data holds them */
} typed_case;

static const float v_f32[6] = {1.5f, -0.0f, 3.4e38f, 1e-45f, INFINITY, -2.75f};
static const int32_t v_i32[6] = {INT32_MIN, -1, 0, 7, INT32_MAX, 42};
static const int64_t v_i64[6] = {INT64_MIN, -1, 0, INT64_C(1) << 40, INT64_MAX, 42};
static const double v_f64[6] = {3.141592653589793, -0.0, 1e300, 5e-324, -INFINITY, -2.5};
static const uint64_t v_u64[6] = {0, 1, UINT64_MAX, UINT64_C(1) << 63, UINT64_C(123456789012345), 42};
static const uint32_t v_u32[6] = {0, 1, UINT32_MAX, UINT32_C(1) << 31, 123456789, 42};
static const int8_t v_i8[6] = {-128, 127, 0, -1, 5, -6};
static const uint8_t v_u8[6] = {0, 255, 128, 1, 5, 6};
static const int16_t v_i16[6] = {-32768, 32767, 0, -1, 300, -300};
static const uint16_t v_u16[6] = {0, 65535, 32768, 1, 300, 301};
static const uint8_t v_bool[6] = {0, 1, 1, 0, 1, 0};
static const uint16_t v_f16[6] = {0x3c00, 0xbc00, 0x7c00, 0x0001, 0x7bff, 0x8000}; /* 1, -1, inf, tiny, max, -0 */
static const uint16_t v_bf16[6] = {0x3f80, 0xbf80, 0x7f80, 0x0001, 0x7f7f, 0x8000};
static const uint8_t v_4bit[3] = {0x21, 0xf3, 0x87}; /* six packed nibbles, lower index in the low nibble */

static const typed_case typed_cases[] = {
    {"f32", T_FLOAT, SMELT_DT_F32, FLD_FLOAT, 4, 0, sizeof v_f32, v_f32},
    {"i32", T_INT32, SMELT_DT_I32, FLD_INT32, 4, 1, sizeof v_i32, v_i32},
    {"i64", T_INT64, SMELT_DT_I64, FLD_INT64, 8, 1, sizeof v_i64, v_i64},
    {"f64", T_DOUBLE, SMELT_DT_F64, FLD_DOUBLE, 8, 0, sizeof v_f64, v_f64},
    {"u64", T_UINT64, SMELT_DT_U64, FLD_UINT64, 8, 0, sizeof v_u64, v_u64},
    {"u32", T_UINT32, SMELT_DT_U32, FLD_UINT64, 4, 0, sizeof v_u32, v_u32},
    {"i8", T_INT8, SMELT_DT_I8, FLD_INT32, 1, 1, sizeof v_i8, v_i8},
    {"u8", T_UINT8, SMELT_DT_U8, FLD_INT32, 1, 0, sizeof v_u8, v_u8},
    {"i16", T_INT16, SMELT_DT_I16, FLD_INT32, 2, 1, sizeof v_i16, v_i16},
    {"u16", T_UINT16, SMELT_DT_U16, FLD_INT32, 2, 0, sizeof v_u16, v_u16},
    {"bool", T_BOOL, SMELT_DT_BOOL, FLD_INT32, 1, 0, sizeof v_bool, v_bool},
    {"f16", T_FLOAT16, SMELT_DT_F16, FLD_INT32, 2, 0, sizeof v_f16, v_f16},
    {"bf16", T_BFLOAT16, SMELT_DT_BF16, FLD_INT32, 2, 0, sizeof v_bf16, v_bf16},
    {"i4", T_INT4, SMELT_DT_I4, FLD_INT32, 1, 0, sizeof v_4bit, v_4bit},
    {"u4", T_UINT4, SMELT_DT_U4, FLD_INT32, 1, 0, sizeof v_4bit, v_4bit},
};

/* Widens stored value i of c->values to what int32_data / uint64_data hold. */
static int64_t stored_value(const typed_case *c, size_t i)
{
    const uint8_t *p = (const uint8_t *)c->values + i * (size_t)c->width;
    switch (c->width) {
    case 1: return c->is_signed ? (int64_t)(int8_t)p[0] : (int64_t)p[0];
    case 2: {
        uint16_t u;
        memcpy(&u, p, 2);
        return c->is_signed ? (int64_t)(int16_t)u : (int64_t)u;
    }
    case 4: {
        uint32_t u;
        memcpy(&u, p, 4);
        return c->is_signed ? (int64_t)(int32_t)u : (int64_t)u;
    }
    default: fail_msg("bad width");
    }
    return 0;
}

/* The same values as a typed field of a new [2, 3] tensor. */
static Onnx__TensorProto *typed_tensor(const typed_case *c, const char *name)
{
    const int64_t dims[2] = {2, 3};
    Onnx__TensorProto *t = ob_tensor(name, c->onnx, 2, dims);
    size_t n = c->nbytes / (size_t)c->width;
    if (c->field == FLD_FLOAT) ob_floats(t, n, c->values);
    else if (c->field == FLD_DOUBLE) ob_doubles(t, n, c->values);
    else if (c->field == FLD_INT64) ob_int64s(t, n, c->values);
    else if (c->field == FLD_UINT64 && c->width == 8) ob_uint64s(t, n, c->values);
    else if (c->field == FLD_UINT64) {
        uint64_t v[6];
        for (size_t i = 0; i < n; i++) v[i] = (uint64_t)stored_value(c, i);
        ob_uint64s(t, n, v);
    } else {
        int32_t v[6];
        for (size_t i = 0; i < n; i++) v[i] = (int32_t)stored_value(c, i);
        ob_int32s(t, n, v);
    }
    return t;
}

static void typed_equals_raw(void **state)
{
    (void)state;
    const size_t n_cases = sizeof typed_cases / sizeof typed_cases[0];
    Onnx__ModelProto *mp = base_model(17);
    const int64_t dims[2] = {2, 3}, empty_dims[2] = {0, 3};
    char name[64];
    for (size_t i = 0; i < n_cases; i++) {
        const typed_case *c = &typed_cases[i];
        snprintf(name, sizeof name, "typed.%s", c->name);
        add_init(mp, typed_tensor(c, name));
        snprintf(name, sizeof name, "raw.%s", c->name);
        Onnx__TensorProto *r = ob_tensor(name, c->onnx, 2, dims);
        ob_raw(r, c->values, c->nbytes);
        add_init(mp, r);
    }
    /* An empty tensor (no typed values at all, or zero raw bytes) and a scalar (no dims). */
    add_init(mp, ob_tensor("typed.empty", T_FLOAT, 2, empty_dims));
    Onnx__TensorProto *re = ob_tensor("raw.empty", T_FLOAT, 2, empty_dims);
    ob_raw(re, "", 0);
    add_init(mp, re);
    const float pi = 3.25f;
    Onnx__TensorProto *ts = ob_tensor("typed.scalar", T_FLOAT, 0, NULL), *rs = ob_tensor("raw.scalar", T_FLOAT, 0, NULL);
    ob_floats(ts, 1, &pi);
    ob_raw(rs, &pi, sizeof pi);
    add_init(mp, ts);
    add_init(mp, rs);
    const char *path = tmp_path("typed.onnx");
    write_model(path, mp);

    smelt_model *m = read_ok(path);
    assert_int_equal(m->n_tensors, 2 * (int)n_cases + 4);
    for (size_t i = 0; i < n_cases; i++) {
        const typed_case *c = &typed_cases[i];
        snprintf(name, sizeof name, "typed.%s", c->name);
        const smelt_tensor *t = find(m, name);
        snprintf(name, sizeof name, "raw.%s", c->name);
        const smelt_tensor *r = find(m, name);
        if (t->dtype != c->dt || r->dtype != c->dt) fail_msg("%s: dtypes %s and %s, expected %s", c->name, smelt_dtype_name(t->dtype),
                                                             smelt_dtype_name(r->dtype), smelt_dtype_name(c->dt));
        assert_int_equal(t->ndim, 2);
        assert_int_equal(r->ndim, 2);
        assert_memory_equal(t->shape, dims, sizeof dims);
        assert_memory_equal(r->shape, dims, sizeof dims);
        if (t->nbytes != c->nbytes || r->nbytes != c->nbytes) fail_msg("%s: %zu and %zu bytes, expected %zu", c->name, t->nbytes, r->nbytes, c->nbytes);
        if (memcmp(t->data, c->values, c->nbytes) != 0) fail_msg("%s: typed field decoded to other bytes than the values", c->name);
        if (memcmp(r->data, c->values, c->nbytes) != 0) fail_msg("%s: raw_data decoded to other bytes than the values", c->name);
    }
    const smelt_tensor *te = find(m, "typed.empty"), *r0 = find(m, "raw.empty");
    assert_int_equal(te->nbytes, 0);
    assert_int_equal(r0->nbytes, 0);
    assert_int_equal(te->shape[0], 0);
    assert_int_equal(te->shape[1], 3);
    const smelt_tensor *s1 = find(m, "typed.scalar"), *s2 = find(m, "raw.scalar");
    assert_int_equal(s1->ndim, 0);
    assert_int_equal(s2->ndim, 0);
    assert_int_equal(s1->nbytes, 4);
    assert_true(*(const float *)s1->data == pi && *(const float *)s2->data == pi);
    /* integers are not parameters; floats are: f32 f64 f16 bf16 [2, 3] and the scalar */
    assert_int_equal(smelt_model_param_count(m), 4 * 6 * 2 + 2);
    smelt_model_free(m);
}

/* ---- external data ---- */

static void external_data(void **state)
{
    (void)state;
    /* weights.bin: 16 bytes of junk, float [2, 3] at 16, int64 [3] at 40, 2 bytes of junk, then an
     * int64 at the unaligned offset 66 that runs to the end of the file (no length given). */
    const float wf[6] = {0.5f, -1, 2, -3.25f, 1e-3f, 1e6f};
    const int64_t wi[3] = {-7, INT64_C(1) << 50, 9}, tail = INT64_C(-1234567890123);
    uint8_t file[74];
    memcpy(file, "HEADERHEADERHEAD", 16);
    memcpy(file + 16, wf, sizeof wf);
    memcpy(file + 40, wi, sizeof wi);
    memcpy(file + 64, "\xee\xee", 2);
    memcpy(file + 66, &tail, sizeof tail);
    char dir[128], sub[160];
    snprintf(dir, sizeof dir, "%s/ext", tmpdir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkdir(sub, 0755), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    write_bytes(path, file, sizeof file);
    const float more[2] = {42, -42};
    snprintf(path, sizeof path, "%s/more.bin", sub);
    write_bytes(path, more, sizeof more);

    Onnx__ModelProto *mp = base_model(17);
    const int64_t d23[2] = {2, 3}, d3 = 3, d1 = 1, d2 = 2;
    Onnx__TensorProto *t = ob_tensor("w.f32", T_FLOAT, 2, d23);
    ob_external(t, "weights.bin", "16", "24");
    add_init(mp, t);
    t = ob_tensor("w.i64", T_INT64, 1, &d3);
    ob_external(t, "weights.bin", "40", "24");
    add_init(mp, t);
    t = ob_tensor("w.tail", T_INT64, 1, &d1);
    ob_external(t, "weights.bin", "66", NULL);
    add_init(mp, t);
    t = ob_tensor("w.sub", T_FLOAT, 1, &d2);
    ob_external(t, "sub/more.bin", NULL, NULL);
    add_init(mp, t);
    t = ob_tensor("w.dot", T_FLOAT, 2, d23);
    ob_external(t, "./weights.bin", "16", "24");
    ob_kv(t, "checksum", "0123456789abcdef"); /* advisory: ignored */
    add_init(mp, t);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    write_model(path, mp);

    smelt_model *m = read_ok(path);
    const smelt_tensor *f = find(m, "w.f32");
    assert_int_equal(f->dtype, SMELT_DT_F32);
    assert_int_equal(f->nbytes, sizeof wf);
    assert_memory_equal(f->data, wf, sizeof wf);
    assert_memory_equal(find(m, "w.dot")->data, wf, sizeof wf);
    const smelt_tensor *i = find(m, "w.i64");
    assert_int_equal(i->dtype, SMELT_DT_I64);
    assert_memory_equal(i->data, wi, sizeof wi);
    const smelt_tensor *tl = find(m, "w.tail");
    assert_int_equal(tl->nbytes, 8);
    assert_int_equal((uintptr_t)tl->data % 8, 0); /* copied to aligned storage */
    assert_memory_equal(tl->data, &tail, sizeof tail);
    assert_memory_equal(find(m, "w.sub")->data, more, sizeof more);
    smelt_model_free(m);
}

/* ---- attributes ---- */

static void attributes(void **state)
{
    (void)state;
    Onnx__GraphProto *g = ob_graph("g");
    const int64_t one = 1;
    OB_PUSH(g->input, g->n_input, ob_value("x", T_FLOAT, 1, &one, NULL));
    OB_PUSH(g->output, g->n_output, ob_value("z", T_FLOAT, 1, &one, NULL));
    const char *x = "x", *y = "y", *z = "z";
    Onnx__NodeProto *n = ob_node(g, "MyOp", "custom", 1, &x, 1, &y);
    n->domain = ob_str("com.example");
    Onnx__NodeProto *id = ob_node(g, "Identity", "id", 1, &y, 1, &z);
    id->domain = ob_str("ai.onnx"); /* the default domain under its other name */

    Onnx__AttributeProto *a = ob_attr(n, "alpha", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1, a->f = 0.25f;
    a = ob_attr(n, "axis", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1, a->i = INT64_MIN;
    static const char mode[] = "a\xff\0b\xc3"; /* invalid UTF-8 and a NUL: ONNX strings are bytes */
    a = ob_attr(n, "mode", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1, a->s.len = 5, a->s.data = ob_dup(mode, 5);
    const float fl[3] = {1.5f, -2, 3e-3f};
    a = ob_attr(n, "scales", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = 3, a->floats = ob_dup(fl, sizeof fl);
    const int64_t in[3] = {INT64_MIN, 0, INT64_MAX};
    a = ob_attr(n, "pads", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = 3, a->ints = ob_dup(in, sizeof in);
    ob_attr(n, "no_ints", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    static const char *const strs[3] = {"x", "\xfe\xff", ""};
    a = ob_attr(n, "names", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = 3;
    a->strings = ob_alloc(3 * sizeof *a->strings);
    for (int i = 0; i < 3; i++) a->strings[i] = (ProtobufCBinaryData){strlen(strs[i]), ob_dup(strs[i], strlen(strs[i]))};
    const int64_t tv[3] = {5, -6, 7}, d3 = 3;
    a = ob_attr(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = ob_tensor(NULL, T_INT64, 1, &d3); /* unnamed: takes the node's first output's name */
    ob_raw(a->t, tv, sizeof tv);
    const float k = 2.5f;
    a = ob_attr(n, "named", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = ob_tensor("k", T_FLOAT, 0, NULL);
    ob_floats(a->t, 1, &k);
    a = ob_attr(n, "body", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
    a->g = ob_graph("body");
    a = ob_attr(n, "branches", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS);
    OB_PUSH(a->graphs, a->n_graphs, ob_graph("then"));
    OB_PUSH(a->graphs, a->n_graphs, ob_graph("else"));
    /* Files from before attribute types were recorded: the type comes from the filled field. */
    a = ob_attr(n, "legacy_f", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED);
    a->has_type = 0, a->has_f = 1, a->f = -0.5f;
    a = ob_attr(n, "legacy_ints", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED);
    a->has_type = 0, a->n_ints = 2, a->ints = ob_dup(in, 2 * sizeof *in);
    const char *path = tmp_path("attrs.onnx");
    write_model(path, ob_model(g, 17));

    smelt_model *m = read_ok(path);
    assert_int_equal(m->n_nodes, 2);
    const smelt_node *c = find_node(m, "custom");
    assert_string_equal(c->op, "MyOp");
    assert_string_equal(c->domain, "com.example");
    assert_int_equal(c->n_inputs, 1);
    assert_string_equal(c->inputs[0], "x");
    assert_int_equal(c->n_outputs, 1);
    assert_string_equal(c->outputs[0], "y");
    assert_int_equal(c->n_attrs, 13);
    assert_string_equal(find_node(m, "id")->domain, "");

    assert_true(find_attr(c, "alpha", SMELT_ATTR_FLOAT)->f == 0.25);
    assert_true(find_attr(c, "axis", SMELT_ATTR_INT)->i == INT64_MIN);
    const smelt_attr *s = find_attr(c, "mode", SMELT_ATTR_STRING);
    assert_int_equal(s->s_len, 5);
    assert_memory_equal(s->s, mode, 6); /* the bytes and a terminating NUL */
    const smelt_attr *f = find_attr(c, "scales", SMELT_ATTR_FLOATS);
    assert_int_equal(f->n, 3);
    assert_memory_equal(f->floats, fl, sizeof fl);
    const smelt_attr *is = find_attr(c, "pads", SMELT_ATTR_INTS);
    assert_int_equal(is->n, 3);
    assert_memory_equal(is->ints, in, sizeof in);
    assert_int_equal(find_attr(c, "no_ints", SMELT_ATTR_INTS)->n, 0);
    const smelt_attr *ss = find_attr(c, "names", SMELT_ATTR_STRINGS);
    assert_int_equal(ss->n, 3);
    for (int i = 0; i < 3; i++) assert_string_equal(ss->strings[i], strs[i]);
    const smelt_attr *tv_a = find_attr(c, "value", SMELT_ATTR_TENSOR);
    assert_non_null(tv_a->tensor);
    assert_string_equal(tv_a->tensor->name, "y");
    assert_int_equal(tv_a->tensor->dtype, SMELT_DT_I64);
    assert_int_equal(tv_a->tensor->ndim, 1);
    assert_int_equal(tv_a->tensor->shape[0], 3);
    assert_int_equal(tv_a->tensor->nbytes, sizeof tv);
    assert_memory_equal(tv_a->tensor->data, tv, sizeof tv);
    const smelt_attr *kn = find_attr(c, "named", SMELT_ATTR_TENSOR);
    assert_string_equal(kn->tensor->name, "k");
    assert_int_equal(kn->tensor->ndim, 0);
    assert_true(*(const float *)kn->tensor->data == k);
    assert_int_equal(find_attr(c, "body", SMELT_ATTR_GRAPH)->n, 1);
    assert_int_equal(find_attr(c, "branches", SMELT_ATTR_GRAPH)->n, 2);
    assert_true(find_attr(c, "legacy_f", SMELT_ATTR_FLOAT)->f == -0.5);
    const smelt_attr *li = find_attr(c, "legacy_ints", SMELT_ATTR_INTS);
    assert_int_equal(li->n, 2);
    assert_memory_equal(li->ints, in, 2 * sizeof *in);
    /* Attribute tensors belong to their attribute, not to the model's weights. */
    assert_int_equal(m->n_tensors, 0);
    smelt_model_free(m);
}

/* ---- opsets, graph inputs and outputs, metadata ---- */

static void opsets_and_dims(void **state)
{
    (void)state;
    Onnx__GraphProto *g = ob_graph("shapes");
    const int64_t bs[2] = {-1, -1}, b7[2] = {-1, 7}, u1 = -1, bs_v[3] = {-1, -1, 4096}, d2 = 2;
    const char *const p_bs[2] = {"batch", "seq"}, *const p_b[2] = {"batch", NULL}, *const p_bsv[3] = {"batch", "seq", NULL};
    OB_PUSH(g->input, g->n_input, ob_value("input_ids", T_INT64, 2, bs, p_bs));
    OB_PUSH(g->input, g->n_input, ob_value("mask", T_BOOL, 2, b7, p_b));
    Onnx__ValueInfoProto *unk = ob_value("unknown", T_FLOAT, 1, &u1, NULL);
    unk->type->tensor_type->shape->dim[0]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE__NOT_SET; /* a dim with neither */
    OB_PUSH(g->input, g->n_input, unk);
    OB_PUSH(g->input, g->n_input, ob_value("noshape", T_FLOAT16, -1, NULL, NULL));
    OB_PUSH(g->input, g->n_input, ob_value("scalar", T_DOUBLE, 0, NULL, NULL));
    /* An initializer listed among the inputs (exporters before IR version 4): a weight, not an input. */
    OB_PUSH(g->input, g->n_input, ob_value("w", T_FLOAT, 1, &d2, NULL));
    const float w[2] = {1, 2};
    Onnx__TensorProto *wt = ob_tensor("w", T_FLOAT, 1, &d2);
    ob_raw(wt, w, sizeof w);
    OB_PUSH(g->initializer, g->n_initializer, wt);
    OB_PUSH(g->output, g->n_output, ob_value("logits", T_FLOAT, 3, bs_v, p_bsv));
    const char *ins[6] = {"input_ids", "mask", "unknown", "noshape", "scalar", "w"}, *out = "logits";
    ob_node(g, "MyOp", "op", 6, ins, 1, &out);
    Onnx__ModelProto *mp = ob_model(g, 17);
    free(mp->opset_import[0]->domain);
    mp->opset_import[0]->domain = ob_str("ai.onnx"); /* the default domain under its other name */
    static const char *const domains[2] = {"com.microsoft", "ai.onnx.ml"};
    const int64_t versions[2] = {1, 3};
    for (int i = 0; i < 2; i++) {
        Onnx__OperatorSetIdProto *o = ob_alloc(sizeof *o);
        onnx__operator_set_id_proto__init(o);
        o->domain = ob_str(domains[i]);
        o->has_version = 1;
        o->version = versions[i];
        OB_PUSH(mp->opset_import, mp->n_opset_import, o);
    }
    const char *path = tmp_path("shapes.onnx");
    write_model(path, mp);

    smelt_model *m = read_ok(path);
    assert_int_equal(m->n_opsets, 3);
    assert_string_equal(m->opsets[0].domain, "");
    assert_int_equal(m->opsets[0].version, 17);
    assert_string_equal(m->opsets[1].domain, "com.microsoft");
    assert_int_equal(m->opsets[1].version, 1);
    assert_string_equal(m->opsets[2].domain, "ai.onnx.ml");
    assert_int_equal(m->opsets[2].version, 3);

    assert_int_equal(m->n_inputs, 5);
    const smelt_value *v = &m->inputs[0];
    assert_string_equal(v->name, "input_ids");
    assert_int_equal(v->dtype, SMELT_DT_I64);
    assert_int_equal(v->ndim, 2);
    assert_true(v->dims[0] == -1 && v->dims[1] == -1);
    assert_string_equal(v->dim_names[0], "batch");
    assert_string_equal(v->dim_names[1], "seq");
    v = &m->inputs[1];
    assert_string_equal(v->name, "mask");
    assert_int_equal(v->dtype, SMELT_DT_BOOL);
    assert_true(v->dims[0] == -1 && v->dims[1] == 7);
    assert_string_equal(v->dim_names[0], "batch");
    assert_null(v->dim_names[1]);
    v = &m->inputs[2];
    assert_string_equal(v->name, "unknown");
    assert_int_equal(v->ndim, 1);
    assert_int_equal(v->dims[0], -1);
    assert_null(v->dim_names[0]);
    v = &m->inputs[3];
    assert_string_equal(v->name, "noshape");
    assert_int_equal(v->dtype, SMELT_DT_F16);
    assert_int_equal(v->ndim, -1);
    v = &m->inputs[4];
    assert_string_equal(v->name, "scalar");
    assert_int_equal(v->dtype, SMELT_DT_F64);
    assert_int_equal(v->ndim, 0);

    assert_int_equal(m->n_outputs, 1);
    v = &m->outputs[0];
    assert_string_equal(v->name, "logits");
    assert_int_equal(v->ndim, 3);
    assert_true(v->dims[0] == -1 && v->dims[1] == -1 && v->dims[2] == 4096);
    assert_string_equal(v->dim_names[1], "seq");
    assert_null(v->dim_names[2]);

    assert_int_equal(m->n_tensors, 1);
    assert_string_equal(json_string_value(json_object_get(m->meta, "producer_name")), "smelt-tests");
    assert_int_equal(json_integer_value(json_object_get(m->meta, "ir_version")), 8);
    assert_string_equal(json_string_value(json_object_get(m->meta, "graph_name")), "shapes");
    smelt_model_free(m);
}

/* ---- tied embeddings ---- */

/* A MatMul weight that is bit for bit the transpose of a Gather table is dropped and recomputed by
 * a Transpose node; one that differs in a single element is kept. */
static void tied_embeddings(void **state)
{
    (void)state;
    for (int differ = 0; differ < 2; differ++) {
        Onnx__GraphProto *g = ob_graph("g");
        const int64_t d2 = 2, emb_d[2] = {4, 2}, head_d[2] = {2, 4};
        OB_PUSH(g->input, g->n_input, ob_value("ids", T_INT64, 1, &d2, NULL));
        OB_PUSH(g->output, g->n_output, ob_value("logits", T_FLOAT, 2, (const int64_t[2]){2, 4}, NULL));
        float emb[8], head[8];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 2; c++) emb[r * 2 + c] = head[c * 4 + r] = (float)(r * 10 + c);
        if (differ) head[5] += 1;
        Onnx__TensorProto *te = ob_tensor("emb", T_FLOAT, 2, emb_d), *th = ob_tensor("head", T_FLOAT, 2, head_d);
        ob_raw(te, emb, sizeof emb);
        ob_floats(th, 8, head);
        OB_PUSH(g->initializer, g->n_initializer, te);
        OB_PUSH(g->initializer, g->n_initializer, th);
        const char *gi[2] = {"emb", "ids"}, *h = "h", *mi[2] = {"h", "head"}, *lo = "logits";
        ob_node(g, "Gather", "gather", 2, gi, 1, &h);
        ob_node(g, "MatMul", "lm_head", 2, mi, 1, &lo);
        const char *path = tmp_path("tied.onnx");
        write_model(path, ob_model(g, 17));
        smelt_model *m = read_ok(path);
        if (differ) {
            assert_int_equal(m->n_tensors, 2);
            assert_int_equal(m->n_nodes, 2);
            assert_null(json_object_get(m->meta, "tied_initializers"));
            assert_int_equal(smelt_model_param_count(m), 16);
        } else {
            assert_int_equal(m->n_tensors, 1);
            assert_null(smelt_model_find(m, "head"));
            assert_int_equal(smelt_model_param_count(m), 8);
            assert_int_equal(m->n_nodes, 3);
            const smelt_node *t = &m->nodes[0];
            assert_string_equal(t->op, "Transpose");
            assert_string_equal(t->inputs[0], "emb");
            assert_string_equal(t->outputs[0], "head");
            const smelt_attr *perm = find_attr(t, "perm", SMELT_ATTR_INTS);
            assert_true(perm->n == 2 && perm->ints[0] == 1 && perm->ints[1] == 0);
            assert_string_equal(json_string_value(json_object_get(json_object_get(m->meta, "tied_initializers"), "head")), "emb");
        }
        smelt_model_free(m);
    }
}

/* ---- the fixture models ---- */

static int count_op(const smelt_model *m, const char *op)
{
    int n = 0;
    for (int i = 0; i < m->n_nodes; i++) n += strcmp(m->nodes[i].op, op) == 0;
    return n;
}

static int64_t default_opset(const smelt_model *m)
{
    for (int i = 0; i < m->n_opsets; i++)
        if (strcmp(m->opsets[i].domain, "") == 0) return m->opsets[i].version;
    return -1;
}

static void fixture_models(void **state)
{
    (void)state;
    smelt_model *m = read_ok("models/tiny-llama/model.onnx");
    assert_int_equal(smelt_model_param_count(m), 893568);
    assert_int_equal(default_opset(m), 17);
    assert_int_equal(m->n_inputs, 1);
    assert_string_equal(m->inputs[0].name, "input_ids");
    assert_int_equal(m->inputs[0].dtype, SMELT_DT_I64);
    assert_int_equal(m->inputs[0].ndim, 2);
    assert_string_equal(m->inputs[0].dim_names[0], "batch");
    assert_string_equal(m->inputs[0].dim_names[1], "seq");
    assert_int_equal(m->n_outputs, 1);
    assert_string_equal(m->outputs[0].name, "logits");
    assert_int_equal(m->outputs[0].dtype, SMELT_DT_F32);
    assert_int_equal(m->outputs[0].ndim, 3);
    assert_int_equal(m->outputs[0].dims[2], 4096);
    /* the output head is the embedding, re-tied (see find_ties in formats/onnx.c) */
    assert_int_equal(json_object_size(json_object_get(m->meta, "tied_initializers")), 1);
    const smelt_tensor *emb = find(m, "model.embed_tokens.weight");
    assert_int_equal(emb->dtype, SMELT_DT_F32);
    assert_true(emb->ndim == 2 && emb->shape[0] == 4096 && emb->shape[1] == 128);
    assert_int_equal(count_op(m, "MatMul"), 19);
    assert_null(smelt_model_validate(m));
    smelt_model_free(m);

    m = read_ok("models/fashion-cnn/model.onnx");
    assert_int_equal(smelt_model_param_count(m), 206922);
    assert_int_equal(default_opset(m), 13);
    assert_int_equal(count_op(m, "Conv"), 2);
    assert_int_equal(count_op(m, "Gemm"), 2);
    assert_int_equal(m->n_inputs, 1);
    assert_string_equal(m->inputs[0].name, "image");
    assert_int_equal(m->inputs[0].dtype, SMELT_DT_F32);
    assert_int_equal(m->inputs[0].ndim, 4);
    assert_true(m->inputs[0].dims[0] == -1 && m->inputs[0].dims[1] == 1 && m->inputs[0].dims[2] == 28 && m->inputs[0].dims[3] == 28);
    assert_string_equal(m->outputs[0].name, "logits");
    assert_true(m->outputs[0].ndim == 2 && m->outputs[0].dims[1] == 10);
    smelt_model_free(m);
}

/* ---- single TensorProto files ---- */

static void tensor_pb(void **state)
{
    (void)state;
    if (access(ABS_DIR "/input_0.pb", R_OK) != 0 || access(ABS_DIR "/output_0.pb", R_OK) != 0) {
        print_message("skipped: " ABS_DIR " not found (Debian package libonnx-testdata)\n");
        skip();
    }
    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "pb");
    smelt_tensor *t = NULL;
    smelt_err *err = onnx_read_tensor_pb(ABS_DIR "/input_0.pb", m, NULL, &t);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_string_equal(t->name, "x"); /* the proto's own name */
    err = onnx_read_tensor_pb(ABS_DIR "/output_0.pb", m, "want", NULL);
    if (err) fail_msg("%s", smelt_err_msg(err));
    const smelt_tensor *x = find(m, "x"), *y = find(m, "want");
    assert_int_equal(x->dtype, SMELT_DT_F32);
    assert_int_equal(y->dtype, SMELT_DT_F32);
    assert_int_equal(x->ndim, 3);
    assert_true(x->shape[0] == 3 && x->shape[1] == 4 && x->shape[2] == 5);
    assert_memory_equal(x->shape, y->shape, sizeof x->shape);
    assert_int_equal(x->nbytes, 60 * sizeof(float));
    const float *xv = x->data, *yv = y->data;
    int negatives = 0;
    for (int i = 0; i < 60; i++) {
        negatives += xv[i] < 0;
        if (fabsf(xv[i]) != yv[i]) fail_msg("element %d: |%g| is not %g", i, (double)xv[i], (double)yv[i]);
    }
    assert_true(negatives > 0);
    /* a second tensor of the same name is refused, naming the file */
    err = onnx_read_tensor_pb(ABS_DIR "/output_0.pb", m, "x", NULL);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "output_0.pb: tensor 'x' appears twice"));
    smelt_err_free(err);
    smelt_model_free(m);
}

/* Built TensorProto files: external data relative to the .pb, no name, truncation, a missing file. */
static void tensor_pb_built(void **state)
{
    (void)state;
    const int64_t d3 = 3;
    const int32_t v[3] = {-1, 0, 1 << 30};
    write_bytes(tmp_path("pb.bin"), v, sizeof v);
    Onnx__TensorProto *tp = ob_tensor("ext", T_INT32, 1, &d3);
    ob_external(tp, "pb.bin", "0", "12");
    size_t len = onnx__tensor_proto__get_packed_size(tp);
    uint8_t *buf = ob_alloc(len);
    onnx__tensor_proto__pack(tp, buf);
    write_bytes(tmp_path("ext.pb"), buf, len);
    free(buf);
    onnx__tensor_proto__free_unpacked(tp, NULL);

    tp = ob_tensor(NULL, T_INT32, 1, &d3);
    ob_int32s(tp, 3, v);
    len = onnx__tensor_proto__get_packed_size(tp);
    buf = ob_alloc(len);
    onnx__tensor_proto__pack(tp, buf);
    write_bytes(tmp_path("noname.pb"), buf, len);
    free(buf);
    onnx__tensor_proto__free_unpacked(tp, NULL);

    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "pb");
    smelt_tensor *t;
    smelt_err *err = onnx_read_tensor_pb(tmp_path("ext.pb"), m, NULL, &t);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_string_equal(t->name, "ext");
    assert_int_equal(t->dtype, SMELT_DT_I32);
    assert_memory_equal(t->data, v, sizeof v);

    err = onnx_read_tensor_pb(tmp_path("noname.pb"), m, NULL, &t);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "noname.pb: the tensor has no name and none was given"));
    assert_null(t);
    smelt_err_free(err);
    err = onnx_read_tensor_pb(tmp_path("noname.pb"), m, "given", &t);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_memory_equal(t->data, v, sizeof v);

    err = onnx_read_tensor_pb("tests/data/bad/onnx_tensor_truncated.pb", m, NULL, NULL);
    assert_non_null(err);
    assert_string_equal(smelt_err_msg(err), "tests/data/bad/onnx_tensor_truncated.pb: not a valid ONNX TensorProto (truncated or corrupt)");
    smelt_err_free(err);
    err = onnx_read_tensor_pb(tmp_path("missing.pb"), m, NULL, NULL);
    assert_non_null(err);
    assert_int_equal(smelt_err_kind_of(err), SMELT_E_IO);
    assert_non_null(strstr(smelt_err_msg(err), "missing.pb: cannot open"));
    smelt_err_free(err);
    assert_int_equal(m->n_tensors, 2);
    smelt_model_free(m);
}

/* ---- corrupt files ---- */

typedef struct {
    const char *file;
    smelt_err_kind kind;
    const char *message; /* substring the error must contain */
} bad_case;

static const bad_case bad_cases[] = {
    {"onnx_truncated", SMELT_E_CORRUPT, "not a valid ONNX protobuf (truncated or corrupt)"},
    {"onnx_garbage", SMELT_E_CORRUPT, "not a valid ONNX protobuf (truncated or corrupt)"},
    {"onnx_empty", SMELT_E_CORRUPT, "no graph: not an ONNX model (or an empty file)"},
    {"onnx_raw_size", SMELT_E_CORRUPT, "initializer 'fc.weight': raw_data is 100 bytes, expected 512 for float [128, 1]"},
    {"onnx_short_typed", SMELT_E_CORRUPT, "initializer 'w': float_data has 3 elements, expected 4 for float [2, 2]"},
    {"onnx_wrong_field", SMELT_E_CORRUPT, "initializer 'w': has int64_data but its type is float, which is stored in float_data"},
    {"onnx_raw_and_typed", SMELT_E_CORRUPT, "initializer 'w': has both raw_data and a typed data field"},
    {"onnx_dtype_string", SMELT_E_UNSUPPORTED, "initializer 'names': data type string (8) is not supported"},
    {"onnx_dtype_unknown", SMELT_E_UNSUPPORTED, "initializer 'w': unknown data type 99"},
    {"onnx_no_dtype", SMELT_E_CORRUPT, "initializer 'w': data type is undefined"},
    {"onnx_dims_overflow", SMELT_E_CORRUPT, "initializer 'w': dims overflow"},
    {"onnx_dims_negative", SMELT_E_CORRUPT, "initializer 'w': dims[0] is -1, expected a non-negative size"},
    {"onnx_too_many_dims", SMELT_E_UNSUPPORTED, "initializer 'w': 9 dimensions, at most 8 supported"},
    {"onnx_int8_range", SMELT_E_CORRUPT, "initializer 'q': int32_data[1] is 300, out of range for int8"},
    {"onnx_uint32_range", SMELT_E_CORRUPT, "initializer 'u': uint64_data[1] is 8589934592, out of range for uint32"},
    {"onnx_segment", SMELT_E_UNSUPPORTED, "initializer 'w': segmented tensors are not supported"},
    {"onnx_init_no_name", SMELT_E_CORRUPT, "initializer #0 has no name"},
    {"onnx_dup_initializer", SMELT_E_CORRUPT, "initializer 'w' appears twice"},
    {"onnx_ext_absolute", SMELT_E_CORRUPT, "initializer 'w': external data location '/etc/passwd' is an absolute path; it must be relative to the model's folder"},
    {"onnx_ext_escape", SMELT_E_CORRUPT, "initializer 'w': external data location '../onnx_ext.bin' escapes the model's folder"},
    {"onnx_ext_escape_inner", SMELT_E_CORRUPT, "external data location 'sub/../../bad/onnx_ext.bin' escapes the model's folder"},
    {"onnx_ext_oob", SMELT_E_TRUNCATED, "external data at offset 8, length 16 runs past the end of 'onnx_ext.bin' (16 bytes)"},
    {"onnx_ext_offset_past", SMELT_E_TRUNCATED, "external data offset 100 is past the end of 'onnx_ext.bin' (16 bytes)"},
    {"onnx_ext_length", SMELT_E_CORRUPT, "external data is 8 bytes, expected 16 for float [4]"},
    {"onnx_ext_bad_offset", SMELT_E_CORRUPT, "external data offset '-4' is not a non-negative integer"},
    {"onnx_ext_missing_file", SMELT_E_IO, "initializer 'w': external data: tests/data/bad/onnx_no_such_file.bin: cannot open"},
    {"onnx_ext_no_location", SMELT_E_CORRUPT, "data_location is EXTERNAL but external_data has no 'location'"},
    {"onnx_ext_and_raw", SMELT_E_CORRUPT, "data_location is EXTERNAL but the tensor also holds data in the file"},
    {"onnx_input_dim", SMELT_E_CORRUPT, "graph input 'z': dim 0 is -3, expected a non-negative size or a name"},
    {"onnx_input_sequence", SMELT_E_UNSUPPORTED, "graph input 's': only tensor types are supported"},
    {"onnx_dangling_input", SMELT_E_CORRUPT, "node 'r' (Relu): input 'nowhere' is not a tensor, a graph input or an earlier output"},
    {"onnx_no_op_type", SMELT_E_CORRUPT, "node 'nop': no op_type"},
    {"onnx_constant_bad", SMELT_E_CORRUPT, "node 'c' (Constant): attribute 'value': raw_data is 12 bytes, expected 16 for float [4]"},
    {"onnx_attr_sparse", SMELT_E_UNSUPPORTED, "node 'c' (Constant): attribute 'sparse_value' is of type SPARSE_TENSOR, which is not supported"},
};

static void corrupt_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/bad/%s.onnx", bad_cases[i].file);
        smelt_model *m = (smelt_model *)1;
        smelt_err *err = onnx_read(path, &m);
        if (!err) fail_msg("%s: read succeeded", path);
        const char *msg = smelt_err_msg(err);
        if (!strstr(msg, bad_cases[i].message) || strncmp(msg, path, strlen(path)) != 0 || msg[strlen(path)] != ':')
            fail_msg("%s: message '%s' lacks '%s' or does not start with the path", path, msg, bad_cases[i].message);
        if (strchr(msg, '\n')) fail_msg("%s: message has more than one line: '%s'", path, msg);
        if (smelt_err_kind_of(err) != bad_cases[i].kind) fail_msg("%s: kind %d, expected %d ('%s')", path, smelt_err_kind_of(err), bad_cases[i].kind, msg);
        assert_null(m);
        smelt_err_free(err);
    }
}

/* Every onnx_* file under tests/data/bad has a case above (a new fixture without a test fails). */
static void every_bad_file_tested(void **state)
{
    (void)state;
    FILE *p = popen("ls tests/data/bad", "r");
    assert_non_null(p);
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        size_t len = strlen(line);
        if (strncmp(line, "onnx_", 5) != 0 || len < 5 || strcmp(line + len - 5, ".onnx") != 0) continue;
        line[len - 5] = 0;
        bool found = false;
        for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) found |= strcmp(bad_cases[i].file, line) == 0;
        if (!found) fail_msg("tests/data/bad/%s.onnx has no case in corrupt_files", line);
        n++;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(n, (int)(sizeof bad_cases / sizeof bad_cases[0]));
}

/* The external data checks do not depend on the working directory: a model named by an absolute
 * path or from its own folder resolves locations against its folder. */
static void external_from_other_cwd(void **state)
{
    (void)state;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    const float f4[4] = {1, 2, 3, 4};
    char abs_path[4200];
    snprintf(abs_path, sizeof abs_path, "%s/tests/data/bad/onnx_ext_length.onnx", cwd);
    /* from elsewhere, by absolute path: the same error, about the same file */
    assert_int_equal(chdir(tmpdir), 0);
    smelt_model *m;
    smelt_err *err = onnx_read(abs_path, &m);
    int rc = chdir(cwd);
    assert_int_equal(rc, 0);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "external data is 8 bytes, expected 16 for float [4]"));
    smelt_err_free(err);
    /* a model in the working directory itself (no folder in its path) */
    Onnx__ModelProto *mp = base_model(13);
    const int64_t d4 = 4;
    Onnx__TensorProto *t = ob_tensor("w", T_FLOAT, 1, &d4);
    ob_external(t, "here.bin", NULL, NULL);
    add_init(mp, t);
    write_model(tmp_path("here.onnx"), mp);
    write_bytes(tmp_path("here.bin"), f4, sizeof f4);
    assert_int_equal(chdir(tmpdir), 0);
    err = onnx_read("here.onnx", &m);
    rc = chdir(cwd);
    assert_int_equal(rc, 0);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_memory_equal(find(m, "w")->data, f4, sizeof f4);
    smelt_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(typed_equals_raw),  cmocka_unit_test(external_data),  cmocka_unit_test(attributes),
        cmocka_unit_test(opsets_and_dims),   cmocka_unit_test(tied_embeddings), cmocka_unit_test(fixture_models),
        cmocka_unit_test(tensor_pb),         cmocka_unit_test(tensor_pb_built), cmocka_unit_test(corrupt_files),
        cmocka_unit_test(every_bad_file_tested), cmocka_unit_test(external_from_other_cwd),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
