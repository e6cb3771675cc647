/* Conv and MaxPool kernels of the graph executor (runtime/graph/op_conv.c, conv_direct.c) against
 * plain loops in double precision written here, on shapes chosen to reach every path: the direct
 * stride-1 kernel (AVX-512 machines) with output widths below, at and past its 16-float vectors,
 * channel counts not a multiple of its 8-channel tiles, asymmetric pads, dilations, groups, many
 * taps, a 1-D conv, and a fused Relu (Conv -> Relu) and Relu + 2x2 MaxPool; stride 2 and planes too
 * small for the direct kernel (im2col + sgemm); 2x2/2 MaxPool rows of odd widths with NaN and
 * signed zeros. */
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
#include "core/rng.h"
#include "runtime/graph/graph_exec.h"

static void ok(smelt_err *err)
{
    if (err) fail_msg("%s", smelt_err_msg(err));
}

static void add_io(smelt_value **vs, int *n, const char *name)
{
    *vs = realloc(*vs, (size_t)(*n + 1) * sizeof **vs);
    assert_non_null(*vs);
    smelt_value *v = &(*vs)[(*n)++];
    memset(v, 0, sizeof *v);
    v->name = strdup(name);
    v->dtype = SMELT_DT_F32;
    v->ndim = -1; /* any shape */
}

static void set_ints(smelt_node *nd, const char *name, int n, const int64_t *v)
{
    smelt_attr *a = smelt_node_add_attr(nd, name, SMELT_ATTR_INTS);
    assert_non_null(a);
    a->n = (size_t)n;
    a->ints = calloc((size_t)n, sizeof *a->ints);
    assert_non_null(a->ints);
    memcpy(a->ints, v, (size_t)n * sizeof *v);
}

typedef struct {
    int nsp;             /* spatial dims: 1 or 2 */
    int64_t N, C, H, W;  /* H = 1 for 1-D */
    int64_t M, group, KH, KW, stride, dil;
    int64_t pt, pl, pb, pr;
    int bias, relu;
    int pool; /* then a MaxPool: 1 = 2x2 stride 2 (fused into the Conv), 2 = 2x2 stride 2 with pads (not fused) */
} conv_case;

static float urand(uint64_t *s) { return (float)((double)(smelt_splitmix64(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

static void check_conv(const conv_case *k)
{
    int64_t Cg = k->C / k->group, Mg = k->M / k->group;
    int64_t OH = (k->H + k->pt + k->pb - (k->KH - 1) * k->dil - 1) / k->stride + 1;
    int64_t OW = (k->W + k->pl + k->pr - (k->KW - 1) * k->dil - 1) / k->stride + 1;
    int64_t nx = k->N * k->C * k->H * k->W, nw = k->M * Cg * k->KH * k->KW, ny = k->N * k->M * OH * OW;
    float *x = malloc((size_t)nx * sizeof *x), *w = malloc((size_t)nw * sizeof *w), *b = malloc((size_t)k->M * sizeof *b);
    double *ref = malloc((size_t)ny * sizeof *ref), *mag = malloc((size_t)ny * sizeof *mag);
    assert_true(x && w && b && ref && mag);
    uint64_t s = (uint64_t)(k->C * 1000 + k->M * 10 + k->KW);
    for (int64_t i = 0; i < nx; i++) x[i] = urand(&s);
    for (int64_t i = 0; i < nw; i++) w[i] = urand(&s);
    for (int64_t i = 0; i < k->M; i++) b[i] = urand(&s);
    for (int64_t n = 0; n < k->N; n++)
        for (int64_t m = 0; m < k->M; m++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double acc = k->bias ? b[m] : 0, sum_abs = fabs(acc);
                    int64_t g = m / Mg;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t kh = 0; kh < k->KH; kh++)
                            for (int64_t kw = 0; kw < k->KW; kw++) {
                                int64_t ih = oh * k->stride - k->pt + kh * k->dil, iw = ow * k->stride - k->pl + kw * k->dil;
                                if (ih < 0 || ih >= k->H || iw < 0 || iw >= k->W) continue;
                                double t = (double)x[((n * k->C + g * Cg + c) * k->H + ih) * k->W + iw] * w[((m * Cg + c) * k->KH + kh) * k->KW + kw];
                                acc += t, sum_abs += fabs(t);
                            }
                    int64_t i = ((n * k->M + m) * OH + oh) * OW + ow;
                    ref[i] = k->relu && !(acc > 0) ? 0 : acc;
                    mag[i] = sum_abs;
                }

    if (k->pool) { /* 2x2 windows, stride 2; pool 2 pads one column on the right (-inf: never wins) */
        int64_t PH = OH / 2, PW = k->pool == 2 ? (OW + 1) / 2 : OW / 2;
        for (int64_t nm = 0; nm < k->N * k->M; nm++)
            for (int64_t ph = 0; ph < PH; ph++)
                for (int64_t pw = 0; pw < PW; pw++) {
                    double mx = -INFINITY, mg = 0;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            int64_t ow = 2 * pw + dx;
                            if (ow >= OW) continue;
                            int64_t i = (nm * OH + 2 * ph + dy) * OW + ow;
                            if (ref[i] > mx) mx = ref[i], mg = mag[i];
                        }
                    ref[(nm * PH + ph) * PW + pw] = mx, mag[(nm * PH + ph) * PW + pw] = mg;
                }
        OH = PH, OW = PW, ny = k->N * k->M * OH * OW;
    }

    smelt_model *mdl = smelt_model_new(SMELT_KIND_GRAPH, "onnx");
    assert_non_null(mdl);
    add_io(&mdl->inputs, &mdl->n_inputs, "x");
    add_io(&mdl->inputs, &mdl->n_inputs, "w");
    if (k->bias) add_io(&mdl->inputs, &mdl->n_inputs, "b");
    add_io(&mdl->outputs, &mdl->n_outputs, "y");
    const char *in[3] = {"x", "w", "b"}, *out[1] = {k->relu || k->pool ? "c" : "y"};
    smelt_node *nd = smelt_model_add_node(mdl, "Conv", "", "conv", k->bias ? 3 : 2, in, 1, out);
    assert_non_null(nd);
    assert_true(smelt_node_set_int(nd, "group", k->group));
    if (k->nsp == 2) {
        set_ints(nd, "strides", 2, (int64_t[]){k->stride, k->stride});
        set_ints(nd, "dilations", 2, (int64_t[]){k->dil, k->dil});
        set_ints(nd, "pads", 4, (int64_t[]){k->pt, k->pl, k->pb, k->pr});
    } else {
        set_ints(nd, "strides", 1, (int64_t[]){k->stride});
        set_ints(nd, "dilations", 1, (int64_t[]){k->dil});
        set_ints(nd, "pads", 2, (int64_t[]){k->pl, k->pr});
    }
    if (k->relu) {
        const char *rin[1] = {"c"}, *rout[1] = {k->pool ? "r" : "y"};
        assert_non_null(smelt_model_add_node(mdl, "Relu", "", "relu", 1, rin, 1, rout));
    }
    if (k->pool) {
        const char *pin[1] = {k->relu ? "r" : "c"}, *pout[1] = {"y"};
        smelt_node *pn = smelt_model_add_node(mdl, "MaxPool", "", "pool", 1, pin, 1, pout);
        assert_non_null(pn);
        set_ints(pn, "kernel_shape", 2, (int64_t[]){2, 2});
        set_ints(pn, "strides", 2, (int64_t[]){2, 2});
        if (k->pool == 2) set_ints(pn, "pads", 4, (int64_t[]){0, 0, 0, 1});
    }
    smelt_graph *gr = NULL;
    ok(smelt_graph_load(mdl, &gr));
    smelt_tensor tin[3] = {{.name = "x", .dtype = SMELT_DT_F32, .data = x, .nbytes = (size_t)nx * 4},
                           {.name = "w", .dtype = SMELT_DT_F32, .data = w, .nbytes = (size_t)nw * 4},
                           {.name = "b", .dtype = SMELT_DT_F32, .data = b, .nbytes = (size_t)k->M * 4}};
    if (k->nsp == 2) {
        tin[0].ndim = tin[1].ndim = 4;
        memcpy(tin[0].shape, (int64_t[]){k->N, k->C, k->H, k->W}, 4 * sizeof(int64_t));
        memcpy(tin[1].shape, (int64_t[]){k->M, Cg, k->KH, k->KW}, 4 * sizeof(int64_t));
    } else {
        tin[0].ndim = tin[1].ndim = 3;
        memcpy(tin[0].shape, (int64_t[]){k->N, k->C, k->W}, 3 * sizeof(int64_t));
        memcpy(tin[1].shape, (int64_t[]){k->M, Cg, k->KW}, 3 * sizeof(int64_t));
    }
    tin[2].ndim = 1;
    tin[2].shape[0] = k->M;
    for (int rep = 0; rep < 2; rep++) { /* pool buffers reused on the second run */
        smelt_tensor *o = NULL;
        int no = 0;
        ok(smelt_graph_run(gr, tin, k->bias ? 3 : 2, &o, &no));
        assert_int_equal(no, 1);
        assert_int_equal(o[0].ndim, k->nsp + 2);
        assert_int_equal(o[0].shape[0], k->N);
        assert_int_equal(o[0].shape[1], k->M);
        assert_int_equal(o[0].shape[k->nsp + 1], OW);
        if (k->nsp == 2) assert_int_equal(o[0].shape[2], OH);
        const float *y = o[0].data;
        for (int64_t i = 0; i < ny; i++)
            if (!(fabs(y[i] - ref[i]) <= 1e-6 * mag[i] + 1e-6))
                fail_msg("conv C=%lld M=%lld group=%lld %lldx%lld stride %lld: y[%lld] = %.8g, reference %.8g", (long long)k->C, (long long)k->M,
                         (long long)k->group, (long long)k->H, (long long)k->W, (long long)k->stride, (long long)i, y[i], ref[i]);
        smelt_graph_outputs_free(o, no);
    }
    smelt_graph_free(gr);
    smelt_model_free(mdl);
    free(x), free(w), free(b), free(ref), free(mag);
}

static void conv_direct_shapes(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        /* nsp  N   C   H   W   M  grp KH KW s  d  pt pl pb pr bias relu pool */
        {2, 2, 3, 9, 37, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},    /* 3 vectors a row (16+16+5), 5 of 8 channels */
        {2, 3, 17, 11, 13, 19, 1, 3, 3, 1, 1, 0, 2, 1, 0, 0, 0, 0}, /* asymmetric pads, 19 = 8+8+3 channels, no bias */
        {2, 1, 6, 12, 10, 10, 2, 5, 3, 1, 2, 2, 1, 2, 1, 1, 1, 0},  /* groups, 5x3 kernel, dilation 2 */
        {2, 2, 64, 6, 6, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0},   /* 576 taps */
        {2, 1, 2, 20, 1, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0},    /* width 1: one live lane a vector */
        {2, 4, 16, 14, 14, 32, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0}, /* fashion-cnn's second conv, batch 4 */
        {1, 2, 2, 1, 40, 3, 1, 1, 5, 1, 1, 0, 2, 0, 2, 1, 1, 0},    /* 1-D */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_conv(&cases[i]);
}

/* Conv -> Relu -> MaxPool 2x2/2: fused into the direct kernel (even and odd conv sizes, a
 * 3-vector row, channel tails), into the im2col path (stride 2), and left unfused (a padded pool,
 * or no Relu between). */
static void conv_relu_pool(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        /* nsp  N   C   H   W   M  grp KH KW s  d  pt pl pb pr bias relu pool */
        {2, 4, 1, 28, 28, 16, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},  /* fashion-cnn's first block */
        {2, 3, 16, 14, 14, 32, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* and its second */
        {2, 2, 5, 11, 41, 13, 1, 3, 3, 1, 1, 1, 0, 1, 2, 0, 1, 1},  /* odd conv rows/cols, 3 vectors a row, 13 = 8+5 */
        {2, 1, 6, 9, 9, 6, 2, 3, 3, 1, 2, 2, 2, 2, 2, 1, 1, 1},     /* groups, dilation 2 */
        {2, 2, 3, 13, 12, 5, 1, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1},   /* stride 2: im2col path with the pool */
        {2, 2, 3, 8, 9, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},     /* padded pool: not fused */
        {2, 2, 3, 8, 10, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 1},    /* no Relu: not fused */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_conv(&cases[i]);
}

static void conv_other_shapes(void **state)
{
    (void)state;
    static const conv_case cases[] = {
        /* nsp  N   C   H   W   M  grp KH KW s  d  pt pl pb pr bias relu pool */
        {2, 2, 4, 7, 9, 9, 1, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 0},  /* stride 2 */
        {2, 1, 3, 2, 3, 4, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1, 0, 0},  /* a 1x2 output plane: too small for vectors */
        {2, 3, 6, 8, 11, 6, 3, 3, 3, 2, 1, 2, 0, 1, 2, 0, 1, 0}, /* stride 2, groups, asymmetric pads */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_conv(&cases[i]);
}

/* MaxPool 2x2 stride 2 against the first-tap-then-strictly-greater rule, on widths 1 to 40 (vector
 * tails) and odd heights (the last input row unused), with NaNs and signed zeros in the data. */
static void maxpool_2x2(void **state)
{
    (void)state;
    smelt_model *mdl = smelt_model_new(SMELT_KIND_GRAPH, "onnx");
    assert_non_null(mdl);
    add_io(&mdl->inputs, &mdl->n_inputs, "x");
    add_io(&mdl->outputs, &mdl->n_outputs, "y");
    const char *in[1] = {"x"}, *out[1] = {"y"};
    smelt_node *nd = smelt_model_add_node(mdl, "MaxPool", "", "pool", 1, in, 1, out);
    assert_non_null(nd);
    set_ints(nd, "kernel_shape", 2, (int64_t[]){2, 2});
    set_ints(nd, "strides", 2, (int64_t[]){2, 2});
    smelt_graph *gr = NULL;
    ok(smelt_graph_load(mdl, &gr));
    uint64_t s = 7;
    for (int64_t W = 2; W <= 81; W += 3) {
        int64_t N = 2, C = 3, H = 5, OH = H / 2, OW = W / 2, nx = N * C * H * W;
        float *x = malloc((size_t)nx * sizeof *x);
        assert_non_null(x);
        for (int64_t i = 0; i < nx; i++) {
            uint64_t r = smelt_splitmix64(&s) % 16;
            x[i] = r == 0 ? NAN : r == 1 ? -0.0f : r == 2 ? 0.0f : urand(&s);
        }
        smelt_tensor t = {.name = "x", .dtype = SMELT_DT_F32, .ndim = 4, .shape = {N, C, H, W}, .data = x, .nbytes = (size_t)nx * 4};
        smelt_tensor *o = NULL;
        int no = 0;
        ok(smelt_graph_run(gr, &t, 1, &o, &no));
        assert_int_equal(o[0].shape[2], OH);
        assert_int_equal(o[0].shape[3], OW);
        const float *y = o[0].data;
        for (int64_t nc = 0; nc < N * C; nc++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    const float *p = x + (nc * H + 2 * oh) * W + 2 * ow;
                    float taps[4] = {p[0], p[1], p[W], p[W + 1]}, acc = taps[0];
                    for (int i = 1; i < 4; i++) acc = taps[i] > acc ? taps[i] : acc;
                    float got = y[(nc * OH + oh) * OW + ow];
                    if (memcmp(&got, &acc, sizeof got) != 0 && !(isnan(got) && isnan(acc)))
                        fail_msg("MaxPool W=%lld at (%lld, %lld, %lld): %g, expected %g", (long long)W, (long long)nc, (long long)oh, (long long)ow, got, acc);
                }
        smelt_graph_outputs_free(o, no);
        free(x);
    }
    smelt_graph_free(gr);
    smelt_model_free(mdl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_direct_shapes),
        cmocka_unit_test(conv_other_shapes),
        cmocka_unit_test(conv_relu_pool),
        cmocka_unit_test(maxpool_2x2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
