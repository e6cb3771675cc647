/* The .smelt artifact: a model using every IR feature (every attribute type, a TENSOR constant,
 * non-UTF-8 strings, NaN/Inf floats, a group-quantized int4 weight with scales and zero points,
 * symbolic dims) written and read back identically; tensors mmapped, 64-byte aligned; the ONNX
 * CNN's graph kept node for node; and every kind of damage (manifest fields, entries missing,
 * truncation, flipped weight bytes, a compressed tensors.bin) refused with an error naming the
 * problem. Damaged artifacts are made from a good one with libzip, so each differs from a valid
 * file in exactly one way. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>
#include <cmocka.h>

#include "formats/artifact.h"
#include "formats/onnx.h"

static char tmpdir[] = "/tmp/smelt-art-XXXXXX";
static char good[96];

static void *tensor(smelt_model *m, const char *name, smelt_dtype dt, int ndim, const int64_t *shape)
{
    smelt_tensor *t;
    size_t nb = smelt_dtype_nbytes(dt, (uint64_t)smelt_shape_numel(ndim, shape));
    void *p = smelt_model_alloc(m, nb);
    assert_non_null(p);
    assert_null(smelt_model_add_tensor(m, name, dt, ndim, shape, p, &t));
    for (size_t i = 0; i < nb; i++) ((uint8_t *)p)[i] = (uint8_t)(i * 131 + strlen(name)); /* distinct bytes in every tensor */
    return p;
}

/* A small graph model exercising everything the artifact must carry. */
static smelt_model *make_model(void)
{
    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "onnx");
    int64_t ws[2] = {64, 32}, qs[2] = {8, 64}, ss[2] = {8, 2}, bs[1] = {8};
    tensor(m, "w", SMELT_DT_F32, 2, ws); /* 8 KiB: its bytes lie past the probe opening reads */
    tensor(m, "q", SMELT_DT_U4, 2, qs);
    tensor(m, "q.scale", SMELT_DT_F16, 2, ss);
    tensor(m, "q.zero", SMELT_DT_U8, 2, ss);
    tensor(m, "b", SMELT_DT_BF16, 1, bs);
    smelt_tensor *q = smelt_model_find(m, "q");
    q->quant = (smelt_quant){SMELT_QUANT_GROUP, 4, 0, 32, false, strdup("q.scale"), strdup("q.zero"), SMELT_DT_BF16};

    m->n_inputs = m->n_outputs = 1;
    m->inputs = calloc(1, sizeof *m->inputs);
    m->outputs = calloc(1, sizeof *m->outputs);
    m->inputs[0] = (smelt_value){.name = strdup("x"), .dtype = SMELT_DT_F32, .ndim = 2, .dims = {-1, 32}, .dim_names = {strdup("batch")}};
    m->outputs[0] = (smelt_value){.name = strdup("y"), .dtype = SMELT_DT_F32, .ndim = 2, .dims = {-1, 64}, .dim_names = {strdup("batch")}};
    m->n_opsets = 2;
    m->opsets = calloc(2, sizeof *m->opsets);
    m->opsets[0] = (smelt_opset){strdup(""), 17};
    m->opsets[1] = (smelt_opset){strdup("com.example"), 3};

    const char *in[3] = {"x", "w", ""}, *out[1] = {"h"};
    smelt_node *n = smelt_model_add_node(m, "Gemm", "", "gemm0", 3, in, 1, out);
    assert_true(smelt_node_set_float(n, "alpha", 0.1));
    assert_true(smelt_node_set_float(n, "nan", NAN));
    assert_true(smelt_node_set_float(n, "neg_inf", -INFINITY));
    assert_true(smelt_node_set_int(n, "transB", INT64_MIN));
    smelt_attr *a = smelt_node_add_attr(n, "raw", SMELT_ATTR_STRING);
    a->s_len = 4;
    a->s = malloc(5);
    memcpy(a->s, "\xff\x00z\x80", 5); /* not UTF-8, with a NUL inside */
    assert_true(smelt_node_set_string(n, "mode", "caf\xc3\xa9"));
    a = smelt_node_add_attr(n, "scales", SMELT_ATTR_FLOATS);
    a->n = 3;
    a->floats = malloc(3 * sizeof(float));
    a->floats[0] = 1.0f / 3.0f, a->floats[1] = INFINITY, a->floats[2] = -0.0f;
    a = smelt_node_add_attr(n, "perm", SMELT_ATTR_INTS);
    a->n = 2;
    a->ints = malloc(2 * sizeof(int64_t));
    a->ints[0] = 1, a->ints[1] = -9000000000LL;
    a = smelt_node_add_attr(n, "names", SMELT_ATTR_STRINGS);
    a->n = 2;
    a->strings = calloc(2, sizeof(char *));
    a->strings[0] = strdup("plain");
    a->strings[1] = strdup("\xfe\xfe");
    a = smelt_node_add_attr(n, "value", SMELT_ATTR_TENSOR);
    a->tensor = calloc(1, sizeof *a->tensor);
    a->tensor->name = strdup("const0");
    a->tensor->dtype = SMELT_DT_I64;
    a->tensor->ndim = 1;
    a->tensor->shape[0] = 3;
    a->tensor->nbytes = 24;
    int64_t *cv = smelt_model_alloc(m, 24);
    cv[0] = 7, cv[1] = -1, cv[2] = 1LL << 40;
    a->tensor->data = cv;
    a = smelt_node_add_attr(n, "body", SMELT_ATTR_GRAPH);
    a->n = 2;
    const char *in2[2] = {"h", "b"}, *out2[1] = {"y"};
    smelt_model_add_node(m, "Add", "com.example", "", 2, in2, 1, out2);
    json_object_set_new(m->meta, "producer_name", json_string("test"));
    json_object_set_new(m->meta, "sources", json_pack("[{s:s, s:i}]", "path", "model.onnx", "bytes", 1234));
    assert_null(smelt_model_validate(m));
    return m;
}

static void same_attr(const smelt_attr *x, const smelt_attr *y)
{
    assert_string_equal(x->name, y->name);
    assert_int_equal(x->type, y->type);
    switch (x->type) {
    case SMELT_ATTR_FLOAT:
        if (isnan(x->f)) assert_true(isnan(y->f));
        else assert_memory_equal(&x->f, &y->f, sizeof x->f);
        break;
    case SMELT_ATTR_INT: assert_true(x->i == y->i); break;
    case SMELT_ATTR_STRING:
        assert_int_equal(x->s_len, y->s_len);
        assert_memory_equal(x->s, y->s, x->s_len + 1);
        break;
    case SMELT_ATTR_FLOATS:
        assert_int_equal(x->n, y->n);
        assert_memory_equal(x->floats, y->floats, x->n * sizeof(float)); /* bit for bit: -0.0 stays -0.0 */
        break;
    case SMELT_ATTR_INTS:
        assert_int_equal(x->n, y->n);
        assert_memory_equal(x->ints, y->ints, x->n * sizeof(int64_t));
        break;
    case SMELT_ATTR_STRINGS:
        assert_int_equal(x->n, y->n);
        for (size_t i = 0; i < x->n; i++) assert_string_equal(x->strings[i], y->strings[i]);
        break;
    case SMELT_ATTR_TENSOR:
        assert_string_equal(x->tensor->name, y->tensor->name);
        assert_int_equal(x->tensor->dtype, y->tensor->dtype);
        assert_int_equal(x->tensor->nbytes, y->tensor->nbytes);
        assert_memory_equal(x->tensor->data, y->tensor->data, x->tensor->nbytes);
        assert_int_equal((uintptr_t)y->tensor->data % 64, 0);
        break;
    case SMELT_ATTR_GRAPH: assert_int_equal(x->n, y->n); break;
    }
}

static void same_model(const smelt_model *a, const smelt_model *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_string_equal(a->arch, b->arch);
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (int i = 0; i < a->n_tensors; i++) {
        const smelt_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->ndim, y->ndim);
        assert_memory_equal(x->shape, y->shape, sizeof x->shape);
        assert_int_equal(x->nbytes, y->nbytes);
        assert_memory_equal(x->data, y->data, x->nbytes);
        assert_int_equal((uintptr_t)y->data % 64, 0);
        assert_int_equal(x->quant.kind, y->quant.kind);
        if (x->quant.kind) {
            assert_int_equal(x->quant.bits, y->quant.bits);
            assert_int_equal(x->quant.group_size, y->quant.group_size);
            assert_int_equal(x->quant.symmetric, y->quant.symmetric);
            assert_int_equal(x->quant.orig_dtype, y->quant.orig_dtype);
            assert_string_equal(x->quant.scale, y->quant.scale);
            assert_string_equal(x->quant.zero, y->quant.zero);
        }
    }
    assert_int_equal(a->n_nodes, b->n_nodes);
    for (int i = 0; i < a->n_nodes; i++) {
        const smelt_node *x = &a->nodes[i], *y = &b->nodes[i];
        assert_string_equal(x->op, y->op);
        assert_string_equal(x->domain, y->domain);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->n_inputs, y->n_inputs);
        assert_int_equal(x->n_outputs, y->n_outputs);
        for (int k = 0; k < x->n_inputs; k++) assert_string_equal(x->inputs[k], y->inputs[k]);
        for (int k = 0; k < x->n_outputs; k++) assert_string_equal(x->outputs[k], y->outputs[k]);
        assert_int_equal(x->n_attrs, y->n_attrs);
        for (int k = 0; k < x->n_attrs; k++) same_attr(&x->attrs[k], &y->attrs[k]);
    }
    assert_int_equal(a->n_inputs, b->n_inputs);
    assert_int_equal(a->n_outputs, b->n_outputs);
    for (int i = 0; i < a->n_inputs; i++) {
        assert_string_equal(a->inputs[i].name, b->inputs[i].name);
        assert_int_equal(a->inputs[i].dtype, b->inputs[i].dtype);
        assert_memory_equal(a->inputs[i].dims, b->inputs[i].dims, sizeof a->inputs[i].dims);
        for (int d = 0; d < a->inputs[i].ndim; d++)
            if (a->inputs[i].dim_names[d]) assert_string_equal(a->inputs[i].dim_names[d], b->inputs[i].dim_names[d]);
            else assert_null(b->inputs[i].dim_names[d]);
    }
    assert_int_equal(a->n_opsets, b->n_opsets);
    for (int i = 0; i < a->n_opsets; i++) {
        assert_string_equal(a->opsets[i].domain, b->opsets[i].domain);
        assert_int_equal(a->opsets[i].version, b->opsets[i].version);
    }
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(good, sizeof good, "%s/good.smelt", tmpdir);
    smelt_model *m = make_model();
    artifact_write_opts wo = {"cpu", "smelt test", "9.9"};
    smelt_err *err = artifact_write(good, m, &wo);
    smelt_model_free(m);
    if (err) {
        fprintf(stderr, "%s\n", smelt_err_msg(err));
        smelt_err_free(err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd);
}

static void every_feature_round_trips(void **state)
{
    (void)state;
    smelt_model *orig = make_model(), *back = NULL;
    smelt_err *err = artifact_read(good, &back);
    if (err) fail_msg("%s", smelt_err_msg(err));
    same_model(orig, back);
    assert_string_equal(json_string_value(json_object_get(back->meta, "producer_name")), "test");
    /* the artifact is now the source; what it was made from is its parent */
    json_t *src = json_array_get(json_object_get(back->meta, "sources"), 0);
    assert_string_equal(json_string_value(json_object_get(src, "path")), good);
    assert_int_equal(strlen(json_string_value(json_object_get(src, "manifest_sha256"))), 64);
    json_t *parent = json_object_get(back->meta, "parent_provenance");
    assert_string_equal(json_string_value(json_object_get(parent, "command")), "smelt test");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(parent, "sources"), 0), "path")), "model.onnx");
    int n = 0;
    if ((err = artifact_verify(good, &n))) fail_msg("%s", smelt_err_msg(err));
    assert_int_equal(n, 5);

    /* written again from what was read: same tensors, and the provenance chain grows by one */
    char again[128];
    snprintf(again, sizeof again, "%s/again.smelt", tmpdir);
    artifact_write_opts wo = {"cpu", "smelt again", "9.9"};
    assert_null(artifact_write(again, back, &wo));
    smelt_model *third = NULL;
    assert_null(artifact_read(again, &third));
    same_model(orig, third);
    parent = json_object_get(third->meta, "parent_provenance");
    assert_string_equal(json_string_value(json_object_get(parent, "command")), "smelt again");
    assert_string_equal(json_string_value(json_object_get(json_object_get(parent, "parent"), "command")), "smelt test");
    smelt_model_free(third);
    smelt_model_free(back);
    smelt_model_free(orig);
}

static void onnx_cnn_round_trips(void **state)
{
    (void)state;
    smelt_model *orig = NULL, *back = NULL;
    assert_null(onnx_read("models/fashion-cnn/model.onnx", &orig));
    char path[128];
    snprintf(path, sizeof path, "%s/cnn.smelt", tmpdir);
    artifact_write_opts wo = {"any", "t", "t"};
    smelt_err *err = artifact_write(path, orig, &wo);
    if (err) fail_msg("%s", smelt_err_msg(err));
    if ((err = artifact_read(path, &back))) fail_msg("%s", smelt_err_msg(err));
    same_model(orig, back);
    assert_int_equal(smelt_model_param_count(back), 206922);
    smelt_model_free(orig);
    smelt_model_free(back);
}

/* ---- damage ---- */

static char *slurp_entry(const char *path, const char *name)
{
    zip_t *za = zip_open(path, ZIP_RDONLY, NULL);
    assert_non_null(za);
    zip_stat_t st;
    assert_int_equal(zip_stat(za, name, 0, &st), 0);
    char *buf = calloc(1, st.size + 1);
    zip_file_t *f = zip_fopen(za, name, 0);
    assert_int_equal(zip_fread(f, buf, st.size), (zip_int64_t)st.size);
    zip_fclose(f);
    zip_discard(za);
    return buf;
}

/* Copies the good artifact to a new name and returns that name (static buffer). */
static const char *copy_good(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s.smelt", tmpdir, name);
    char cmd[320];
    snprintf(cmd, sizeof cmd, "cp %s %s", good, path);
    assert_int_equal(system(cmd), 0);
    return path;
}

/* Replaces one JSON entry of a copy of the good artifact with edit(json). */
static const char *with_json(const char *name, const char *entry, void (*edit)(json_t *))
{
    const char *path = copy_good(name);
    char *text = slurp_entry(path, entry);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    edit(j);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    zip_t *za = zip_open(path, 0, NULL);
    zip_source_t *src = zip_source_buffer(za, text, strlen(text), 1);
    assert_true(zip_file_replace(za, (zip_uint64_t)zip_name_locate(za, entry, 0), src, 0) == 0);
    assert_int_equal(zip_close(za), 0);
    return path;
}

static json_t *tensor0(json_t *man) { return json_array_get(json_object_get(man, "tensors"), 0); }
static void misaligned(json_t *j) { json_object_set_new(tensor0(j), "offset", json_integer(8)); }
static void past_end(json_t *j) { json_object_set_new(tensor0(j), "offset", json_integer(1 << 20)); }
static void overlap(json_t *j) { json_object_set_new(json_array_get(json_object_get(j, "tensors"), 4), "offset", json_integer(64)); }
static void bad_dtype(json_t *j) { json_object_set_new(tensor0(j), "dtype", json_string("f99")); }
static void bad_nbytes(json_t *j) { json_object_set_new(tensor0(j), "nbytes", json_integer(100)); }
static void newer(json_t *j) { json_object_set_new(j, "format_version", json_integer(99)); }
static void no_tensors(json_t *j) { json_object_del(j, "tensors"); }
static void shape_string(json_t *j) { json_object_set_new(tensor0(j), "shape", json_string("[64, 32]")); }
static void bad_scale(json_t *j)
{
    json_t *q = json_object_get(json_array_get(json_object_get(j, "tensors"), 1), "quant");
    json_object_set_new(q, "scale", json_string("nope"));
}
static void bad_bits(json_t *j)
{
    json_t *q = json_object_get(json_array_get(json_object_get(j, "tensors"), 1), "quant");
    json_object_set_new(q, "bits", json_integer(8));
}
static void moved_data(json_t *j) { json_object_set_new(j, "data_offset", json_integer(128)); }
static void dangling_input(json_t *j)
{
    json_t *ins = json_object_get(json_array_get(json_object_get(j, "nodes"), 1), "inputs");
    json_array_set_new(ins, 1, json_string("ghost"));
}
static void const_out_of_range(json_t *j)
{
    json_t *attrs = json_object_get(json_array_get(json_object_get(j, "nodes"), 0), "attrs");
    for (size_t i = 0; i < json_array_size(attrs); i++)
        if (json_object_get(json_array_get(attrs, i), "constant")) json_object_set_new(json_array_get(attrs, i), "constant", json_integer(5));
}
static void bad_b64(json_t *j)
{
    json_t *attrs = json_object_get(json_array_get(json_object_get(j, "nodes"), 0), "attrs");
    for (size_t i = 0; i < json_array_size(attrs); i++)
        if (json_object_get(json_array_get(attrs, i), "b64")) json_object_set_new(json_array_get(attrs, i), "b64", json_string("!!!!"));
}

static void expect_read_error(const char *path, const char *needle)
{
    smelt_model *m = NULL;
    smelt_err *err = artifact_read(path, &m);
    if (!err) fail_msg("%s: read succeeded, expected an error containing '%s'", path, needle);
    assert_null(m);
    if (!strstr(smelt_err_msg(err), needle)) fail_msg("error '%s' lacks '%s'", smelt_err_msg(err), needle);
    if (!strstr(smelt_err_msg(err), path)) fail_msg("error '%s' does not name the file", smelt_err_msg(err));
    smelt_err_free(err);
}

static void damaged_manifest(void **state)
{
    (void)state;
    expect_read_error(with_json("misaligned", "manifest.json", misaligned), "tensors[0] 'w': offset 8 is not a multiple of 64");
    expect_read_error(with_json("past_end", "manifest.json", past_end), "run past the end of tensors.bin");
    expect_read_error(with_json("overlap", "manifest.json", overlap), "'b' overlaps tensors[0] 'w'");
    expect_read_error(with_json("bad_dtype", "manifest.json", bad_dtype), "unknown dtype 'f99'");
    expect_read_error(with_json("bad_nbytes", "manifest.json", bad_nbytes), "nbytes 100, expected 8192");
    expect_read_error(with_json("newer", "manifest.json", newer), "format_version 99 was written by a newer smelt");
    expect_read_error(with_json("no_tensors", "manifest.json", no_tensors), "manifest.json: missing 'tensors'");
    expect_read_error(with_json("shape_string", "manifest.json", shape_string), "'shape' is a string, expected an array");
    expect_read_error(with_json("bad_scale", "manifest.json", bad_scale), "scale tensor 'nope' is not in the artifact");
    expect_read_error(with_json("bad_bits", "manifest.json", bad_bits), "8 bits do not fit dtype u4");
    expect_read_error(with_json("moved_data", "manifest.json", moved_data), "bytes are not at data_offset 128");
}

static void damaged_graph(void **state)
{
    (void)state;
    expect_read_error(with_json("dangling", "graph.json", dangling_input), "input 'ghost' is not a tensor, a graph input or an earlier output");
    expect_read_error(with_json("const_range", "graph.json", const_out_of_range), "constant 5 is not in the manifest");
    expect_read_error(with_json("bad_b64", "graph.json", bad_b64), "malformed base64");

    const char *path = copy_good("no_graph");
    zip_t *za = zip_open(path, 0, NULL);
    assert_int_equal(zip_delete(za, (zip_uint64_t)zip_name_locate(za, "graph.json", 0)), 0);
    assert_int_equal(zip_close(za), 0);
    expect_read_error(path, "no graph.json in the artifact");

    path = copy_good("not_json");
    za = zip_open(path, 0, NULL);
    zip_source_t *src = zip_source_buffer(za, "{\"nodes\": [", 11, 0);
    assert_int_equal(zip_file_replace(za, (zip_uint64_t)zip_name_locate(za, "graph.json", 0), src, 0), 0);
    assert_int_equal(zip_close(za), 0);
    expect_read_error(path, "graph.json is not valid JSON");
}

static void damaged_container(void **state)
{
    (void)state;
    /* half the file: the zip's central directory is gone */
    const char *path = copy_good("truncated");
    FILE *f = fopen(path, "r+");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_int_equal(truncate(path, size / 2), 0);
    expect_read_error(path, "not a valid .smelt artifact (zip)");

    path = copy_good("empty");
    assert_int_equal(truncate(path, 0), 0);
    expect_read_error(path, "empty file, not a .smelt artifact");

    path = copy_good("deflated");
    zip_t *za = zip_open(path, 0, NULL);
    assert_int_equal(zip_set_file_compression(za, 0, ZIP_CM_DEFLATE, 0), 0);
    assert_int_equal(zip_close(za), 0);
    expect_read_error(path, "tensors.bin is compressed or encrypted, expected stored as is");

    expect_read_error(tmpdir, "not a regular file");
}

/* A flipped weight byte: the model still opens (no hashing on load), verify names the tensor. */
static void flipped_weight_byte(void **state)
{
    (void)state;
    const char *path = copy_good("flipped");
    char shown[128];
    snprintf(shown, sizeof shown, "%s", path);
    FILE *f = fopen(shown, "r+");
    /* tensor 'w' spans tensors.bin [0, 8192), which starts at byte 64: flip its last byte */
    fseek(f, 64 + 8191, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 64 + 8191, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    smelt_model *m = NULL;
    assert_null(artifact_read(shown, &m));
    smelt_model_free(m);
    int n = -1;
    smelt_err *err = artifact_verify(shown, &n);
    assert_non_null(err);
    if (!strstr(smelt_err_msg(err), "tensors[0] 'w': SHA-256")) fail_msg("%s", smelt_err_msg(err));
    assert_int_equal(n, 0);
    smelt_err_free(err);
}

/* A failed write leaves nothing: a missing folder, and a model that cannot be written. */
static void failed_write_leaves_nothing(void **state)
{
    (void)state;
    smelt_model *m = make_model();
    char path[160];
    snprintf(path, sizeof path, "%s/no/such/x.smelt", tmpdir);
    artifact_write_opts wo = {"any", "t", "t"};
    smelt_err *err = artifact_write(path, m, &wo);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), path));
    smelt_err_free(err);

    snprintf(path, sizeof path, "%s/bad-name.smelt", tmpdir);
    free(m->nodes[0].name);
    m->nodes[0].name = strdup("bad\xff");
    err = artifact_write(path, m, &wo);
    assert_non_null(err);
    assert_string_equal(smelt_err_msg(err), strcat(strcpy((char[200]){0}, path), ": a node name is not valid UTF-8"));
    smelt_err_free(err);
    assert_int_equal(access(path, F_OK), -1);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp- >/dev/null", tmpdir);
    assert_int_not_equal(system(cmd), 0); /* no temporary file left either */
    smelt_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_feature_round_trips), cmocka_unit_test(onnx_cnn_round_trips), cmocka_unit_test(damaged_manifest),
        cmocka_unit_test(damaged_graph),             cmocka_unit_test(damaged_container),    cmocka_unit_test(flipped_weight_byte),
        cmocka_unit_test(failed_write_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
