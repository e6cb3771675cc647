/* The optimizer and the run's state: the learning-rate schedule at its landmarks, AdamW's first
 * two updates worked out by hand (decay on matrices only), the global gradient norm, the data
 * loader's determinism and resumable position, and checkpoints that round-trip exactly and refuse
 * another run's or damaged files without touching the model. */
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
#include <cmocka.h>

#include "distill/adamw.h"
#include "distill/checkpoint.h"
#include "distill/data.h"

#define TRY_OK(e)                                  \
    do {                                           \
        smelt_err *e_ = (e);                       \
        if (e_) fail_msg("%s", smelt_err_msg(e_)); \
    } while (0)

static const tm_config small = {.V = 11, .C = 4, .L = 1, .nh = 2, .nkv = 1, .hd = 2, .F = 6, .max_pos = 16, .eps = 1e-5f, .theta = 10000, .tied = true};

static void test_schedule(void **state)
{
    (void)state;
    adamw_opts o = {.lr = 1e-3f, .min_lr_ratio = 0.1f, .warmup = 10, .total_steps = 110};
    assert_float_equal(adamw_lr(&o, 0), 1e-4, 1e-9);
    assert_float_equal(adamw_lr(&o, 9), 1e-3, 1e-9);
    assert_float_equal(adamw_lr(&o, 10), 1e-3, 1e-9);
    assert_float_equal(adamw_lr(&o, 60), 0.55e-3, 1e-9); /* half-way down the cosine: 0.1 + 0.9 / 2 */
    assert_float_equal(adamw_lr(&o, 110), 1e-4, 1e-9);
    o.warmup = 0;
    assert_float_equal(adamw_lr(&o, 0), 1e-3, 1e-9);
}

static void test_adamw_by_hand(void **state)
{
    (void)state;
    tm_model *m;
    TRY_OK(tm_new(&small, &m));
    adamw_state s;
    TRY_OK(adamw_init(&s, m->n_params));
    int wq = tm_idx_layer(m, 0, TM_WQ), ln = tm_idx_layer(m, 0, TM_LN1);
    tm_w(m, wq)[0] = 2.0f, tm_g(m, wq)[0] = -0.5f;
    tm_w(m, ln)[0] = 2.0f, tm_g(m, ln)[0] = -0.5f;
    /* global norm: two entries of 0.5 */
    assert_float_equal(tm_grad_norm(m), sqrt(0.5), 1e-9);
    adamw_opts o = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f};
    /* step 1: m_hat = g, v_hat = g^2, so the Adam term is sign(g); decay adds lr wd w on matrices */
    adamw_step(m, &s, &o, 0.1f, 1.0f);
    assert_float_equal(tm_w(m, wq)[0], 2.0 - 0.1 * (-1.0 + 0.1 * 2.0), 1e-6);
    assert_float_equal(tm_w(m, ln)[0], 2.0 - 0.1 * (-1.0), 1e-6);
    assert_float_equal(tm_w(m, wq)[1], 0.0, 0);
    /* step 2 with the gradient halved by clipping (mul 0.5): m = 0.9 m1 + 0.1 g2, bias-corrected */
    double g1 = -0.5, g2 = -0.25, m2 = (0.9 * 0.1 * g1 + 0.1 * g2) / (1 - 0.81), v2 = (0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2) / (1 - 0.999 * 0.999);
    double w1 = 2.0 - 0.1 * (-1.0 + 0.2);
    adamw_step(m, &s, &o, 0.1f, 0.5f);
    assert_float_equal(tm_w(m, wq)[0], w1 - 0.1 * (m2 / (sqrt(v2) + 1e-8) + 0.1 * w1), 1e-5);
    assert_int_equal(s.t, 2);
    adamw_free(&s);
    tm_free(m);
}

static char *write_text(const char *name, int docs)
{
    char *path = malloc(256);
    snprintf(path, 256, "/tmp/smelt_test_distill_%d_%s", (int)getpid(), name);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < docs; i++) fprintf(f, "%sdocument %d says the quick brown fox jumps over the lazy dog %d times\n", i ? "\n\x1e\n" : "", i, i * 7);
    fclose(f);
    return path;
}

static void test_data_loader(void **state)
{
    (void)state;
    smelt_tokenizer *tok;
    TRY_OK(smelt_tokenizer_load_file("models/tiny-llama/tokenizer.json", &tok));
    char *a = write_text("a.txt", 40), *b = write_text("b.txt", 10), spec_b[300];
    snprintf(spec_b, sizeof spec_b, "%s:3", b);
    const char *specs[2] = {a, spec_b};
    enum { B = 5, T = 16 };
    dd_loader *l1, *l2, *l3;
    TRY_OK(dd_open(specs, 2, tok, 0, T, 99, &l1));
    TRY_OK(dd_open(specs, 2, tok, 0, T, 99, &l2));
    TRY_OK(dd_open(specs, 2, tok, 0, T, 100, &l3));
    int32_t i1[B * T], t1[B * T], i2[B * T], t2[B * T], i3[B * T], t3[B * T];
    bool differs = false;
    dd_state mid = {0};
    for (int k = 0; k < 30; k++) {
        if (k == 12) mid = dd_get_state(l1);
        dd_next(l1, B, i1, t1);
        dd_next(l2, B, i2, t2);
        dd_next(l3, B, i3, t3);
        assert_memory_equal(i1, i2, sizeof i1);
        assert_memory_equal(t1, t2, sizeof t1);
        differs |= memcmp(i1, i3, sizeof i1) != 0;
        for (int s = 0; s < B; s++)
            for (int t = 0; t + 1 < T; t++) assert_int_equal(t1[s * T + t], i1[s * T + t + 1]);
    }
    assert_true(differs);
    /* a loader set to a saved position continues exactly as the original did */
    dd_loader *l4;
    TRY_OK(dd_open(specs, 2, tok, 0, T, 99, &l4));
    dd_set_state(l4, &mid);
    dd_loader *l5;
    TRY_OK(dd_open(specs, 2, tok, 0, T, 99, &l5));
    for (int k = 0; k < 12; k++) dd_next(l5, B, i2, t2);
    for (int k = 12; k < 30; k++) {
        dd_next(l4, B, i1, t1);
        dd_next(l5, B, i2, t2);
        assert_memory_equal(i1, i2, sizeof i1);
    }
    /* every window of a domain is used once an epoch */
    const char *one[1] = {b};
    dd_loader *l6;
    TRY_OK(dd_open(one, 1, tok, 0, T, 5, &l6));
    int64_t nw = (int64_t)((dd_domain_tokens(l6, 0) - 1) / T);
    int32_t *seen = calloc((size_t)nw * T, sizeof *seen), w[T], wt[T];
    for (int64_t k = 0; k < nw; k++) {
        dd_next(l6, 1, w, wt);
        memcpy(seen + k * T, w, sizeof w);
    }
    for (int64_t x = 0; x < nw; x++)
        for (int64_t y = x + 1; y < nw; y++) assert_true(memcmp(seen + x * T, seen + y * T, sizeof w) != 0);
    /* bad input */
    char bad[300];
    snprintf(bad, sizeof bad, "%s:-1", a);
    const char *bads[1] = {bad};
    dd_loader *lx = NULL;
    smelt_err *err = dd_open(bads, 1, tok, 0, T, 1, &lx);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "must be a positive number"));
    smelt_err_free(err);
    free(seen);
    dd_free(l1), dd_free(l2), dd_free(l3), dd_free(l4), dd_free(l5), dd_free(l6);
    remove(a), remove(b);
    free(a), free(b);
    smelt_tokenizer_free(tok);
}

static void test_checkpoint(void **state)
{
    (void)state;
    tm_model *m, *m2;
    TRY_OK(tm_new(&small, &m));
    TRY_OK(tm_new(&small, &m2));
    adamw_state s, s2;
    TRY_OK(adamw_init(&s, m->n_params));
    TRY_OK(adamw_init(&s2, m->n_params));
    for (size_t i = 0; i < m->n_params; i++) m->w[i] = (float)i * 0.25f, s.m[i] = -(float)i, s.v[i] = (float)i * 3;
    s.t = 17;
    dd_state ds = {.rng = 0xfedcba9876543210ull, .cursor = {3, 4}, .epoch = {1, 2}}, ds2;
    json_t *fp = json_pack("{s:i, s:s}", "batch", 4, "seed", "7"), *fp_other = json_pack("{s:i, s:s}", "batch", 4, "seed", "8");
    char path[128];
    snprintf(path, sizeof path, "/tmp/smelt_test_ckpt_%d.bin", (int)getpid());
    TRY_OK(ck_save(path, m, &s, 42, 1.5, &ds, fp));
    int64_t step;
    double loss;
    smelt_err *err = ck_load(path, m2, &s2, &step, &loss, &ds2, fp_other);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "'seed' differs"));
    smelt_err_free(err);
    assert_float_equal(m2->w[5], 0, 0); /* untouched */
    TRY_OK(ck_load(path, m2, &s2, &step, &loss, &ds2, fp));
    assert_int_equal(step, 42);
    assert_float_equal(loss, 1.5, 0);
    assert_int_equal(s2.t, 17);
    assert_memory_equal(m->w, m2->w, m->n_params * sizeof(float));
    assert_memory_equal(s.v, s2.v, m->n_params * sizeof(float));
    assert_true(ds2.rng == ds.rng && ds2.cursor[1] == 4 && ds2.epoch[1] == 2);
    /* one flipped payload byte */
    FILE *f = fopen(path, "r+b");
    fseek(f, -3, SEEK_END);
    fputc(0x5a, f);
    fclose(f);
    memset(m2->w, 0, m2->n_params * sizeof(float));
    err = ck_load(path, m2, &s2, &step, &loss, &ds2, fp);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "SHA-256"));
    smelt_err_free(err);
    assert_float_equal(m2->w[5], 0, 0);
    remove(path);
    json_decref(fp), json_decref(fp_other);
    adamw_free(&s), adamw_free(&s2);
    tm_free(m), tm_free(m2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_adamw_by_hand),
        cmocka_unit_test(test_data_loader),
        cmocka_unit_test(test_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
