/* Int8 ONNX graphs (quant/quantize_graph.c + the executor's int8 weights): the RTN rule on each
 * channel, MatMul / Gemm / Conv with int8 weights against the same graph run in f32 on the
 * dequantized weights (both the few-row qmatmul path and the dequantize + sgemm path, odd shapes),
 * int8 Conv against a naive convolution through each of the Conv kernel's paths (direct rows for
 * few input channels, padded columns + sgemm, strided im2col, groups, dilation, images shared out),
 * an int8 weight read by another op, the errors for what is not supported, and fashion-cnn
 * quantized, written as an artifact, read back and run on the 10,000 Fashion-MNIST test images:
 * accuracy within 0.3 points of reference.json's, and a quarter of the weight bytes. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/ir.h"
#include "evals/idx.h"
#include "formats/artifact.h"
#include "formats/load.h"
#include "formats/onnx.h"
#include "quant/quantize_graph.h"
#include "runtime/graph/graph_exec.h"

static void ok(smelt_err *err)
{
    if (err) fail_msg("%s", smelt_err_msg(err));
}

static void expect_err(smelt_err *err, const char *text)
{
    if (!err) fail_msg("expected an error containing '%s'", text);
    if (!strstr(smelt_err_msg(err), text)) fail_msg("error '%s' lacks '%s'", smelt_err_msg(err), text);
    smelt_err_free(err);
}

static const quant_recipe W8 = {.scheme = {8, 128, false}, .method = "rtn", .calib_window = 256, .damp = 0.01};

static uint64_t rng = 12345;
static float frand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rng >> 40) / (double)(1ULL << 24) * 2.0 - 1.0);
}

static void add_io(smelt_value **vs, int *n, const char *name)
{
    *vs = realloc(*vs, (size_t)(*n + 1) * sizeof **vs);
    assert_non_null(*vs);
    smelt_value *v = &(*vs)[(*n)++];
    memset(v, 0, sizeof *v);
    v->name = strdup(name);
    v->dtype = SMELT_DT_F32;
    v->ndim = -1;
}

typedef struct {
    const char *op;
    int wnd;
    int64_t wshape[4];
    int xnd;
    int64_t xshape[4];
    int transB;
    bool bias;
} qcase;

/* x -> op(x, w[, b]) -> y, with w's values given (copied into the model). */
static smelt_model *case_model(const qcase *k, const float *w, const float *b)
{
    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "onnx");
    assert_non_null(m);
    add_io(&m->inputs, &m->n_inputs, "x");
    add_io(&m->outputs, &m->n_outputs, "y");
    int64_t n = smelt_shape_numel(k->wnd, k->wshape);
    float *wd = smelt_model_alloc(m, (size_t)n * sizeof *wd);
    memcpy(wd, w, (size_t)n * sizeof *wd);
    ok(smelt_model_add_tensor(m, "w", SMELT_DT_F32, k->wnd, k->wshape, wd, NULL));
    int64_t nb = k->bias ? (strcmp(k->op, "Conv") == 0 ? k->wshape[0] : k->transB ? k->wshape[0] : k->wshape[1]) : 0;
    if (k->bias) {
        float *bd = smelt_model_alloc(m, (size_t)nb * sizeof *bd);
        memcpy(bd, b, (size_t)nb * sizeof *bd);
        ok(smelt_model_add_tensor(m, "b", SMELT_DT_F32, 1, &nb, bd, NULL));
    }
    const char *in[3] = {"x", "w", "b"}, *out[1] = {"y"};
    smelt_node *nd = smelt_model_add_node(m, k->op, "", "node", k->bias ? 3 : 2, in, 1, out);
    assert_non_null(nd);
    if (strcmp(k->op, "Gemm") == 0) {
        assert_true(smelt_node_set_int(nd, "transB", k->transB));
        assert_true(smelt_node_set_float(nd, "alpha", 0.5));
        assert_true(smelt_node_set_float(nd, "beta", 2.0));
    }
    if (strcmp(k->op, "Conv") == 0) {
        smelt_attr *a = smelt_node_add_attr(nd, "pads", SMELT_ATTR_INTS);
        assert_non_null(a);
        a->n = 4;
        a->ints = calloc(4, sizeof *a->ints);
        for (int i = 0; i < 4; i++) a->ints[i] = 1;
    }
    return m;
}

static smelt_tensor *run1(const smelt_model *m, const float *x, int nd, const int64_t *shape)
{
    smelt_graph *g = NULL;
    ok(smelt_graph_load(m, &g));
    smelt_tensor in = {.name = "x", .dtype = SMELT_DT_F32, .ndim = nd, .data = (void *)x};
    memcpy(in.shape, shape, (size_t)nd * sizeof *shape);
    in.nbytes = (size_t)smelt_shape_numel(nd, shape) * sizeof(float);
    smelt_tensor *out = NULL;
    int n = 0;
    ok(smelt_graph_run(g, &in, 1, &out, &n));
    assert_int_equal(n, 1);
    smelt_graph_free(g);
    return out;
}

/* Every case: the quantized weight follows the rule (scale = max|w| / 127 per channel, q the
 * nearest integer of w / scale), and the int8 graph's output equals the f32 graph's on the
 * dequantized weight to float rounding. */
static void kernels_match_float(void **state)
{
    (void)state;
    const qcase cases[] = {
        {"MatMul", 2, {37, 19}, 3, {3, 5, 37}, 0, false}, /* 15 rows: dequantize + sgemm */
        {"MatMul", 2, {37, 19}, 3, {1, 3, 37}, 0, false}, /* 3 rows: qmatmul */
        {"MatMul", 2, {64, 130}, 2, {1, 64}, 0, false},
        {"Gemm", 2, {17, 33}, 2, {5, 33}, 1, true},
        {"Gemm", 2, {17, 33}, 2, {20, 33}, 1, true},
        {"Gemm", 2, {33, 17}, 2, {4, 33}, 0, true},
        {"Gemm", 2, {33, 17}, 2, {11, 33}, 0, false},
        {"Conv", 4, {5, 3, 3, 2}, 4, {2, 3, 9, 7}, 0, true},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const qcase *k = &cases[ci];
        int64_t nw = smelt_shape_numel(k->wnd, k->wshape), nx = smelt_shape_numel(k->xnd, k->xshape);
        float *w = malloc((size_t)nw * sizeof *w), *x = malloc((size_t)nx * sizeof *x), b[64];
        for (int64_t i = 0; i < nw; i++) w[i] = frand() * (1.0f + (float)(i % 7)); /* channels of different ranges */
        for (int64_t i = 0; i < nx; i++) x[i] = frand();
        for (int i = 0; i < 64; i++) b[i] = frand();
        smelt_model *mq = case_model(k, w, b);
        quant_report *rep = NULL;
        int n_rep = 0;
        ok(quantize_graph(mq, &W8, NULL, NULL, &rep, &n_rep));
        assert_int_equal(n_rep, 1);
        const smelt_tensor *qt = smelt_model_find(mq, "w");
        assert_int_equal(qt->dtype, SMELT_DT_I8);
        assert_int_equal(qt->quant.kind, SMELT_QUANT_PER_CHANNEL);
        int axis = strcmp(k->op, "MatMul") == 0 || (strcmp(k->op, "Gemm") == 0 && !k->transB) ? 1 : 0;
        assert_int_equal(qt->quant.axis, axis);
        const smelt_tensor *st = smelt_model_find(mq, "w.scale");
        assert_non_null(st);
        int64_t ch = k->wshape[axis], inner = 1;
        for (int d = axis + 1; d < k->wnd; d++) inner *= k->wshape[d];
        assert_int_equal(smelt_shape_numel(st->ndim, st->shape), ch);
        const float *scale = st->data;
        const int8_t *q = qt->data;
        float *deq = malloc((size_t)nw * sizeof *deq);
        for (int64_t c = 0; c < ch; c++) {
            float mx = 0;
            for (int64_t i = 0; i < nw; i++)
                if ((i / inner) % ch == c) mx = fmaxf(mx, fabsf(w[i]));
            assert_float_equal(scale[c], mx / 127.0f, 0);
        }
        for (int64_t i = 0; i < nw; i++) {
            float s = scale[(i / inner) % ch];
            assert_int_equal(q[i], (int)nearbyintf(w[i] / s));
            deq[i] = s * (float)q[i];
        }
        assert_true(rep[0].rel_err > 0 && rep[0].rel_err < 0.01);
        quant_report_free(rep, n_rep);
        smelt_model *mf = case_model(k, deq, b);
        smelt_tensor *yq = run1(mq, x, k->xnd, k->xshape), *yf = run1(mf, x, k->xnd, k->xshape);
        assert_int_equal(yq[0].ndim, yf[0].ndim);
        assert_memory_equal(yq[0].shape, yf[0].shape, (size_t)yf[0].ndim * sizeof(int64_t));
        const float *a = yq[0].data, *bb = yf[0].data;
        for (size_t i = 0; i < yf[0].nbytes / sizeof(float); i++)
            if (fabsf(a[i] - bb[i]) > 1e-4f * (1.0f + fabsf(bb[i]))) fail_msg("case %zu (%s): y[%zu] = %g, f32 on the dequantized weight %g", ci, k->op, i, a[i], bb[i]);
        smelt_graph_outputs_free(yq, 1);
        smelt_graph_outputs_free(yf, 1);
        smelt_model_free(mq);
        smelt_model_free(mf);
        free(w), free(x), free(deq);
    }
}

/* ---- int8 Conv against a naive convolution (every path of the Conv kernel) ---- */

typedef struct {
    int64_t x[4], w[4];
    int64_t pads[4], strides[2], dil[2], group;
} conv_case;

static void set_ints(smelt_node *nd, const char *name, int n, const int64_t *v)
{
    smelt_attr *a = smelt_node_add_attr(nd, name, SMELT_ATTR_INTS);
    assert_non_null(a);
    a->n = (size_t)n;
    a->ints = calloc((size_t)n, sizeof *a->ints);
    memcpy(a->ints, v, (size_t)n * sizeof *v);
}

/* y[n][m][oh][ow] = b[m] + sum w[m][c][kh][kw] x[n][g*Cg + c][oh*s - p + kh*d][ow*s - p + kw*d], in double */
static void naive_conv(const conv_case *k, const float *x, const float *w, const float *b, double *y, int64_t OH, int64_t OW)
{
    int64_t N = k->x[0], C = k->x[1], H = k->x[2], W = k->x[3], M = k->w[0], Cg = k->w[1], KH = k->w[2], KW = k->w[3], Mg = M / k->group;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double acc = b[m];
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t ih = oh * k->strides[0] - k->pads[0] + kh * k->dil[0], iw = ow * k->strides[1] - k->pads[1] + kw * k->dil[1];
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += (double)w[((m * Cg + c) * KH + kh) * KW + kw] * x[((n * C + (m / Mg) * Cg + c) * H + ih) * W + iw];
                            }
                    y[((n * M + m) * OH + oh) * OW + ow] = acc;
                }
}

static void conv_paths(void **state)
{
    (void)state;
    const conv_case cases[] = {
        {{2, 1, 11, 9}, {8, 1, 3, 3}, {1, 1, 1, 1}, {1, 1}, {1, 1}, 1},      /* K 9, 8 channels: direct rows */
        {{3, 3, 10, 7}, {12, 3, 3, 3}, {1, 2, 0, 1}, {1, 1}, {2, 1}, 1},     /* K 27, dilated, asymmetric pads */
        {{2, 6, 9, 9}, {8, 3, 3, 3}, {1, 1, 1, 1}, {1, 1}, {1, 1}, 2},       /* groups, 4 channels a group */
        {{2, 5, 8, 8}, {6, 5, 3, 3}, {1, 1, 1, 1}, {1, 1}, {1, 1}, 1},       /* K 45: padded columns + sgemm */
        {{2, 4, 9, 8}, {6, 4, 3, 3}, {1, 1, 1, 1}, {2, 2}, {1, 1}, 1},       /* stride 2: im2col */
        {{4, 16, 20, 20}, {16, 16, 3, 3}, {1, 1, 1, 1}, {1, 1}, {1, 1}, 1},  /* large enough to share images out */
        {{4, 16, 20, 20}, {16, 16, 3, 3}, {1, 1, 1, 1}, {2, 2}, {1, 1}, 1},
        {{4, 2, 24, 24}, {16, 2, 5, 5}, {2, 2, 2, 2}, {1, 1}, {1, 1}, 1},    /* direct rows, shared out */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const conv_case *k = &cases[ci];
        int64_t nx = smelt_shape_numel(4, k->x), nw = smelt_shape_numel(4, k->w), M = k->w[0];
        float *x = malloc((size_t)nx * sizeof *x), *w = malloc((size_t)nw * sizeof *w), *b = malloc((size_t)M * sizeof *b);
        for (int64_t i = 0; i < nx; i++) x[i] = frand();
        for (int64_t i = 0; i < nw; i++) w[i] = frand();
        for (int64_t i = 0; i < M; i++) b[i] = frand();
        smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "onnx");
        add_io(&m->inputs, &m->n_inputs, "x");
        add_io(&m->outputs, &m->n_outputs, "y");
        float *wd = smelt_model_alloc(m, (size_t)nw * sizeof *wd), *bd = smelt_model_alloc(m, (size_t)M * sizeof *bd);
        memcpy(wd, w, (size_t)nw * sizeof *wd);
        memcpy(bd, b, (size_t)M * sizeof *bd);
        ok(smelt_model_add_tensor(m, "w", SMELT_DT_F32, 4, k->w, wd, NULL));
        ok(smelt_model_add_tensor(m, "b", SMELT_DT_F32, 1, &M, bd, NULL));
        const char *in[3] = {"x", "w", "b"}, *out[1] = {"y"};
        smelt_node *nd = smelt_model_add_node(m, "Conv", "", "conv", 3, in, 1, out);
        set_ints(nd, "pads", 4, k->pads);
        set_ints(nd, "strides", 2, k->strides);
        set_ints(nd, "dilations", 2, k->dil);
        assert_true(smelt_node_set_int(nd, "group", k->group));
        quant_report *rep = NULL;
        int n_rep = 0;
        ok(quantize_graph(m, &W8, NULL, NULL, &rep, &n_rep));
        quant_report_free(rep, n_rep);
        const smelt_tensor *qt = smelt_model_find(m, "w"), *st = smelt_model_find(m, "w.scale");
        for (int64_t i = 0; i < nw; i++) w[i] = ((const float *)st->data)[i / (nw / M)] * ((const int8_t *)qt->data)[i];
        smelt_tensor *y = run1(m, x, 4, k->x);
        int64_t OH = (k->x[2] + k->pads[0] + k->pads[2] - ((k->w[2] - 1) * k->dil[0] + 1)) / k->strides[0] + 1;
        int64_t OW = (k->x[3] + k->pads[1] + k->pads[3] - ((k->w[3] - 1) * k->dil[1] + 1)) / k->strides[1] + 1;
        assert_int_equal(y[0].shape[2], OH);
        assert_int_equal(y[0].shape[3], OW);
        int64_t ny = k->x[0] * M * OH * OW;
        double *ref = malloc((size_t)ny * sizeof *ref);
        naive_conv(k, x, w, b, ref, OH, OW);
        const float *yd = y[0].data;
        for (int64_t i = 0; i < ny; i++)
            if (fabs(yd[i] - ref[i]) > 1e-4 * (1 + fabs(ref[i]))) fail_msg("conv case %zu: y[%lld] = %g, naive %g", ci, (long long)i, yd[i], ref[i]);
        smelt_graph_outputs_free(y, 1);
        smelt_model_free(m);
        free(x), free(w), free(b), free(ref);
    }
}

/* An int8 weight that another op also reads (here an Identity to a graph output) reaches that op
 * dequantized to f32, while the MatMul still runs it as int8. */
static void other_reader_gets_f32(void **state)
{
    (void)state;
    qcase k = {"MatMul", 2, {8, 6}, 2, {2, 8}, 0, false};
    float w[48], x[16];
    for (int i = 0; i < 48; i++) w[i] = frand();
    for (int i = 0; i < 16; i++) x[i] = frand();
    smelt_model *m = case_model(&k, w, NULL);
    quant_report *rep = NULL;
    int n_rep = 0;
    ok(quantize_graph(m, &W8, NULL, NULL, &rep, &n_rep));
    quant_report_free(rep, n_rep);
    add_io(&m->outputs, &m->n_outputs, "wf");
    const char *in[1] = {"w"}, *out[1] = {"wf"};
    assert_non_null(smelt_model_add_node(m, "Identity", "", "id", 1, in, 1, out));
    smelt_graph *g = NULL;
    ok(smelt_graph_load(m, &g));
    smelt_tensor t = {.name = "x", .dtype = SMELT_DT_F32, .ndim = 2, .shape = {2, 8}, .data = x, .nbytes = sizeof x};
    smelt_tensor *o = NULL;
    int n = 0;
    ok(smelt_graph_run(g, &t, 1, &o, &n));
    assert_int_equal(n, 2);
    assert_int_equal(o[1].dtype, SMELT_DT_F32);
    const smelt_tensor *qt = smelt_model_find(m, "w"), *st = smelt_model_find(m, "w.scale");
    for (int i = 0; i < 48; i++) assert_float_equal(((float *)o[1].data)[i], ((float *)st->data)[i % 6] * ((int8_t *)qt->data)[i], 0);
    smelt_graph_outputs_free(o, n);
    smelt_graph_free(g);
    smelt_model_free(m);
}

/* What is not supported says what is. */
static void unsupported(void **state)
{
    (void)state;
    qcase k = {"MatMul", 2, {8, 6}, 2, {2, 8}, 0, false};
    float w[48] = {0};
    smelt_model *m = case_model(&k, w, NULL);
    quant_report *rep = NULL;
    int n_rep = 0;
    quant_recipe r = W8;
    r.scheme.bits = 4;
    expect_err(quantize_graph(m, &r, NULL, NULL, &rep, &n_rep), "ONNX graphs: scheme w4 is not supported (supported: w8, int8 symmetric per output channel)");
    r = W8;
    r.method = "gptq";
    expect_err(quantize_graph(m, &r, NULL, NULL, &rep, &n_rep), "ONNX graphs: method 'gptq' is not supported (supported: rtn)");
    ok(quantize_graph(m, &W8, NULL, NULL, &rep, &n_rep));
    quant_report_free(rep, n_rep);
    expect_err(quantize_graph(m, &W8, NULL, NULL, &rep, &n_rep), "already quantized");
    /* a 4-bit weight in a graph: the executor refuses it by name */
    smelt_tensor *qt = smelt_model_find(m, "w");
    qt->quant.bits = 4;
    qt->quant.kind = SMELT_QUANT_GROUP;
    smelt_graph *g = NULL;
    expect_err(smelt_graph_load(m, &g), "tensor 'w': the graph executor runs int8 symmetric per-channel weights; this one is 4-bit group-wise");
    smelt_model_free(m);
    /* nothing to quantize */
    smelt_model *e = smelt_model_new(SMELT_KIND_GRAPH, "onnx");
    add_io(&e->inputs, &e->n_inputs, "x");
    add_io(&e->outputs, &e->n_outputs, "y");
    const char *in[1] = {"x"}, *out[1] = {"y"};
    assert_non_null(smelt_model_add_node(e, "Relu", "", "r", 1, in, 1, out));
    expect_err(quantize_graph(e, &W8, NULL, NULL, &rep, &n_rep), "no float MatMul, Gemm or Conv weight initializer to quantize");
    smelt_model_free(e);
}

/* ---- fashion-cnn ---- */

static void fashion_cnn_int8(void **state)
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
    uint32_t N = (uint32_t)ia.dims[0], H = (uint32_t)ia.dims[1], W = (uint32_t)ia.dims[2];
    assert_int_equal(N, 10000);
    assert_int_equal(la.numel, N);
    const float *img = ia.data, *lab = la.data;

    char *text = NULL;
    size_t tlen = 0;
    ok(smelt_read_file("models/fashion-cnn/reference.json", 1 << 20, &text, &tlen));
    json_t *refj = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(refj);
    double want_acc = json_number_value(json_object_get(refj, "test_accuracy"));
    json_t *pre = json_object_get(refj, "preprocess"), *first8 = json_object_get(refj, "first8_logits");
    double mean = json_number_value(json_object_get(pre, "mean")), std = json_number_value(json_object_get(pre, "std"));
    assert_true(want_acc > 0.5 && std > 0);

    /* quantize, write the artifact, read it back: the run below is on the artifact's tensors */
    smelt_model *f = NULL;
    ok(onnx_read("models/fashion-cnn/model.onnx", &f));
    size_t float_bytes = 0, int8_bytes = 0;
    for (int i = 0; i < f->n_tensors; i++) float_bytes += f->tensors[i].nbytes;
    quant_report *rep = NULL;
    int n_rep = 0;
    ok(quantize_graph(f, &W8, NULL, NULL, &rep, &n_rep));
    assert_int_equal(n_rep, 4); /* two Conv and two Gemm weights */
    quant_report_free(rep, n_rep);
    char tmpdir[] = "/tmp/smelt-gq-XXXXXX", path[256];
    assert_non_null(mkdtemp(tmpdir));
    snprintf(path, sizeof path, "%s/cnn8.smelt", tmpdir);
    artifact_write_opts wo = {"any", "test_graph_quant", "test"};
    ok(artifact_write(path, f, &wo));
    smelt_model_free(f);
    smelt_model *m = NULL;
    ok(smelt_load_model(path, false, &m));
    unlink(path);
    rmdir(tmpdir);
    for (int i = 0; i < m->n_tensors; i++) int8_bytes += m->tensors[i].nbytes;
    assert_int_equal(smelt_model_find(m, "7.weight")->dtype, SMELT_DT_I8);
    printf("fashion-cnn int8: tensor bytes %zu (f32 %zu)\n", int8_bytes, float_bytes);
    assert_true(int8_bytes * 10 < float_bytes * 3); /* under 30% of the float bytes */

    smelt_graph *g = NULL;
    ok(smelt_graph_load(m, &g));
    enum { BATCH = 500 };
    float *x = malloc((size_t)BATCH * H * W * sizeof *x);
    int correct = 0;
    double max_err8 = 0;
    for (uint32_t b0 = 0, nb; b0 < N; b0 += nb) {
        /* the first batch of one image runs the few-row int8 kernels, the rest dequantize + sgemm */
        nb = b0 == 0 ? 1 : N - b0 < BATCH ? N - b0 : BATCH;
        const float *px = img + (size_t)b0 * H * W;
        for (size_t i = 0; i < (size_t)nb * H * W; i++) x[i] = (float)(((double)px[i] / 255.0 - mean) / std);
        smelt_tensor in = {.name = "image", .dtype = SMELT_DT_F32, .ndim = 4, .shape = {nb, 1, H, W}, .data = x, .nbytes = (size_t)nb * H * W * 4};
        smelt_tensor *out = NULL;
        int n = 0;
        ok(smelt_graph_run(g, &in, 1, &out, &n));
        const float *y = out[0].data;
        for (uint32_t i = 0; i < nb; i++) {
            int best = 0;
            for (int k = 1; k < 10; k++)
                if (y[i * 10 + k] > y[i * 10 + best]) best = k;
            correct += best == (int)lab[b0 + i];
            if (b0 + i < 8)
                for (int k = 0; k < 10; k++)
                    max_err8 = fmax(max_err8, fabs(y[i * 10 + k] - json_number_value(json_array_get(json_array_get(first8, b0 + i), (size_t)k))));
        }
        smelt_graph_outputs_free(out, n);
    }
    double acc = (double)correct / N;
    printf("fashion-cnn int8: accuracy %.4f (reference %.4f, %+.2f points), first8 max abs error %.3g\n", acc, want_acc, 100 * (acc - want_acc), max_err8);
    assert_true(fabs(acc - want_acc) <= 0.003); /* 0.3 points */
    assert_true(max_err8 <= 0.1);
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
        cmocka_unit_test(kernels_match_float),
        cmocka_unit_test(conv_paths),
        cmocka_unit_test(other_reader_gets_f32),
        cmocka_unit_test(unsupported),
        cmocka_unit_test(fashion_cnn_int8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
