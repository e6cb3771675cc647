/* Hugging Face import/export: the fixture Llamas, synthetic GPT-2 (Conv1D transposition) and Qwen2
 * (q/k/v biases) checkpoints built here, every unsupported-config error, and missing, misshapen or
 * unexpected weights. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "formats/hf_config.h"
#include "formats/hf_model.h"
#include "formats/safetensors.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/smelt-hf-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char *p = smelt_path_join(dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

/* A deterministic f32 tensor filled from its name, so every weight differs. */
typedef struct {
    char name[96];
    int64_t shape[2];
    int ndim;
    float *data;
} wt;

static void fill(wt *w, const char *name, int ndim, int64_t d0, int64_t d1)
{
    snprintf(w->name, sizeof w->name, "%s", name);
    w->ndim = ndim;
    w->shape[0] = d0;
    w->shape[1] = d1;
    int64_t n = ndim == 2 ? d0 * d1 : d0;
    w->data = malloc((size_t)n * sizeof(float));
    uint32_t h = 2166136261u;
    for (const char *c = name; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
    for (int64_t i = 0; i < n; i++) {
        h = h * 1664525u + 1013904223u;
        w->data[i] = (float)((int32_t)(h >> 8) % 1000) / 1000.0f;
    }
}

static void write_weights(const char *dir, wt *ws, int n)
{
    safetensors_entry *es = calloc((size_t)n, sizeof *es);
    for (int i = 0; i < n; i++) {
        int64_t numel = ws[i].ndim == 2 ? ws[i].shape[0] * ws[i].shape[1] : ws[i].shape[0];
        es[i] = (safetensors_entry){ws[i].name, SMELT_DT_F32, ws[i].ndim, ws[i].shape, ws[i].data, (size_t)numel * 4};
    }
    char *p = smelt_path_join(dir, "model.safetensors");
    smelt_err *err = safetensors_write(p, es, n, NULL);
    if (err) fail_msg("%s", smelt_err_msg(err));
    free(p);
    free(es);
}

/* GPT-2: n_embd 8, 1 layer, 2 heads, vocab 16, positions 12, n_inner default 32. */
static int make_gpt2(const char *dir, wt *ws)
{
    int n = 0;
    fill(&ws[n++], "wte.weight", 2, 16, 8);
    fill(&ws[n++], "wpe.weight", 2, 12, 8);
    fill(&ws[n++], "h.0.ln_1.weight", 1, 8, 0);
    fill(&ws[n++], "h.0.ln_1.bias", 1, 8, 0);
    fill(&ws[n++], "h.0.attn.c_attn.weight", 2, 8, 24); /* Conv1D: [in, out] */
    fill(&ws[n++], "h.0.attn.c_attn.bias", 1, 24, 0);
    fill(&ws[n++], "h.0.attn.c_proj.weight", 2, 8, 8);
    fill(&ws[n++], "h.0.attn.c_proj.bias", 1, 8, 0);
    fill(&ws[n++], "h.0.ln_2.weight", 1, 8, 0);
    fill(&ws[n++], "h.0.ln_2.bias", 1, 8, 0);
    fill(&ws[n++], "h.0.mlp.c_fc.weight", 2, 8, 32);
    fill(&ws[n++], "h.0.mlp.c_fc.bias", 1, 32, 0);
    fill(&ws[n++], "h.0.mlp.c_proj.weight", 2, 32, 8);
    fill(&ws[n++], "h.0.mlp.c_proj.bias", 1, 8, 0);
    fill(&ws[n++], "ln_f.weight", 1, 8, 0);
    fill(&ws[n++], "ln_f.bias", 1, 8, 0);
    write_weights(dir, ws, n);
    write_text(dir, "config.json",
               "{\"model_type\": \"gpt2\", \"vocab_size\": 16, \"n_embd\": 8, \"n_layer\": 1, \"n_head\": 2, \"n_positions\": 12, "
               "\"activation_function\": \"gelu_new\", \"layer_norm_epsilon\": 1e-5}");
    return n;
}

static void free_ws(wt *ws, int n)
{
    for (int i = 0; i < n; i++) free(ws[i].data);
}

static void gpt2_import_transposes_and_exports_back(void **state)
{
    (void)state;
    char dir[128], out[128];
    snprintf(dir, sizeof dir, "%s/gpt2", tmpdir);
    mkdir(dir, 0755);
    wt ws[16];
    int n = make_gpt2(dir, ws);
    smelt_model *m;
    smelt_err *err = hf_import(dir, true, &m);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_string_equal(m->arch, "gpt2");
    assert_int_equal(m->llm.ffn, 32);
    assert_true(m->llm.tied_embeddings);
    assert_string_equal(m->llm.act, "gelu_tanh");
    /* c_attn [8, 24] is now the Linear layout [24, 8]: element (o, i) == stored (i, o) */
    smelt_tensor *t = smelt_model_find(m, "h.0.attn.c_attn.weight");
    assert_int_equal(t->shape[0], 24);
    assert_int_equal(t->shape[1], 8);
    const float *w = t->data;
    for (int o = 0; o < 24; o++)
        for (int i = 0; i < 8; i++) assert_true(w[o * 8 + i] == ws[4].data[i * 24 + o]);
    /* nodes: the head reuses wte; one Split for the fused qkv; GeluTanh in the MLP */
    int splits = 0, gelus = 0;
    const smelt_node *head = NULL;
    for (int i = 0; i < m->n_nodes; i++) {
        splits += strcmp(m->nodes[i].op, "Split") == 0;
        gelus += strcmp(m->nodes[i].op, "GeluTanh") == 0;
        if (strcmp(m->nodes[i].name, "lm_head") == 0) head = &m->nodes[i];
    }
    assert_int_equal(splits, 1);
    assert_int_equal(gelus, 1);
    assert_non_null(head);
    assert_string_equal(head->inputs[1], "wte.weight");
    assert_null(smelt_model_validate(m));
    /* sources: config.json and model.safetensors with SHA-256 */
    json_t *src = json_object_get(m->meta, "sources");
    assert_int_equal(json_array_size(src), 2);
    assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(src, 1), "sha256"))), 64);

    snprintf(out, sizeof out, "%s/gpt2-out", tmpdir);
    err = hf_export(m, out);
    if (err) fail_msg("%s", smelt_err_msg(err));
    smelt_model_free(m);
    /* the exported weights are the original bytes, Conv1D layout restored */
    char *p = smelt_path_join(out, "model.safetensors");
    smelt_model *back = smelt_model_new(SMELT_KIND_GRAPH, "t");
    err = safetensors_read(p, back, NULL);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_int_equal(back->n_tensors, n);
    for (int i = 0; i < n; i++) {
        smelt_tensor *bt = smelt_model_find(back, ws[i].name);
        assert_non_null(bt);
        assert_int_equal(bt->shape[0], ws[i].shape[0]);
        assert_memory_equal(bt->data, ws[i].data, bt->nbytes);
    }
    smelt_model_free(back);
    free(p);
    /* exporting over a non-empty folder is refused */
    assert_null(hf_import(dir, false, &m));
    err = hf_export(m, out);
    assert_non_null(err);
    assert_non_null(strstr(smelt_err_msg(err), "already exists and is not an empty folder"));
    smelt_err_free(err);
    smelt_model_free(m);
    free_ws(ws, n);
}

static void qwen2_biases(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/qwen2", tmpdir);
    mkdir(dir, 0755);
    wt ws[16];
    int n = 0;
    fill(&ws[n++], "model.embed_tokens.weight", 2, 16, 8);
    fill(&ws[n++], "model.layers.0.input_layernorm.weight", 1, 8, 0);
    fill(&ws[n++], "model.layers.0.self_attn.q_proj.weight", 2, 8, 8);
    fill(&ws[n++], "model.layers.0.self_attn.q_proj.bias", 1, 8, 0);
    fill(&ws[n++], "model.layers.0.self_attn.k_proj.weight", 2, 4, 8);
    fill(&ws[n++], "model.layers.0.self_attn.k_proj.bias", 1, 4, 0);
    fill(&ws[n++], "model.layers.0.self_attn.v_proj.weight", 2, 4, 8);
    fill(&ws[n++], "model.layers.0.self_attn.v_proj.bias", 1, 4, 0);
    fill(&ws[n++], "model.layers.0.self_attn.o_proj.weight", 2, 8, 8);
    fill(&ws[n++], "model.layers.0.post_attention_layernorm.weight", 1, 8, 0);
    fill(&ws[n++], "model.layers.0.mlp.gate_proj.weight", 2, 12, 8);
    fill(&ws[n++], "model.layers.0.mlp.up_proj.weight", 2, 12, 8);
    fill(&ws[n++], "model.layers.0.mlp.down_proj.weight", 2, 8, 12);
    fill(&ws[n++], "model.norm.weight", 1, 8, 0);
    write_weights(dir, ws, n);
    write_text(dir, "config.json",
               "{\"model_type\": \"qwen2\", \"vocab_size\": 16, \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"tie_word_embeddings\": true, \"use_sliding_window\": false, "
               "\"sliding_window\": 4, \"rope_theta\": 1000000.0, \"rms_norm_eps\": 1e-6, \"hidden_act\": \"silu\"}");
    smelt_model *m;
    smelt_err *err = hf_import(dir, false, &m);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_true(m->llm.attn_qkv_bias);
    assert_false(m->llm.attn_out_bias);
    assert_int_equal(m->llm.head_dim, 4);
    assert_true(m->llm.rope_theta == 1000000.0);
    int with_bias = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (strcmp(m->nodes[i].op, "Linear") == 0 && m->nodes[i].n_inputs == 3) with_bias++;
    assert_int_equal(with_bias, 3);
    smelt_model_free(m);
    free_ws(ws, n);
}

static void fixture_llamas(void **state)
{
    (void)state;
    smelt_model *m;
    smelt_err *err = hf_import("models/llama-teacher", false, &m);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_int_equal(smelt_model_param_count(m), 6819072);
    assert_int_equal(m->llm.n_layers, 6);
    assert_int_equal(m->llm.n_kv_heads, 2);
    assert_int_equal(m->llm.head_dim, 64);
    assert_false(m->llm.tied_embeddings);
    assert_non_null(m->tokenizer_json);
    assert_null(smelt_model_validate(m));
    /* 6 layers x 7 Linear + head */
    int linear = 0;
    for (int i = 0; i < m->n_nodes; i++) linear += strcmp(m->nodes[i].op, "Linear") == 0;
    assert_int_equal(linear, 43);
    assert_string_equal(m->nodes[m->n_nodes - 1].inputs[1], "lm_head.weight");
    smelt_model_free(m);

    err = hf_import("models/tiny-llama", false, &m);
    if (err) fail_msg("%s", smelt_err_msg(err));
    assert_int_equal(smelt_model_param_count(m), 893568);
    assert_true(m->llm.tied_embeddings);
    assert_string_equal(m->nodes[m->n_nodes - 1].inputs[1], "model.embed_tokens.weight");
    smelt_model_free(m);
}

static void config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *json, *message;
    } cases[] = {
        {"{\"model_type\": \"bert\"}", "model_type 'bert' is not supported (supported: llama, mistral, qwen2, gpt2)"},
        {"{\"hidden_size\": 8}", "missing string 'model_type'"},
        {"{\"model_type\": \"llama\", \"vocab_size\": 16}", "missing integer 'hidden_size'"},
        {"{\"model_type\": \"llama\", \"vocab_size\": 16, \"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, "
         "\"num_attention_heads\": 2, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}",
         "'rope_scaling' is set but not supported"},
        {"{\"model_type\": \"mistral\", \"vocab_size\": 16, \"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, "
         "\"num_attention_heads\": 2, \"max_position_embeddings\": 64, \"sliding_window\": 16}",
         "'sliding_window' shorter than max_position_embeddings is not supported"},
        {"{\"model_type\": \"llama\", \"vocab_size\": 16, \"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, "
         "\"num_attention_heads\": 2, \"hidden_act\": \"gelu\"}",
         "hidden_act 'gelu' is not supported for llama (supported: silu)"},
        {"{\"model_type\": \"llama\", \"vocab_size\": 16, \"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, "
         "\"num_attention_heads\": 4, \"num_key_value_heads\": 3}",
         "num_attention_heads 4 is not a multiple of num_key_value_heads 3"},
        {"{\"model_type\": \"llama\", \"vocab_size\": -3}", "'vocab_size' must be a positive integer"},
        {"{\"model_type\": \"gpt2\", \"vocab_size\": 16, \"n_embd\": 8, \"n_layer\": 1, \"n_head\": 2, \"activation_function\": \"relu\"}",
         "activation_function 'relu' is not supported for gpt2"},
        {"{\"model_type\": \"gpt2\", \"vocab_size\": 16, \"n_embd\": 8, \"n_layer\": 1, \"n_head\": 2, \"reorder_and_upcast_attn\": true}",
         "'reorder_and_upcast_attn' is true, which is not supported"},
        {"{\"model_type\": \"llama\",", "config.json: not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *arch = NULL;
        smelt_llm_config cfg;
        smelt_err *err = hf_config_parse("config.json", cases[i].json, strlen(cases[i].json), &arch, &cfg);
        if (!err) fail_msg("case %zu: parsed", i);
        if (!strstr(smelt_err_msg(err), cases[i].message) || strncmp(smelt_err_msg(err), "config.json: ", 13) != 0)
            fail_msg("case %zu: '%s' lacks '%s'", i, smelt_err_msg(err), cases[i].message);
        assert_null(arch);
        smelt_err_free(err);
    }
}

/* Missing, misshapen and unexpected weights in a GPT-2 checkpoint. */
static void weight_errors(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/gpt2-bad", tmpdir);
    mkdir(dir, 0755);
    wt ws[17];
    int n = make_gpt2(dir, ws);
    static const struct {
        int drop;        /* index of a weight to leave out, or -1 */
        int reshape;     /* index of a weight to give a wrong shape, or -1 */
        bool extra;      /* add an unknown weight */
        const char *message;
    } cases[] = {
        {14, -1, false, "weight 'ln_f.weight' is missing"},
        {-1, 5, false, "weight 'h.0.attn.c_attn.bias' has shape [25], expected [24]"},
        {-1, -1, true, "tensor 'h.0.attn.rotary.freq' is not a weight of a gpt2 model with this config"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        wt cur[17];
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (i == cases[c].drop) continue;
            cur[k] = ws[i];
            if (i == cases[c].reshape) cur[k].shape[0] = 25, cur[k].data = calloc(25, sizeof(float));
            k++;
        }
        if (cases[c].extra) fill(&cur[k++], "h.0.attn.rotary.freq", 1, 4, 0);
        write_weights(dir, cur, k);
        smelt_model *m = NULL;
        smelt_err *err = hf_import(dir, false, &m);
        if (!err) fail_msg("case %zu: imported", c);
        if (!strstr(smelt_err_msg(err), cases[c].message)) fail_msg("case %zu: '%s' lacks '%s'", c, smelt_err_msg(err), cases[c].message);
        assert_null(m);
        smelt_err_free(err);
        if (cases[c].reshape >= 0) free(cur[cases[c].reshape].data);
        if (cases[c].extra) free(cur[k - 1].data);
    }
    free_ws(ws, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpt2_import_transposes_and_exports_back),
        cmocka_unit_test(qwen2_biases),
        cmocka_unit_test(fixture_llamas),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(weight_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
