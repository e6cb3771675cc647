/* The language-model engine against the fixtures' reference outputs (PyTorch, f32 compute):
 * logits of the first 48 val tokens of every domain (max abs error ≤ 2e-3, same argmax at every
 * position) for the bf16 teacher and the f32 tiny-llama, read from Hugging Face folders and from
 * .smelt artifacts; decoding token by token through the KV cache gives the full recompute's logits
 * (≤ 1e-4), also with sequences of different lengths sharing a batch; bad batches are refused
 * without touching the caches. */
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

#include "formats/artifact.h"
#include "formats/hf_model.h"
#include "formats/safetensors.h"
#include "runtime/llm.h"

static const char *const domains[] = {"prose", "quotes", "code"};

static smelt_model *load_hf(const char *dir)
{
    smelt_model *m = NULL;
    smelt_err *err = hf_import(dir, false, &m);
    if (err) fail_msg("%s", smelt_err_msg(err));
    return m;
}

static smelt_model *load_ref(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    smelt_model *r = smelt_model_new(SMELT_KIND_GRAPH, "ref");
    smelt_err *err = safetensors_read(path, r, NULL);
    if (err) fail_msg("%s", smelt_err_msg(err));
    return r;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static void check_reference_logits(smelt_model *m, const char *dir)
{
    smelt_model *ref = load_ref(dir);
    llm_engine *e = NULL;
    smelt_err *err = llm_engine_new(m, &e);
    if (err) fail_msg("%s", smelt_err_msg(err));
    int V = llm_engine_config(e)->vocab_size;
    for (int d = 0; d < 3; d++) {
        char name[64];
        snprintf(name, sizeof name, "ids.%s", domains[d]);
        const smelt_tensor *ids = smelt_model_find(ref, name);
        snprintf(name, sizeof name, "logits.%s", domains[d]);
        const smelt_tensor *want = smelt_model_find(ref, name);
        assert_non_null(ids);
        assert_non_null(want);
        int T = (int)ids->shape[1];
        int32_t tok[64];
        for (int t = 0; t < T; t++) tok[t] = (int32_t)((const int64_t *)ids->data)[t];
        float *got = malloc((size_t)T * V * sizeof *got);
        llm_seq *s;
        assert_null(llm_seq_new(e, &s));
        llm_batch_item it = {s, tok, T, true};
        assert_null(llm_forward(e, &it, 1, got));
        const float *w = want->data;
        double max_err = 0;
        for (size_t i = 0; i < (size_t)T * V; i++) max_err = fmax(max_err, fabs((double)got[i] - w[i]));
        for (int t = 0; t < T; t++)
            if (argmax(got + (size_t)t * V, V) != argmax(w + (size_t)t * V, V)) fail_msg("%s %s: argmax differs at position %d", dir, domains[d], t);
        if (max_err > 2e-3) fail_msg("%s %s: max abs logit error %g > 2e-3", dir, domains[d], max_err);
        printf("# %s %s: max abs logit error %.2e over %d positions\n", dir, domains[d], max_err, T);
        llm_seq_free(s);
        free(got);
    }
    llm_engine_free(e);
    smelt_model_free(ref);
}

static void teacher_reference_logits(void **state)
{
    (void)state;
    smelt_model *m = load_hf("models/llama-teacher");
    check_reference_logits(m, "models/llama-teacher");
    smelt_model_free(m);
}

static void tiny_reference_logits(void **state)
{
    (void)state;
    smelt_model *m = load_hf("models/tiny-llama");
    check_reference_logits(m, "models/tiny-llama");
    smelt_model_free(m);
}

/* The same numbers from the .smelt artifact (tensors mmapped from the zip). */
static void artifact_reference_logits(void **state)
{
    (void)state;
    char dir[] = "/tmp/smelt-llm-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.smelt", dir);
    smelt_model *m = load_hf("models/llama-teacher"), *a = NULL;
    artifact_write_opts wo = {"any", "test", "test"};
    assert_null(artifact_write(path, m, &wo));
    smelt_model_free(m);
    assert_null(artifact_read(path, &a));
    check_reference_logits(a, "models/llama-teacher");
    smelt_model_free(a);
    remove(path);
    remove(dir);
}

/* The bytes a decode step reads, from the configs by hand: every f32 projection, norm and the
 * head; embedding rows do not count, except that a tied head reads the whole table. */
static void weight_bytes_per_token(void **state)
{
    (void)state;
    /* teacher: hidden 256, 6 layers, q 256, kv 128, ffn 768, vocab 4096, untied */
    smelt_model *m = load_hf("models/llama-teacher");
    llm_engine *e;
    assert_null(llm_engine_new(m, &e));
    size_t layer = 256 * 256 + 2 * 128 * 256 + 256 * 256 + 3 * 768 * 256 + 2 * 256;
    assert_int_equal(llm_engine_weight_bytes(e), 4 * (6 * layer + 256 + 4096 * 256));
    llm_engine_free(e);
    smelt_model_free(m);
    /* tiny-llama: hidden 128, 2 layers, q 128, kv 64, ffn 352, vocab 4096, tied */
    m = load_hf("models/tiny-llama");
    assert_null(llm_engine_new(m, &e));
    layer = 128 * 128 + 2 * 64 * 128 + 128 * 128 + 3 * 352 * 128 + 2 * 128;
    assert_int_equal(llm_engine_weight_bytes(e), 4 * (2 * layer + 128 + 4096 * 128));
    llm_engine_free(e);
    smelt_model_free(m);
}

/* Token-by-token decoding through the cache, several sequences of different lengths advancing in
 * one batch, against one full forward pass of each sequence. */
static void kv_cache_matches_recompute(void **state)
{
    (void)state;
    smelt_model *m = load_hf("models/tiny-llama"), *ref = load_ref("models/tiny-llama");
    llm_engine *e;
    assert_null(llm_engine_new(m, &e));
    int V = llm_engine_config(e)->vocab_size;
    enum { NS = 3, LEN = 40 };
    int32_t toks[NS][LEN];
    const int64_t *src[NS];
    for (int d = 0; d < NS; d++) {
        char name[32];
        snprintf(name, sizeof name, "ids.%s", domains[d]);
        src[d] = smelt_model_find(ref, name)->data;
        for (int t = 0; t < LEN; t++) toks[d][t] = (int32_t)src[d][t];
    }
    /* full recompute of each sequence */
    float *full = malloc((size_t)NS * LEN * V * sizeof *full);
    for (int d = 0; d < NS; d++) {
        llm_seq *s;
        assert_null(llm_seq_new(e, &s));
        llm_batch_item it = {s, toks[d], LEN, true};
        assert_null(llm_forward(e, &it, 1, full + (size_t)d * LEN * V));
        llm_seq_free(s);
    }
    /* prefills of different lengths (5, 11, 17), then all three decode together one token a step;
     * a sequence joins late and one retires early */
    llm_seq *s[NS];
    int len[NS] = {5, 11, 17};
    float *out = malloc((size_t)NS * V * sizeof *out), *pre = malloc((size_t)17 * V * sizeof *pre);
    double max_err = 0;
    for (int d = 0; d < NS; d++) {
        assert_null(llm_seq_new(e, &s[d]));
        llm_batch_item it = {s[d], toks[d], len[d], true};
        assert_null(llm_forward(e, &it, 1, pre));
        for (size_t i = 0; i < (size_t)len[d] * V; i++) max_err = fmax(max_err, fabs(pre[i] - full[(size_t)d * LEN * V + i]));
    }
    for (int step = 0; step < 2 * LEN; step++) {
        llm_batch_item items[NS];
        int n = 0, who[NS];
        for (int d = 0; d < NS; d++) {
            if (len[d] >= LEN || (d == 0 && step < 3)) continue; /* seq 0 waits 3 steps; each retires at LEN */
            items[n] = (llm_batch_item){s[d], &toks[d][len[d]], 1, false};
            who[n++] = d;
        }
        if (!n) break;
        assert_null(llm_forward(e, items, n, out));
        for (int k = 0; k < n; k++) {
            int d = who[k];
            const float *f = full + ((size_t)d * LEN + len[d]) * V;
            for (int i = 0; i < V; i++) max_err = fmax(max_err, fabs(out[(size_t)k * V + i] - f[i]));
            len[d]++;
            assert_int_equal(llm_seq_len(s[d]), len[d]);
        }
    }
    printf("# cached decode vs full recompute: max abs logit difference %.2e\n", max_err);
    assert_true(max_err <= 1e-4);

    /* a bad batch changes nothing */
    int32_t bad = 999999;
    llm_batch_item it = {s[1], &bad, 1, false};
    smelt_err *err = llm_forward(e, &it, 1, out);
    assert_non_null(err);
    assert_string_equal(smelt_err_msg(err), "token id 999999 is outside the vocabulary (0 to 4095)");
    smelt_err_free(err);
    llm_batch_item twice[2] = {{s[1], toks[1], 1, false}, {s[1], toks[1], 1, false}};
    err = llm_forward(e, twice, 2, out);
    assert_non_null(err);
    assert_string_equal(smelt_err_msg(err), "batch items 0 and 1 are the same sequence");
    smelt_err_free(err);
    int32_t *many = calloc(2000, sizeof *many);
    llm_batch_item longp = {s[2], many, 2000, false};
    err = llm_forward(e, &longp, 1, out);
    assert_non_null(err);
    if (!strstr(smelt_err_msg(err), "exceed the model's context of")) fail_msg("%s", smelt_err_msg(err));
    smelt_err_free(err);
    for (int d = 0; d < NS; d++) assert_int_equal(llm_seq_len(s[d]), LEN);
    free(many);

    for (int d = 0; d < NS; d++) llm_seq_free(s[d]);
    free(out);
    free(pre);
    free(full);
    llm_engine_free(e);
    smelt_model_free(ref);
    smelt_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(teacher_reference_logits),
        cmocka_unit_test(tiny_reference_logits),
        cmocka_unit_test(artifact_reference_logits),
        cmocka_unit_test(kv_cache_matches_recompute),
        cmocka_unit_test(weight_bytes_per_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
