/* GPT-2 training: central finite differences (f32 passes, a step of 1e-2, the scalar loss summed in
 * double) of each layer type GPT-2 adds (LayerNorm with bias, GELU tanh, biased linear, learned
 * positions) and of whole random GPT-2 models with the distillation loss (every tensor, at a short
 * length and at one spanning several attention blocks); the training forward's logits against the
 * inference engine's (runtime/llm, an independent implementation) on a synth GPT-2 checkpoint, also
 * after a round trip through the IR; no weight decay on norms and biases. */
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

#include "core/rng.h"
#include "distill/adamw.h"
#include "distill/layers.h"
#include "distill/layers_gpt2.h"
#include "distill/step.h"
#include "formats/hf_synth.h"
#include "runtime/llm.h"

#define TRY_OK(e)                                  \
    do {                                           \
        smelt_err *e_ = (e);                       \
        if (e_) fail_msg("%s", smelt_err_msg(e_)); \
    } while (0)

static float unif(uint64_t *s) { return (float)(smelt_splitmix64(s) >> 40) / 16777216.0f * 2.0f - 1.0f; }

static float *randv(size_t n, float center, float spread, uint64_t *s)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = center + spread * unif(s);
    return v;
}

/* The finite-difference tolerance of the whole-model check in test_distill_grad.c. */
static void expect_close(const char *what, size_t k, double an, double fd)
{
    if (fabs(fd - an) > 2e-3 + 2e-2 * fabs(fd)) fail_msg("%s[%zu]: analytic %g, finite difference %g", what, k, an, fd);
}

/* A layer under test: the scalar sum(out * R) of its forward, and its backward for dout = R. */
typedef struct layer_case layer_case;
struct layer_case {
    double (*loss)(layer_case *c);
    void (*backward)(layer_case *c);
    int N, C, in, out, B, T;
    float *x, *w, *b, *o, *R, *dx, *dw, *db, *mean, *rstd;
};

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Probes `probes` elements of p (n floats) against the analytic gradient g. */
static void probe(layer_case *c, const char *what, float *p, const float *g, size_t n, int probes, uint64_t *s)
{
    const float eps = 1e-2f;
    for (int i = 0; i < probes; i++) {
        size_t k = (size_t)(smelt_splitmix64(s) % n);
        float p0 = p[k];
        p[k] = p0 + eps;
        double lp = c->loss(c);
        p[k] = p0 - eps;
        double lm = c->loss(c);
        p[k] = p0;
        expect_close(what, k, g[k], (lp - lm) / (2 * eps));
    }
}

static double ln_loss(layer_case *c)
{
    tl_layernorm_forward(c->o, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C, 1e-5f);
    return dot(c->o, c->R, (size_t)c->N * c->C);
}

static void ln_backward(layer_case *c)
{
    ln_loss(c);
    tl_layernorm_backward(c->dx, c->dw, c->db, c->R, c->x, c->w, c->mean, c->rstd, c->N, c->C);
}

static void test_layernorm(void **state)
{
    (void)state;
    uint64_t s = 11;
    int N = 37, C = 24;
    layer_case c = {.loss = ln_loss, .backward = ln_backward, .N = N, .C = C};
    c.x = randv((size_t)N * C, 0.3f, 2.0f, &s), c.w = randv(C, 1.0f, 0.5f, &s), c.b = randv(C, 0, 0.5f, &s), c.R = randv((size_t)N * C, 0, 1, &s);
    c.o = calloc((size_t)N * C, sizeof(float)), c.dx = calloc((size_t)N * C, sizeof(float));
    c.dw = calloc(C, sizeof(float)), c.db = calloc(C, sizeof(float)), c.mean = calloc(N, sizeof(float)), c.rstd = calloc(N, sizeof(float));
    c.backward(&c);
    /* with weight one and bias zero a normalized row has mean zero and variance one */
    float ones[24], zeros[24] = {0};
    for (int i = 0; i < C; i++) ones[i] = 1;
    tl_layernorm_forward(c.o, c.mean, c.rstd, c.x, ones, zeros, N, C, 1e-5f);
    double m = 0, v = 0;
    for (int i = 0; i < C; i++) m += c.o[i], v += (double)c.o[i] * c.o[i];
    assert_true(fabs(m / C) < 1e-6 && fabs(v / C - 1) < 1e-3);
    probe(&c, "layernorm x", c.x, c.dx, (size_t)N * C, 12, &s);
    probe(&c, "layernorm w", c.w, c.dw, C, 8, &s);
    probe(&c, "layernorm b", c.b, c.db, C, 8, &s);
    free(c.x), free(c.w), free(c.b), free(c.R), free(c.o), free(c.dx), free(c.dw), free(c.db), free(c.mean), free(c.rstd);
}

static double gelu_loss(layer_case *c)
{
    tl_gelu_forward(c->o, c->x, c->N);
    return dot(c->o, c->R, (size_t)c->N);
}

static void gelu_backward(layer_case *c)
{
    gelu_loss(c);
    tl_gelu_backward(c->dx, c->R, c->x, c->N);
}

static void test_gelu(void **state)
{
    (void)state;
    uint64_t s = 12;
    int n = 200;
    layer_case c = {.loss = gelu_loss, .backward = gelu_backward, .N = n};
    c.x = randv(n, 0, 4.0f, &s), c.R = randv(n, 0, 1, &s), c.o = calloc(n, sizeof(float)), c.dx = calloc(n, sizeof(float));
    c.backward(&c);
    /* known values of the tanh approximation: gelu(1) = 0.841192, gelu(-1) = -0.158808 */
    float xs[2] = {1, -1}, ys[2];
    tl_gelu_forward(ys, xs, 2);
    assert_float_equal(ys[0], 0.841192, 1e-5);
    assert_float_equal(ys[1], -0.158808, 1e-5);
    probe(&c, "gelu x", c.x, c.dx, n, 24, &s);
    /* dx may alias dy */
    float *d = malloc(n * sizeof *d);
    memcpy(d, c.R, n * sizeof *d);
    tl_gelu_backward(d, d, c.x, n);
    assert_memory_equal(d, c.dx, n * sizeof *d);
    free(d), free(c.x), free(c.R), free(c.o), free(c.dx);
}

static double linear_loss(layer_case *c)
{
    tl_linear_forward(c->o, c->x, c->w, c->b, c->N, c->in, c->out);
    return dot(c->o, c->R, (size_t)c->N * c->out);
}

static void linear_backward(layer_case *c)
{
    linear_loss(c);
    tl_linear_backward(c->dx, false, c->dw, c->db, c->R, c->x, c->w, c->N, c->in, c->out);
}

static void test_biased_linear(void **state)
{
    (void)state;
    uint64_t s = 13;
    /* 300 rows: the bias gradient sums three reduction blocks of 128 rows */
    int N = 300, in = 10, out = 7;
    layer_case c = {.loss = linear_loss, .backward = linear_backward, .N = N, .in = in, .out = out};
    c.x = randv((size_t)N * in, 0, 1, &s), c.w = randv((size_t)out * in, 0, 0.5f, &s), c.b = randv(out, 0, 0.5f, &s), c.R = randv((size_t)N * out, 0, 1, &s);
    c.o = calloc((size_t)N * out, sizeof(float)), c.dx = calloc((size_t)N * in, sizeof(float));
    c.dw = calloc((size_t)out * in, sizeof(float)), c.db = calloc(out, sizeof(float));
    c.backward(&c);
    /* the forward adds the bias to x W^T: row 0, output 0 worked out directly */
    double y = c.b[0];
    for (int i = 0; i < in; i++) y += (double)c.x[i] * c.w[i];
    assert_float_equal(c.o[0], y, 1e-5);
    probe(&c, "linear x", c.x, c.dx, (size_t)N * in, 8, &s);
    probe(&c, "linear W", c.w, c.dw, (size_t)out * in, 8, &s);
    probe(&c, "linear b", c.b, c.db, out, 7, &s);
    free(c.x), free(c.w), free(c.b), free(c.R), free(c.o), free(c.dx), free(c.dw), free(c.db);
}

static double pos_loss(layer_case *c)
{
    memcpy(c->o, c->x, (size_t)c->N * c->C * sizeof(float));
    tl_pos_forward(c->o, c->w, c->B, c->T, c->C);
    return dot(c->o, c->R, (size_t)c->N * c->C);
}

static void pos_backward(layer_case *c)
{
    pos_loss(c);
    tl_pos_backward(c->dw, c->R, c->B, c->T, c->C);
}

static void test_positions(void **state)
{
    (void)state;
    uint64_t s = 14;
    int B = 3, T = 9, C = 5, P = 12; /* a table longer than the sequences: rows T.. get no gradient */
    layer_case c = {.loss = pos_loss, .backward = pos_backward, .N = B * T, .C = C, .B = B, .T = T};
    c.x = randv((size_t)B * T * C, 0, 1, &s), c.w = randv((size_t)P * C, 0, 1, &s), c.R = randv((size_t)B * T * C, 0, 1, &s);
    c.o = calloc((size_t)B * T * C, sizeof(float)), c.dw = calloc((size_t)P * C, sizeof(float));
    c.backward(&c);
    /* token 1 of sequence 2 gets position 1's row */
    assert_float_equal(c.o[(2 * T + 1) * C + 3], c.x[(2 * T + 1) * C + 3] + c.w[1 * C + 3], 1e-6);
    for (int i = T * C; i < P * C; i++) assert_true(c.dw[i] == 0);
    probe(&c, "wpe", c.w, c.dw, (size_t)T * C, 12, &s);
    free(c.x), free(c.w), free(c.R), free(c.o), free(c.dw);
}

static const tm_config gpt2_small = {.V = 29, .C = 16, .L = 2, .nh = 4, .nkv = 4, .hd = 4, .F = 24, .max_pos = 160, .eps = 1e-5f, .tied = true, .arch = TM_GPT2};

static tm_model *random_gpt2(uint64_t *s)
{
    tm_model *m;
    TRY_OK(tm_new(&gpt2_small, &m));
    for (int i = 0; i < m->n_tensors; i++) {
        tm_tensor *t = &m->tensors[i];
        float *w = tm_w(m, i);
        float center = t->kind == TM_K_NORM ? 1.0f : 0, spread = t->kind == TM_K_NORM ? 0.3f : t->kind == TM_K_BIAS ? 0.2f : 0.4f;
        for (size_t k = 0; k < t->numel; k++) w[k] = center + spread * unif(s);
    }
    return m;
}

static double model_loss(tm_model *m, tm_acts *a, const int32_t *ids, const int32_t *tg, const float *teacher)
{
    tl_loss_sums sums = {0};
    tm_forward_backward(m, a, ids, tg, teacher, 0.6f, 2.0f, 0, &sums, NULL);
    return tl_loss_value(&sums, 0.6f, 2.0f, 1);
}

/* Every tensor of a random GPT-2 (embedding, positions, both LayerNorms' weights and biases, c_attn's
 * q, k and v row blocks and bias, c_proj, c_fc, mlp c_proj, ln_f), `probes` elements each. */
static void gpt2_finite_differences(int B, int T, int probes)
{
    uint64_t s = 42;
    tm_model *m = random_gpt2(&s);
    const tm_config *c = &m->c;
    int N = B * T, scored = 0;
    int32_t *ids = malloc((size_t)N * sizeof *ids), *tg = malloc((size_t)N * sizeof *tg);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(smelt_splitmix64(&s) % (uint64_t)c->V), tg[i] = i % 5 == 3 ? -1 : (int32_t)(smelt_splitmix64(&s) % (uint64_t)c->V);
    for (int i = 0; i < N; i++) scored += tg[i] >= 0;
    float *teacher = randv((size_t)N * c->V, 0, 2.0f, &s);
    tm_acts *a;
    TRY_OK(tm_acts_new(c, B, T, &a));
    memset(m->g, 0, m->n_params * sizeof(float));
    tl_loss_sums sums = {0};
    tm_forward_backward(m, a, ids, tg, teacher, 0.6f, 2.0f, 1.0f / (float)scored, &sums, NULL);
    const float eps = 1e-2f;
    int n_checked = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        tm_tensor *t = &m->tensors[i];
        for (int p = 0; p < probes; p++) {
            size_t k = (size_t)(smelt_splitmix64(&s) % t->numel);
            if (i == tm_idx_embed(m)) k = (size_t)ids[p] * (size_t)c->C + (size_t)p % c->C; /* rows that are used */
            if (i == tm_idx_pos(m)) k = (size_t)((p * 7) % T) * (size_t)c->C + (size_t)p % c->C;
            /* c_attn: one probe in each of the q, k and v row blocks at least */
            if (t->kind == TM_K_PROJ && t->shape[0] == 3 * c->C) k = (size_t)(p % 3) * c->C * c->C + k % ((size_t)c->C * c->C);
            float *w = tm_w(m, i) + k, w0 = *w;
            *w = w0 + eps;
            double lp = model_loss(m, a, ids, tg, teacher);
            *w = w0 - eps;
            double lm = model_loss(m, a, ids, tg, teacher);
            *w = w0;
            expect_close(t->name, k, tm_g(m, i)[k], (lp - lm) / (2 * eps));
            n_checked++;
        }
    }
    printf("gpt2 B %d T %d: %d finite-difference probes over %d tensors agree\n", B, T, n_checked, m->n_tensors);
    assert_int_equal(m->n_tensors, 2 + 12 * c->L + 2);
    free(ids), free(tg), free(teacher);
    tm_acts_free(a);
    tm_free(m);
}

static void test_gpt2_model(void **state)
{
    (void)state;
    gpt2_finite_differences(2, 7, 6);
    /* several blocks of query rows in the attention (64 a block), the last partial; 150 tokens
     * also make the norm and bias gradients sum two reduction blocks */
    gpt2_finite_differences(1, 150, 3);
}

/* The largest |a - b| over n floats. */
static double max_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* The engine's logits for B sequences of T tokens, each from position 0. */
static void engine_logits(const smelt_model *sm, const int32_t *ids, int B, int T, float *out)
{
    llm_engine *e;
    TRY_OK(llm_engine_new(sm, &e));
    for (int b = 0; b < B; b++) {
        llm_seq *q;
        TRY_OK(llm_seq_new(e, &q));
        llm_batch_item it = {q, ids + (size_t)b * T, T, true};
        TRY_OK(llm_forward(e, &it, 1, out + (size_t)b * T * sm->llm.vocab_size));
        llm_seq_free(q);
    }
    llm_engine_free(e);
}

static void test_gpt2_matches_engine(void **state)
{
    (void)state;
    hf_synth_opts o = {.arch = "gpt2", .hidden = 64, .n_layers = 2, .n_heads = 4, .vocab_size = 300, .max_pos = 128, .dtype = SMELT_DT_F32, .seed = 5};
    smelt_model *sm;
    TRY_OK(hf_synth(&o, &sm));
    tm_config c;
    TRY_OK(tm_config_from_llm(sm, "synth gpt2", &c));
    assert_int_equal(c.arch, TM_GPT2);
    assert_int_equal(c.F, 256);
    tm_model *m;
    TRY_OK(tm_new(&c, &m));
    TRY_OK(tm_load_from(m, sm, NULL, "synth gpt2"));
    int B = 2, T = 100, N = B * T;
    uint64_t s = 9;
    int32_t *ids = malloc((size_t)N * sizeof *ids), *tg = malloc((size_t)N * sizeof *tg);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(smelt_splitmix64(&s) % 300), tg[i] = -1;
    tm_acts *a;
    TRY_OK(tm_acts_new(&c, B, T, &a));
    tl_loss_sums sums = {0};
    tm_forward_backward(m, a, ids, tg, NULL, 0, 1, 0, &sums, NULL);
    float *want = malloc((size_t)N * c.V * sizeof *want);
    engine_logits(sm, ids, B, T, want);
    double d = max_diff(tm_acts_logits(a), want, (size_t)N * c.V), scale = 0;
    for (size_t i = 0; i < (size_t)N * c.V; i++) scale = fmax(scale, fabs(want[i]));
    printf("gpt2 training forward vs engine: max |logit difference| %.3g (logits up to %.3g)\n", d, scale);
    assert_true(scale > 0.5); /* not a degenerate model */
    assert_true(d <= 1e-4);
    /* the trainable model written back to the IR runs in the engine with the same logits */
    smelt_model *back;
    TRY_OK(tm_to_smelt(m, NULL, NULL, &back));
    assert_string_equal(back->arch, "gpt2");
    float *got = malloc((size_t)N * c.V * sizeof *got);
    engine_logits(back, ids, B, T, got);
    assert_true(max_diff(got, want, (size_t)N * c.V) == 0);
    smelt_model_free(back);
    free(got), free(want), free(ids), free(tg);
    tm_acts_free(a);
    tm_free(m);
    smelt_model_free(sm);
}

static void test_gpt2_no_decay_on_norms_and_biases(void **state)
{
    (void)state;
    uint64_t s = 3;
    tm_model *m = random_gpt2(&s);
    int biases = 0, norms = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const tm_tensor *t = &m->tensors[i];
        assert_int_equal(t->decay, t->ndim == 2);
        biases += t->kind == TM_K_BIAS, norms += t->kind == TM_K_NORM;
    }
    assert_int_equal(biases, 6 * m->c.L + 1); /* LayerNorm biases are biases too */
    assert_int_equal(norms, 2 * m->c.L + 1);
    /* with zero gradients only decay moves weights: matrices shrink by lr wd w, biases and norms stay */
    float *before = malloc(m->n_params * sizeof *before);
    memcpy(before, m->w, m->n_params * sizeof *before);
    memset(m->g, 0, m->n_params * sizeof(float));
    adamw_state st;
    TRY_OK(adamw_init(&st, m->n_params));
    adamw_opts o = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.5f};
    adamw_step(m, &st, &o, 0.1f, 1.0f);
    int fc_b = tm_idx_layer(m, 1, TG_FCB), ln2 = tm_idx_layer(m, 0, TG_LN2W), fc_w = tm_idx_layer(m, 0, TG_FCW), lnf_b = tm_idx_norm(m) + 1;
    assert_memory_equal(tm_w(m, fc_b), before + m->tensors[fc_b].off, m->tensors[fc_b].numel * sizeof(float));
    assert_memory_equal(tm_w(m, ln2), before + m->tensors[ln2].off, m->tensors[ln2].numel * sizeof(float));
    assert_memory_equal(tm_w(m, lnf_b), before + m->tensors[lnf_b].off, m->tensors[lnf_b].numel * sizeof(float));
    assert_float_equal(tm_w(m, fc_w)[3], before[m->tensors[fc_w].off + 3] * (1 - 0.1 * 0.5), 1e-7);
    adamw_free(&st);
    free(before);
    tm_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_biased_linear),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_gpt2_model),
        cmocka_unit_test(test_gpt2_matches_engine),
        cmocka_unit_test(test_gpt2_no_decay_on_norms_and_biases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
