/* MatMul and Gemm by a constant weight (runtime/graph/gemm_packed.c on AVX-512 machines, packed at
 * load; sgemm below GX_PK_MIN_ROWS rows or elsewhere) against double-precision loops written here:
 * rows around the 12-row register tile, columns around the 32-column panels (masked tails), K from
 * 1 up, A with batch dims folded into rows, Gemm with transB, alpha, beta and a broadcast bias.
 * Each graph runs twice (pool buffers reused). */
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

static float urand(uint64_t *s) { return (float)((double)(smelt_splitmix64(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

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
    int64_t batch, M, K, N; /* A [batch, M, K] for MatMul (batch 0: A is [M, K]), [M, K] for Gemm */
    int transB, bias;       /* Gemm only: bias C is [N] */
    float alpha, beta;
} mm_case;

static void check(const mm_case *k)
{
    int64_t rows = (k->batch ? k->batch : 1) * k->M, K = k->K, N = k->N;
    float *a = malloc((size_t)(rows * K + 1) * sizeof *a), *w = malloc((size_t)(K * N + 1) * sizeof *w), *bias = malloc((size_t)N * sizeof *bias);
    double *ref = malloc((size_t)(rows * N) * sizeof *ref);
    assert_true(a && w && bias && ref);
    uint64_t s = (uint64_t)(k->M * 7919 + K * 31 + N);
    for (int64_t i = 0; i < rows * K; i++) a[i] = urand(&s);
    for (int64_t i = 0; i < K * N; i++) w[i] = urand(&s);
    for (int64_t i = 0; i < N; i++) bias[i] = urand(&s);
    bool gemm = strcmp(k->op, "Gemm") == 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t i = 0; i < K; i++) acc += (double)a[r * K + i] * (k->transB ? w[n * K + i] : w[i * N + n]);
            ref[r * N + n] = gemm ? k->alpha * acc + (k->bias ? k->beta * bias[n] : 0) : acc;
        }

    smelt_model *m = smelt_model_new(SMELT_KIND_GRAPH, "onnx");
    assert_non_null(m);
    add_io(&m->inputs, &m->n_inputs, "a");
    add_io(&m->outputs, &m->n_outputs, "y");
    int64_t wshape[2] = {k->transB ? N : K, k->transB ? K : N};
    ok(smelt_model_add_tensor(m, "w", SMELT_DT_F32, 2, wshape, w, NULL));
    if (k->bias) ok(smelt_model_add_tensor(m, "c", SMELT_DT_F32, 1, &N, bias, NULL));
    const char *in[3] = {"a", "w", "c"}, *out[1] = {"y"};
    smelt_node *nd = smelt_model_add_node(m, k->op, "", "mm", gemm && k->bias ? 3 : 2, in, 1, out);
    assert_non_null(nd);
    if (gemm) {
        assert_true(smelt_node_set_int(nd, "transB", k->transB));
        assert_true(smelt_node_set_float(nd, "alpha", k->alpha));
        assert_true(smelt_node_set_float(nd, "beta", k->beta));
    }
    smelt_graph *g = NULL;
    ok(smelt_graph_load(m, &g));
    smelt_tensor t = {.name = "a", .dtype = SMELT_DT_F32, .data = a, .nbytes = (size_t)(rows * K) * sizeof *a};
    if (k->batch) t.ndim = 3, t.shape[0] = k->batch, t.shape[1] = k->M, t.shape[2] = K;
    else t.ndim = 2, t.shape[0] = k->M, t.shape[1] = K;
    for (int rep = 0; rep < 2; rep++) {
        smelt_tensor *o = NULL;
        int no = 0;
        ok(smelt_graph_run(g, &t, 1, &o, &no));
        assert_int_equal(o[0].shape[o[0].ndim - 1], N);
        assert_int_equal(o[0].nbytes, (size_t)(rows * N) * sizeof(float));
        const float *y = o[0].data;
        for (int64_t i = 0; i < rows * N; i++)
            if (!(fabs(y[i] - ref[i]) <= 2e-6 * (double)K + 1e-6))
                fail_msg("%s M=%lld K=%lld N=%lld: y[%lld] = %.8g, reference %.8g", k->op, (long long)rows, (long long)K, (long long)N, (long long)i, y[i],
                         ref[i]);
        smelt_graph_outputs_free(o, no);
    }
    smelt_graph_free(g);
    smelt_model_free(m);
    free(a), free(w), free(bias), free(ref);
}

static void matmul_const_weight(void **state)
{
    (void)state;
    static const int64_t Ms[] = {1, 5, 6, 12, 13, 37}, Ks[] = {1, 7, 130}, Ns[] = {1, 17, 32, 33, 100};
    for (size_t i = 0; i < sizeof Ms / sizeof *Ms; i++)
        for (size_t j = 0; j < sizeof Ks / sizeof *Ks; j++)
            for (size_t l = 0; l < sizeof Ns / sizeof *Ns; l++) {
                mm_case k = {"MatMul", 0, Ms[i], Ks[j], Ns[l], 0, 0, 1, 0};
                check(&k);
            }
    mm_case batched = {"MatMul", 3, 25, 64, 352, 0, 0, 1, 0}; /* [3, 25, 64] x [64, 352]: rows folded */
    check(&batched);
    mm_case big = {"MatMul", 1, 40, 128, 1000, 0, 0, 1, 0}; /* large enough to be split over threads */
    check(&big);
}

static void gemm_const_weight(void **state)
{
    (void)state;
    static const mm_case cases[] = {
        {"Gemm", 0, 64, 200, 128, 1, 1, 1.0f, 1.0f},  /* the CNN head's shape family: transB, bias */
        {"Gemm", 0, 13, 33, 45, 0, 1, 0.5f, 2.0f},    /* B as [K, N], alpha and beta */
        {"Gemm", 0, 7, 9, 70, 1, 0, -1.5f, 1.0f},     /* no bias */
        {"Gemm", 0, 2, 50, 10, 1, 1, 1.0f, 1.0f},     /* below the packed path's rows */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check(&cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matmul_const_weight),
        cmocka_unit_test(gemm_const_weight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
