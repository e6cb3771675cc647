/* The trainer's gradients: every parameter gradient of tiny-llama on the batch in
 * models/tiny-llama/grad-reference.safetensors against the independent implementation's
 * (relative error ||g - ref|| / ||ref|| ≤ 1e-3 per tensor, loss within 1e-5 relative), and central
 * finite differences of the loss (double-checked in f32 with a step sized for it) on a small
 * random model with grouped-query attention, an untied head and the distillation loss, for
 * elements of every tensor kind: embedding, norms, q/k/v/o, gate/up/down, head, at a short
 * length and at one that spans several attention blocks. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "distill/step.h"
#include "formats/hf_model.h"
#include "formats/safetensors.h"

#define TRY_OK(e)                                             \
    do {                                                      \
        smelt_err *e_ = (e);                                  \
        if (e_) fail_msg("%s", smelt_err_msg(e_));            \
    } while (0)

static void test_grad_reference(void **state)
{
    (void)state;
    smelt_model *src = NULL, *ref = smelt_model_new(SMELT_KIND_GRAPH, "ref");
    TRY_OK(hf_import("models/tiny-llama", false, &src));
    TRY_OK(safetensors_read("models/tiny-llama/grad-reference.safetensors", ref, NULL));
    tm_config c;
    TRY_OK(tm_config_from_llm(src, "tiny-llama", &c));
    tm_model *m;
    TRY_OK(tm_new(&c, &m));
    TRY_OK(tm_load_from(m, src, NULL, "tiny-llama"));
    const smelt_tensor *ids64 = smelt_model_find(ref, "ids"), *loss = smelt_model_find(ref, "loss");
    assert_non_null(ids64);
    assert_non_null(loss);
    int B = (int)ids64->shape[0], S = (int)ids64->shape[1], T = S - 1;
    int32_t *ids = malloc((size_t)B * T * sizeof *ids), *tg = malloc((size_t)B * T * sizeof *tg);
    const int64_t *src_ids = ids64->data;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) ids[b * T + t] = (int32_t)src_ids[b * S + t], tg[b * T + t] = (int32_t)src_ids[b * S + t + 1];
    tm_acts *a;
    TRY_OK(tm_acts_new(&c, B, T, &a));
    tl_loss_sums sums = {0};
    tm_forward_backward(m, a, ids, tg, NULL, 0, 1, 1.0f / (float)(B * T), &sums, NULL);
    double l = tl_loss_value(&sums, 0, 1, 0), want = ((const float *)loss->data)[0];
    printf("loss %.7f, reference %.7f\n", l, want);
    assert_true(fabs(l - want) <= 1e-5 * want);
    int checked = 0;
    double worst = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        char nm[128];
        snprintf(nm, sizeof nm, "grad.%s", m->tensors[i].name);
        const smelt_tensor *r = smelt_model_find(ref, nm);
        if (!r) fail_msg("reference lacks '%s'", nm);
        assert_int_equal(smelt_shape_numel(r->ndim, r->shape), (int64_t)m->tensors[i].numel);
        const float *g = tm_g(m, i), *rg = r->data;
        double num = 0, den = 0;
        for (size_t k = 0; k < m->tensors[i].numel; k++) num += (g[k] - rg[k]) * (double)(g[k] - rg[k]), den += rg[k] * (double)rg[k];
        double rel = sqrt(num / den);
        printf("%-52s rel err %.3g\n", m->tensors[i].name, rel);
        if (rel > worst) worst = rel;
        if (rel > 1e-3) fail_msg("%s: relative error %g > 1e-3", m->tensors[i].name, rel);
        checked++;
    }
    printf("max relative error over %d tensors: %.3g\n", checked, worst);
    assert_int_equal(checked, 20);
    /* gradient accumulation: two micro-batches of 2 sequences give the batch of 4's gradient */
    float *whole = malloc(m->n_params * sizeof *whole);
    memcpy(whole, m->g, m->n_params * sizeof *whole);
    memset(m->g, 0, m->n_params * sizeof(float));
    tm_acts *half;
    TRY_OK(tm_acts_new(&c, B / 2, T, &half));
    tl_loss_sums acc = {0};
    for (int k = 0; k < 2; k++)
        tm_forward_backward(m, half, ids + k * (B / 2) * T, tg + k * (B / 2) * T, NULL, 0, 1, 1.0f / (float)(B * T), &acc, NULL);
    assert_true(fabs(tl_loss_value(&acc, 0, 1, 0) - l) < 1e-6);
    double num = 0, den = 0;
    for (size_t k = 0; k < m->n_params; k++) num += (m->g[k] - whole[k]) * (double)(m->g[k] - whole[k]), den += whole[k] * (double)whole[k];
    printf("accumulated vs whole-batch gradient: relative difference %.3g\n", sqrt(num / den));
    assert_true(sqrt(num / den) < 1e-5);
    tm_acts_free(half);
    free(whole);
    free(ids);
    free(tg);
    tm_acts_free(a);
    tm_free(m);
    smelt_model_free(ref);
    smelt_model_free(src);
}

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float unif(uint64_t *s) { return (float)(rng(s) >> 40) / 16777216.0f * 2.0f - 1.0f; }

static double loss_of(tm_model *m, tm_acts *a, const int32_t *ids, const int32_t *tg, const float *teacher, int N)
{
    tl_loss_sums s = {0};
    tm_forward_backward(m, a, ids, tg, teacher, 0.6f, 2.0f, 0, &s, NULL);
    (void)N;
    return tl_loss_value(&s, 0.6f, 2.0f, 1);
}

static void finite_differences(int B, int T, int probes)
{
    tm_config c = {.V = 29, .C = 16, .L = 2, .nh = 4, .nkv = 2, .hd = 6, .F = 20, .max_pos = 64, .eps = 1e-5f, .theta = 10000, .tied = false, .bos_id = 0, .eos_id = 0};
    tm_model *m;
    TRY_OK(tm_new(&c, &m));
    uint64_t s = 42;
    for (int i = 0; i < m->n_tensors; i++) {
        tm_tensor *t = &m->tensors[i];
        float *w = tm_w(m, i);
        for (size_t k = 0; k < t->numel; k++) w[k] = t->decay ? 0.4f * unif(&s) : 1.0f + 0.3f * unif(&s);
    }
    int N = B * T;
    int32_t *ids = malloc((size_t)N * sizeof *ids), *tg = malloc((size_t)N * sizeof *tg);
    float *teacher = malloc((size_t)N * c.V * sizeof *teacher);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(rng(&s) % (uint64_t)c.V), tg[i] = i % 5 == 3 ? -1 : (int32_t)(rng(&s) % (uint64_t)c.V);
    for (int i = 0; i < N * c.V; i++) teacher[i] = 2.0f * unif(&s);
    tm_acts *a;
    TRY_OK(tm_acts_new(&c, B, T, &a));
    tl_loss_sums sums = {0};
    memset(m->g, 0, m->n_params * sizeof(float));
    int scored = 0;
    for (int i = 0; i < N; i++) scored += tg[i] >= 0;
    tm_forward_backward(m, a, ids, tg, teacher, 0.6f, 2.0f, 1.0f / (float)scored, &sums, NULL);
    const float eps = 1e-2f;
    int n_checked = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        tm_tensor *t = &m->tensors[i];
        for (int probe = 0; probe < probes; probe++) {
            size_t k = (size_t)(rng(&s) % t->numel);
            if (i == tm_idx_embed(m)) k = (size_t)ids[probe] * (size_t)c.C + (size_t)probe; /* rows that are used */
            float *w = tm_w(m, i) + k, w0 = *w;
            *w = w0 + eps;
            double lp = loss_of(m, a, ids, tg, teacher, N);
            *w = w0 - eps;
            double lm = loss_of(m, a, ids, tg, teacher, N);
            *w = w0;
            double fd = (lp - lm) / (2 * eps), an = tm_g(m, i)[k];
            if (fabs(fd - an) > 2e-3 + 2e-2 * fabs(fd)) fail_msg("%s[%zu]: analytic %g, finite difference %g", t->name, k, an, fd);
            n_checked++;
        }
    }
    printf("B %d T %d: %d finite-difference probes agree\n", B, T, n_checked);
    free(ids);
    free(tg);
    free(teacher);
    tm_acts_free(a);
    tm_free(m);
}

static void test_finite_differences(void **state)
{
    (void)state;
    finite_differences(2, 7, 6);
    /* several blocks of query rows in the attention (64 a block), the last one partial */
    finite_differences(1, 150, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_reference),
        cmocka_unit_test(test_finite_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
