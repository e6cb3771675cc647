/* The engine on models no fixture covers, made by hf_synth and written/read back through
 * hf_export/hf_import (so GPT-2's Conv1D layout round-trips as a real checkpoint would):
 *   - GPT-2's logits equal a naive scalar forward written here straight from the Hugging Face
 *     definition on the Conv1D [in, out] weights as stored (≤ 1e-4);
 *   - for GPT-2 and for a Llama whose head_dim (24) is not hidden/heads (16), decoding token by
 *     token through the KV cache, prefilling in two chunks, and a ragged batch mixing one
 *     sequence's prefill with another's decode all give the full forward's logits (≤ 1e-4);
 *   - synthesis is deterministic for a seed and its parameter count matches the closed form. */
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

#include "formats/hf_model.h"
#include "formats/hf_synth.h"
#include "formats/safetensors.h"
#include "runtime/llm.h"

#define T_FULL 24
#define TOL 1e-4

static const hf_synth_opts gpt2_opts = {.arch = "gpt2", .hidden = 64, .n_layers = 2, .n_heads = 4, .vocab_size = 512, .max_pos = 64,
                                        .dtype = SMELT_DT_F32, .seed = 11};
/* q_out = 4 * 24 = 96 != hidden 64; GQA 4:2 */
static const hf_synth_opts llama_opts = {.arch = "llama", .hidden = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 24, .ffn = 160,
                                         .vocab_size = 512, .max_pos = 64, .dtype = SMELT_DT_F32, .seed = 12};

typedef struct {
    char dir[64];
    smelt_model *m;
    llm_engine *e;
} fixture;

/* Synthesizes, exports to a fresh temporary folder and imports back. */
static void open_synth(const hf_synth_opts *o, fixture *f)
{
    smelt_model *m = NULL;
    smelt_err *err = hf_synth(o, &m);
    if (err) fail_msg("hf_synth: %s", smelt_err_msg(err));
    snprintf(f->dir, sizeof f->dir, "/tmp/smelt-synth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    if ((err = hf_export(m, f->dir))) fail_msg("hf_export: %s", smelt_err_msg(err));
    smelt_model_free(m);
    if ((err = hf_import(f->dir, false, &f->m))) fail_msg("hf_import: %s", smelt_err_msg(err));
    if ((err = llm_engine_new(f->m, &f->e))) fail_msg("llm_engine_new: %s", smelt_err_msg(err));
}

static void close_synth(fixture *f)
{
    llm_engine_free(f->e);
    smelt_model_free(f->m);
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json"};
    char p[128];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", f->dir, files[i]);
        unlink(p);
    }
    rmdir(f->dir);
}

static void tokens(int32_t *tok, int n, int vocab)
{
    for (int t = 0; t < n; t++) tok[t] = (int32_t)((t * 7919 + 13) % vocab);
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* logits [T, V] of the whole sequence in one call */
static float *full_forward(llm_engine *e, const int32_t *tok, int T)
{
    int V = llm_engine_config(e)->vocab_size;
    float *out = malloc((size_t)T * V * sizeof *out);
    llm_seq *s;
    assert_null(llm_seq_new(e, &s));
    llm_batch_item it = {s, tok, T, true};
    assert_null(llm_forward(e, &it, 1, out));
    llm_seq_free(s);
    return out;
}

static void check_cache_paths(const hf_synth_opts *o)
{
    fixture f;
    open_synth(o, &f);
    int V = o->vocab_size;
    int32_t tok[T_FULL];
    tokens(tok, T_FULL, V);
    float *want = full_forward(f.e, tok, T_FULL), *got = malloc((size_t)T_FULL * V * sizeof *got);

    /* token by token */
    llm_seq *s;
    assert_null(llm_seq_new(f.e, &s));
    for (int t = 0; t < T_FULL; t++) {
        llm_batch_item it = {s, &tok[t], 1, false};
        assert_null(llm_forward(f.e, &it, 1, got + (size_t)t * V));
    }
    double d = max_diff(got, want, (size_t)T_FULL * V);
    printf("# %s: token-by-token decode vs full forward: max abs diff %.2e\n", o->arch, d);
    if (d > TOL) fail_msg("%s: decode through the KV cache differs from the full forward by %g", o->arch, d);

    /* two long chunks: the second attends through sgemm with a non-empty cache */
    llm_seq_truncate(s, 0);
    llm_batch_item c1 = {s, tok, 10, true}, c2 = {s, tok + 10, T_FULL - 10, true};
    assert_null(llm_forward(f.e, &c1, 1, got));
    assert_null(llm_forward(f.e, &c2, 1, got + (size_t)10 * V));
    d = max_diff(got, want, (size_t)T_FULL * V);
    printf("# %s: prefill in chunks of 10 and 14: max abs diff %.2e\n", o->arch, d);
    if (d > TOL) fail_msg("%s: chunked prefill differs from the full forward by %g", o->arch, d);

    /* a ragged batch: s decodes its 13th token while s2 prefills 12 tokens */
    llm_seq *s2;
    assert_null(llm_seq_new(f.e, &s2));
    llm_seq_truncate(s, 12);
    llm_batch_item mix[2] = {{s, tok + 12, 1, true}, {s2, tok, 12, true}};
    assert_null(llm_forward(f.e, mix, 2, got));
    d = fmax(max_diff(got, want + (size_t)12 * V, (size_t)V), max_diff(got + V, want, (size_t)12 * V));
    printf("# %s: ragged batch (decode + prefill): max abs diff %.2e\n", o->arch, d);
    if (d > TOL) fail_msg("%s: a ragged batch differs from the full forward by %g", o->arch, d);
    llm_seq_free(s2);
    llm_seq_free(s);
    free(got);
    free(want);
    close_synth(&f);
}

static void test_gpt2_kv_cache(void **state) { check_cache_paths(&gpt2_opts); }
static void test_llama_head_dim_kv_cache(void **state) { check_cache_paths(&llama_opts); }

/* ---- a naive GPT-2 forward on the stored Conv1D weights, y = x W + b with W [in, out] ---- */

static const float *w_of(const smelt_model *st, const char *fmt, int l)
{
    char name[128];
    snprintf(name, sizeof name, fmt, l);
    const smelt_tensor *t = smelt_model_find(st, name);
    if (!t || t->dtype != SMELT_DT_F32) fail_msg("reference: no f32 tensor '%s'", name);
    return t->data;
}

static void conv1d(const float *x, const float *w, const float *b, int in, int out, float *y)
{
    for (int j = 0; j < out; j++) {
        double s = b[j];
        for (int i = 0; i < in; i++) s += (double)x[i] * w[(size_t)i * out + j];
        y[j] = (float)s;
    }
}

static void layer_norm(const float *x, const float *w, const float *b, int n, float *y)
{
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    double inv = 1 / sqrt(var / n + 1e-5);
    for (int i = 0; i < n; i++) y[i] = (float)((x[i] - mean) * inv * w[i] + b[i]);
}

static void gpt2_reference(const smelt_model *st, const hf_synth_opts *o, const int32_t *tok, int T, float *logits)
{
    int H = o->hidden, F = 4 * H, nh = o->n_heads, hd = H / nh, V = o->vocab_size;
    float *x = calloc((size_t)T * H, sizeof *x), *qkv = calloc((size_t)T * 3 * H, sizeof *qkv), *xn = malloc((size_t)H * sizeof *xn);
    float *att = malloc((size_t)H * sizeof *att), *tmp = malloc((size_t)F * sizeof *tmp), *p = malloc((size_t)T * sizeof *p);
    const float *wte = w_of(st, "transformer.wte.weight", 0), *wpe = w_of(st, "transformer.wpe.weight", 0);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < H; i++) x[(size_t)t * H + i] = wte[(size_t)tok[t] * H + i] + wpe[(size_t)t * H + i];
    for (int l = 0; l < o->n_layers; l++) {
        for (int t = 0; t < T; t++) {
            layer_norm(x + (size_t)t * H, w_of(st, "transformer.h.%d.ln_1.weight", l), w_of(st, "transformer.h.%d.ln_1.bias", l), H, xn);
            conv1d(xn, w_of(st, "transformer.h.%d.attn.c_attn.weight", l), w_of(st, "transformer.h.%d.attn.c_attn.bias", l), H, 3 * H, qkv + (size_t)t * 3 * H);
        }
        for (int t = 0; t < T; t++) { /* q, k, v of every row are computed above, before x changes */
            for (int h = 0; h < nh; h++) {
                const float *q = qkv + (size_t)t * 3 * H + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const float *k = qkv + (size_t)j * 3 * H + H + h * hd;
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += (double)q[d] * k[d];
                    p[j] = (float)(s / sqrt((double)hd));
                    mx = fmax(mx, p[j]);
                }
                for (int j = 0; j <= t; j++) sum += p[j] = (float)exp(p[j] - mx);
                for (int d = 0; d < hd; d++) {
                    double a = 0;
                    for (int j = 0; j <= t; j++) a += p[j] / sum * qkv[(size_t)j * 3 * H + 2 * H + h * hd + d];
                    att[h * hd + d] = (float)a;
                }
            }
            conv1d(att, w_of(st, "transformer.h.%d.attn.c_proj.weight", l), w_of(st, "transformer.h.%d.attn.c_proj.bias", l), H, H, xn);
            for (int i = 0; i < H; i++) x[(size_t)t * H + i] += xn[i];
        }
        for (int t = 0; t < T; t++) {
            float *xt = x + (size_t)t * H;
            layer_norm(xt, w_of(st, "transformer.h.%d.ln_2.weight", l), w_of(st, "transformer.h.%d.ln_2.bias", l), H, xn);
            conv1d(xn, w_of(st, "transformer.h.%d.mlp.c_fc.weight", l), w_of(st, "transformer.h.%d.mlp.c_fc.bias", l), H, F, tmp);
            for (int i = 0; i < F; i++) {
                double v = tmp[i];
                tmp[i] = (float)(0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
            }
            conv1d(tmp, w_of(st, "transformer.h.%d.mlp.c_proj.weight", l), w_of(st, "transformer.h.%d.mlp.c_proj.bias", l), F, H, att);
            for (int i = 0; i < H; i++) xt[i] += att[i];
        }
    }
    for (int t = 0; t < T; t++) {
        layer_norm(x + (size_t)t * H, w_of(st, "transformer.ln_f.weight", 0), w_of(st, "transformer.ln_f.bias", 0), H, xn);
        for (int v = 0; v < V; v++) {
            double s = 0;
            for (int i = 0; i < H; i++) s += (double)xn[i] * wte[(size_t)v * H + i];
            logits[(size_t)t * V + v] = (float)s;
        }
    }
    free(x), free(qkv), free(xn), free(att), free(tmp), free(p);
}

static void test_gpt2_reference(void **state)
{
    fixture f;
    open_synth(&gpt2_opts, &f);
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", f.dir);
    smelt_model *st = smelt_model_new(SMELT_KIND_GRAPH, "raw");
    smelt_err *err = safetensors_read(path, st, NULL);
    if (err) fail_msg("%s", smelt_err_msg(err));
    int V = gpt2_opts.vocab_size;
    int32_t tok[T_FULL];
    tokens(tok, T_FULL, V);
    float *got = full_forward(f.e, tok, T_FULL), *want = malloc((size_t)T_FULL * V * sizeof *want);
    gpt2_reference(st, &gpt2_opts, tok, T_FULL, want);
    double d = max_diff(got, want, (size_t)T_FULL * V), scale = 0;
    for (size_t i = 0; i < (size_t)T_FULL * V; i++) scale = fmax(scale, fabs(want[i]));
    printf("# gpt2: engine vs naive Conv1D reference: max abs diff %.2e (logits up to %.2f)\n", d, scale);
    assert_true(scale > 0.5); /* the logits are not degenerate */
    if (d > TOL) fail_msg("gpt2: the engine's logits differ from the naive reference by %g", d);
    free(got);
    free(want);
    smelt_model_free(st);
    close_synth(&f);
}

static void test_synth_deterministic(void **state)
{
    smelt_model *a = NULL, *b = NULL, *c = NULL;
    hf_synth_opts o = llama_opts;
    assert_null(hf_synth(&o, &a));
    assert_null(hf_synth(&o, &b));
    o.seed++;
    assert_null(hf_synth(&o, &c));
    assert_int_equal(a->n_tensors, b->n_tensors);
    bool any_differs = false;
    for (int i = 0; i < a->n_tensors; i++) {
        assert_string_equal(a->tensors[i].name, b->tensors[i].name);
        assert_memory_equal(a->tensors[i].data, b->tensors[i].data, a->tensors[i].nbytes);
        any_differs |= memcmp(a->tensors[i].data, c->tensors[i].data, a->tensors[i].nbytes) != 0;
    }
    assert_true(any_differs);
    hf_synth_opts chk = llama_opts;
    assert_null(hf_synth_check(&chk));
    assert_int_equal(smelt_model_param_count(a), hf_synth_param_count(&chk));
    smelt_model_free(a), smelt_model_free(b), smelt_model_free(c);
    chk = gpt2_opts;
    assert_null(hf_synth_check(&chk));
    assert_null(hf_synth(&gpt2_opts, &a));
    assert_int_equal(smelt_model_param_count(a), hf_synth_param_count(&chk));
    smelt_model_free(a);
    /* bad combinations are refused with the option named */
    hf_synth_opts bad = gpt2_opts;
    bad.n_kv_heads = 2;
    smelt_err *err = hf_synth_check(&bad);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "--kv-heads"));
    smelt_err_free(err);
    bad = llama_opts;
    bad.head_dim = 0;
    bad.n_heads = 6;
    bad.n_kv_heads = 3;
    err = hf_synth_check(&bad);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "does not divide --hidden"));
    smelt_err_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synth_deterministic),
        cmocka_unit_test(test_gpt2_reference),
        cmocka_unit_test(test_gpt2_kv_cache),
        cmocka_unit_test(test_llama_head_dim_kv_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
