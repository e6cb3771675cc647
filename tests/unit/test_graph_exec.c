/* The graph executor (runtime/graph/): the two fixture ONNX models against their references
 * (tiny-llama logits from PyTorch; fashion-cnn accuracy on the Fashion-MNIST test set and its first
 * eight logits), plus hand-built graphs for broadcasting, buffer reuse across runs, and the errors
 * for an unsupported op, an unsupported attribute value and inconsistent shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/ir.h"
#include "evals/idx.h"
#include "formats/onnx.h"
#include "formats/safetensors.h"
#include "runtime/graph/graph_exec.h"

static void ok(smelt_err *err)
{
    if (err) fail_msg("%s", smelt_err_msg(err));
}

/* ---- hand-built graphs ---- */

static void add_io(smelt_value **vs, int *n, const char *name, smelt_dtype dt, int ndim)
{
    *vs = realloc(*vs, (size_t)(*n + 1) * sizeof **vs);
    assert_non_null(*vs);
    smelt_value *v = &(*vs)[(*n)++];
    memset(v, 0, sizeof *v);
    v->name = strdup(name);
    v->dtype = dt;
    v->ndim = ndim;
    for (int d = 0; d < ndim; d++) v->dims[d] = -1;
}

/* A model with f32 inputs a, b (any shape) and one node `op` named `name` producing y. */
static smelt_model *binary_model(const char *op, const char *name)
{
    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "onnx");
    assert_non_null(m);
    add_io(&m->inputs, &m->n_inputs, "a", SMELT_DT_F32, 0);
    add_io(&m->inputs, &m->n_inputs, "b", SMELT_DT_F32, 0);
    add_io(&m->outputs, &m->n_outputs, "y", SMELT_DT_F32, 0);
    m->inputs[0].ndim = m->inputs[1].ndim = -1; /* rank not declared: any shape */
    const char *in[2] = {"a", "b"}, *out[1] = {"y"};
    assert_non_null(smelt_model_add_node(m, op, "", name, 2, in, 1, out));
    return m;
}

static smelt_tensor tensor(const char *name, int ndim, const int64_t *shape, float *data)
{
    smelt_tensor t = {.name = (char *)name, .dtype = SMELT_DT_F32, .ndim = ndim, .data = data};
    memcpy(t.shape, shape, (size_t)ndim * sizeof *shape);
    t.nbytes = (size_t)smelt_shape_numel(ndim, shape) * sizeof(float);
    return t;
}

static void broadcast_add(void **state)
{
    (void)state;
    smelt_model *m = binary_model("Add", "add");
    smelt_graph *g = NULL;
    ok(smelt_graph_load(m, &g));
    float a[6] = {0, 10, 20, 30, 40, 50}, b[4] = {1, 2, 3, 4};
    int64_t sa[3] = {2, 3, 1}, sb[1] = {4};
    smelt_tensor in[2] = {tensor("a", 3, sa, a), tensor("b", 1, sb, b)};
    for (int rep = 0; rep < 3; rep++) { /* the pool is reused across runs */
        smelt_tensor *out = NULL;
        int n = 0;
        ok(smelt_graph_run(g, in, 2, &out, &n));
        assert_int_equal(n, 1);
        assert_string_equal(out[0].name, "y");
        assert_int_equal(out[0].dtype, SMELT_DT_F32);
        assert_int_equal(out[0].ndim, 3);
        assert_int_equal(out[0].shape[0], 2);
        assert_int_equal(out[0].shape[1], 3);
        assert_int_equal(out[0].shape[2], 4);
        const float *y = out[0].data;
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 4; j++) assert_float_equal(y[i * 4 + j], a[i] + b[j], 0);
        smelt_graph_outputs_free(out, n);
    }
    /* [3,1] + [1,4] -> [3,4]: both sides broadcast */
    int64_t s31[2] = {3, 1}, s14[2] = {1, 4};
    smelt_tensor in2[2] = {tensor("a", 2, s31, a), tensor("b", 2, s14, b)};
    smelt_tensor *out = NULL;
    int n = 0;
    ok(smelt_graph_run(g, in2, 2, &out, &n));
    assert_int_equal(out[0].ndim, 2);
    assert_int_equal(out[0].shape[0], 3);
    assert_int_equal(out[0].shape[1], 4);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) assert_float_equal(((float *)out[0].data)[i * 4 + j], a[i] + b[j], 0);
    smelt_graph_outputs_free(out, n);
    smelt_graph_free(g);
    smelt_model_free(m);
}

static void unsupported_op(void **state)
{
    (void)state;
    smelt_model *m = binary_model("Foo", "x");
    smelt_graph *g = NULL;
    smelt_err *err = smelt_graph_load(m, &g);
    assert_non_null(err);
    assert_null(g);
    assert_string_equal(smelt_err_msg(err), "node 'x' (Foo): op 'Foo' is not supported");
    assert_int_equal(smelt_err_kind_of(err), SMELT_E_UNSUPPORTED);
    smelt_err_free(err);
    smelt_model_free(m);

    m = binary_model("Pad", "p");
    assert_true(smelt_node_set_string(&m->nodes[0], "mode", "cubic"));
    err = smelt_graph_load(m, &g);
    assert_non_null(err);
    assert_string_equal(smelt_err_msg(err), "node 'p' (Pad): attribute 'mode'='cubic' not supported");
    assert_int_equal(smelt_err_kind_of(err), SMELT_E_UNSUPPORTED);
    smelt_err_free(err);
    smelt_model_free(m);

    m = binary_model("Add", "a1");
    free(m->nodes[0].domain);
    m->nodes[0].domain = strdup("com.example");
    err = smelt_graph_load(m, &g);
    assert_non_null(err);
    assert_string_equal(smelt_err_msg(err), "node 'a1' (Add): op 'Add' of domain 'com.example' is not supported");
    smelt_err_free(err);
    smelt_model_free(m);
}

static void shape_mismatch(void **state)
{
    (void)state;
    float a[6] = {0}, b[4] = {0};
    int64_t sa[2] = {2, 3}, sb[1] = {4}, sb2[2] = {4, 1};
    struct {
        const char *op;
        int64_t *bshape;
        int bnd;
        const char *msg;
    } cases[] = {
        {"Add", sb, 1, "node 'n' (Add): shapes [2, 3] and [4] cannot be broadcast together"},
        {"MatMul", sb2, 2, "node 'n' (MatMul): shapes [2, 3] and [4, 1]: inner dims 3 and 4 differ"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        smelt_model *m = binary_model(cases[k].op, "n");
        smelt_graph *g = NULL;
        ok(smelt_graph_load(m, &g));
        smelt_tensor in[2] = {tensor("a", 2, sa, a), tensor("b", cases[k].bnd, cases[k].bshape, b)};
        smelt_tensor *out = NULL;
        int n = 0;
        smelt_err *err = smelt_graph_run(g, in, 2, &out, &n);
        assert_non_null(err);
        assert_null(out);
        assert_string_equal(smelt_err_msg(err), cases[k].msg);
        assert_int_equal(smelt_err_kind_of(err), SMELT_E_INVALID);
        smelt_err_free(err);
        /* a missing input is an error too, not a crash */
        err = smelt_graph_run(g, in, 1, &out, &n);
        assert_non_null(err);
        assert_string_equal(smelt_err_msg(err), "graph: input 'b' is missing");
        smelt_err_free(err);
        smelt_graph_free(g);
        smelt_model_free(m);
    }
}

/* ---- tiny-llama ---- */

static void tiny_llama(void **state)
{
    (void)state;
    smelt_model *m = NULL, *ref = smelt_model_new(SMELT_KIND_GRAPH, "ref");
    ok(onnx_read("models/tiny-llama/model.onnx", &m));
    ok(safetensors_read("models/tiny-llama/reference.safetensors", ref, NULL));
    smelt_graph *g = NULL;
    ok(smelt_graph_load(m, &g));
    const char *domains[3] = {"prose", "quotes", "code"};
    for (int d = 0; d < 3; d++) {
        char name[64];
        snprintf(name, sizeof name, "ids.%s", domains[d]);
        const smelt_tensor *ids = smelt_model_find(ref, name);
        snprintf(name, sizeof name, "logits.%s", domains[d]);
        const smelt_tensor *want = smelt_model_find(ref, name);
        assert_non_null(ids);
        assert_non_null(want);
        smelt_tensor in = *ids;
        in.name = "input_ids";
        smelt_tensor *out = NULL;
        int n = 0;
        ok(smelt_graph_run(g, &in, 1, &out, &n));
        assert_int_equal(n, 1);
        assert_int_equal(out[0].dtype, SMELT_DT_F32);
        assert_int_equal(out[0].ndim, 3);
        assert_int_equal(out[0].shape[0], 1);
        assert_int_equal(out[0].shape[1], 48);
        assert_int_equal(out[0].shape[2], 4096);
        const float *y = out[0].data, *w = want->data;
        double max_err = 0;
        int argmax_diff = 0;
        for (int t = 0; t < 48; t++) {
            int ay = 0, aw = 0;
            for (int v = 0; v < 4096; v++) {
                double e = fabs((double)y[t * 4096 + v] - w[t * 4096 + v]);
                if (!(e <= max_err)) max_err = e; /* NaN counts as a failure */
                if (y[t * 4096 + v] > y[t * 4096 + ay]) ay = v;
                if (w[t * 4096 + v] > w[t * 4096 + aw]) aw = v;
            }
            argmax_diff += ay != aw;
        }
        printf("tiny-llama %s: max abs error %.3g, argmax differs at %d of 48 positions\n", domains[d], max_err, argmax_diff);
        assert_true(max_err <= 2e-3);
        assert_int_equal(argmax_diff, 0);
        smelt_graph_outputs_free(out, n);
    }
    smelt_graph_free(g);
    smelt_model_free(ref);
    smelt_model_free(m);
}

/* ---- fashion-cnn ---- */


static void fashion_cnn(void **state)
{
    (void)state;
    const char *dir = "/usr/share/datasets/fashion-mnist";
    char ipath[256], lpath[256];
    snprintf(ipath, sizeof ipath, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(lpath, sizeof lpath, "%s/t10k-labels-idx1-ubyte.gz", dir);
    idx_array ia, la;
    smelt_err *ierr = idx_read(ipath, &ia);
    if (ierr) fail_msg("%s (Debian package dataset-fashion-mnist; run scripts/setup.sh)", smelt_err_msg(ierr));
    ok(idx_read(lpath, &la));
    assert_int_equal(ia.ndim, 3);
    assert_int_equal(la.ndim, 1);
    uint32_t N = (uint32_t)ia.dims[0], H = (uint32_t)ia.dims[1], W = (uint32_t)ia.dims[2];
    assert_int_equal(N, 10000);
    assert_int_equal(la.dims[0], N);
    assert_int_equal(H, 28);
    assert_int_equal(W, 28);
    const float *img = ia.data, *lab = la.data;

    char *text = NULL;
    size_t tlen = 0;
    ok(smelt_read_file("models/fashion-cnn/reference.json", 1 << 20, &text, &tlen));
    json_error_t jerr;
    json_t *refj = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(refj);
    double want_acc = json_number_value(json_object_get(refj, "test_accuracy"));
    json_t *pre = json_object_get(refj, "preprocess"), *first8 = json_object_get(refj, "first8_logits");
    double mean = json_number_value(json_object_get(pre, "mean")), std = json_number_value(json_object_get(pre, "std"));
    assert_true(want_acc > 0.5 && std > 0);
    assert_int_equal(json_array_size(first8), 8);

    smelt_model *m = NULL;
    ok(onnx_read("models/fashion-cnn/model.onnx", &m));
    smelt_graph *g = NULL;
    ok(smelt_graph_load(m, &g));
    enum { BATCH = 500 };
    float *x = malloc((size_t)BATCH * H * W * sizeof *x);
    assert_non_null(x);
    int correct = 0;
    double max_err8 = 0;
    for (uint32_t b0 = 0; b0 < N; b0 += BATCH) {
        uint32_t nb = N - b0 < BATCH ? N - b0 : BATCH;
        const float *px = img + (size_t)b0 * H * W;
        for (size_t i = 0; i < (size_t)nb * H * W; i++) x[i] = (float)(((double)px[i] / 255.0 - mean) / std);
        int64_t shape[4] = {nb, 1, H, W};
        smelt_tensor in = tensor("image", 4, shape, x);
        smelt_tensor *out = NULL;
        int n = 0;
        ok(smelt_graph_run(g, &in, 1, &out, &n));
        assert_int_equal(out[0].ndim, 2);
        assert_int_equal(out[0].shape[0], nb);
        assert_int_equal(out[0].shape[1], 10);
        const float *y = out[0].data;
        for (uint32_t i = 0; i < nb; i++) {
            int best = 0;
            for (int k = 1; k < 10; k++)
                if (y[i * 10 + k] > y[i * 10 + best]) best = k;
            correct += best == (int)lab[b0 + i];
            if (b0 + i < 8) {
                json_t *row = json_array_get(first8, b0 + i);
                for (int k = 0; k < 10; k++) {
                    double e = fabs(y[i * 10 + k] - json_number_value(json_array_get(row, (size_t)k)));
                    if (!(e <= max_err8)) max_err8 = e;
                }
            }
        }
        smelt_graph_outputs_free(out, n);
    }
    double acc = (double)correct / N;
    printf("fashion-cnn: accuracy %.4f (reference %.4f), first8 max abs error %.3g\n", acc, want_acc, max_err8);
    assert_true(fabs(acc - want_acc) <= 0.0005); /* 0.05 points */
    assert_true(max_err8 <= 1e-4);
    free(x);
    idx_free(&ia);
    idx_free(&la);
    json_decref(refj);
    smelt_graph_free(g);
    smelt_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(broadcast_add), cmocka_unit_test(unsupported_op), cmocka_unit_test(shape_mismatch),
        cmocka_unit_test(tiny_llama),    cmocka_unit_test(fashion_cnn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
