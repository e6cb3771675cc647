/* Parsing Hugging Face config.json into smelt_llm_config. */
#define _POSIX_C_SOURCE 200809L
#include "formats/hf_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool hf_is_llama_family(const char *arch)
{
    return strcmp(arch, "llama") == 0 || strcmp(arch, "mistral") == 0 || strcmp(arch, "qwen2") == 0;
}

/* Reads a positive integer field; when absent uses dflt (dflt < 0 means required). */
static smelt_err *get_int(const char *path, json_t *root, const char *key, int dflt, int *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (dflt < 0) return SMELT_ERR(SMELT_E_CORRUPT, "%s: missing integer '%s'", path, key);
        *out = dflt;
        return NULL;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > (1 << 30))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s' must be a positive integer", path, key);
    *out = (int)json_integer_value(v);
    return NULL;
}

static smelt_err *get_num(const char *path, json_t *root, const char *key, double dflt, double *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return NULL;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !isfinite(json_number_value(v)))
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s' must be a positive number", path, key);
    *out = json_number_value(v);
    return NULL;
}

static smelt_err *get_bool(const char *path, json_t *root, const char *key, bool dflt, bool *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return NULL;
    }
    if (!json_is_boolean(v)) return SMELT_ERR(SMELT_E_CORRUPT, "%s: '%s' must be true or false", path, key);
    *out = json_is_true(v);
    return NULL;
}

/* bos/eos ids may be an integer, a list (first is used) or null (-1). */
static int token_id(json_t *v)
{
    if (json_is_array(v) && json_array_size(v) > 0) v = json_array_get(v, 0);
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

static smelt_err *parse_llama(const char *path, json_t *root, const char *arch, smelt_llm_config *c)
{
    SMELT_TRY(get_int(path, root, "vocab_size", -1, &c->vocab_size));
    SMELT_TRY(get_int(path, root, "hidden_size", -1, &c->hidden));
    SMELT_TRY(get_int(path, root, "intermediate_size", -1, &c->ffn));
    SMELT_TRY(get_int(path, root, "num_hidden_layers", -1, &c->n_layers));
    SMELT_TRY(get_int(path, root, "num_attention_heads", -1, &c->n_heads));
    SMELT_TRY(get_int(path, root, "num_key_value_heads", c->n_heads, &c->n_kv_heads));
    if (!json_object_get(root, "head_dim") && c->hidden % c->n_heads != 0)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->hidden, c->n_heads);
    SMELT_TRY(get_int(path, root, "head_dim", c->hidden / c->n_heads, &c->head_dim));
    SMELT_TRY(get_int(path, root, "max_position_embeddings", 2048, &c->max_pos));
    SMELT_TRY(get_num(path, root, "rope_theta", 10000.0, &c->rope_theta));
    SMELT_TRY(get_num(path, root, "rms_norm_eps", 1e-6, &c->norm_eps));
    SMELT_TRY(get_bool(path, root, "tie_word_embeddings", false, &c->tied_embeddings));
    bool attn_bias = false;
    SMELT_TRY(get_bool(path, root, "attention_bias", false, &attn_bias));
    SMELT_TRY(get_bool(path, root, "mlp_bias", false, &c->mlp_bias));
    c->attn_qkv_bias = attn_bias || strcmp(arch, "qwen2") == 0; /* Qwen2 always has q/k/v biases */
    c->attn_out_bias = attn_bias;
    if (c->n_heads % c->n_kv_heads != 0)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2 != 0) return SMELT_ERR(SMELT_E_CORRUPT, "%s: head_dim %d must be even for RoPE", path, c->head_dim);

    json_t *act = json_object_get(root, "hidden_act");
    if (act && !(json_is_string(act) && strcmp(json_string_value(act), "silu") == 0))
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: hidden_act '%s' is not supported for %s (supported: silu)", path,
                         json_is_string(act) ? json_string_value(act) : "?", arch);
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs))
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'rope_scaling' is set but not supported (supported: none, plain RoPE with rope_theta)", path);
    json_t *sw = json_object_get(root, "sliding_window");
    bool use_sw = true;
    if (strcmp(arch, "qwen2") == 0) SMELT_TRY(get_bool(path, root, "use_sliding_window", false, &use_sw));
    if (use_sw && sw && !json_is_null(sw) && !(json_is_integer(sw) && json_integer_value(sw) >= c->max_pos))
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'sliding_window' shorter than max_position_embeddings is not supported (supported: full causal attention)", path);
    snprintf(c->act, sizeof c->act, "silu");
    snprintf(c->norm, sizeof c->norm, "rmsnorm");
    snprintf(c->pos, sizeof c->pos, "rope");
    return NULL;
}

static smelt_err *parse_gpt2(const char *path, json_t *root, smelt_llm_config *c)
{
    SMELT_TRY(get_int(path, root, "vocab_size", -1, &c->vocab_size));
    SMELT_TRY(get_int(path, root, "n_embd", -1, &c->hidden));
    SMELT_TRY(get_int(path, root, "n_layer", -1, &c->n_layers));
    SMELT_TRY(get_int(path, root, "n_head", -1, &c->n_heads));
    SMELT_TRY(get_int(path, root, "n_positions", 1024, &c->max_pos));
    SMELT_TRY(get_int(path, root, "n_inner", 4 * c->hidden, &c->ffn));
    SMELT_TRY(get_num(path, root, "layer_norm_epsilon", 1e-5, &c->norm_eps));
    if (c->hidden % c->n_heads != 0)
        return SMELT_ERR(SMELT_E_CORRUPT, "%s: n_embd %d is not a multiple of n_head %d", path, c->hidden, c->n_heads);
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->hidden / c->n_heads;
    c->tied_embeddings = true;
    SMELT_TRY(get_bool(path, root, "tie_word_embeddings", true, &c->tied_embeddings));
    if (!c->tied_embeddings) return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: gpt2 with an untied head is not supported", path);
    c->attn_qkv_bias = c->attn_out_bias = c->mlp_bias = true;
    json_t *act = json_object_get(root, "activation_function");
    const char *a = json_is_string(act) ? json_string_value(act) : "gelu_new";
    if (strcmp(a, "gelu_new") != 0 && strcmp(a, "gelu_pytorch_tanh") != 0)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: activation_function '%s' is not supported for gpt2 (supported: gelu_new, gelu_pytorch_tanh)", path, a);
    static const char *const unsupported[] = {"scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (json_is_true(json_object_get(root, unsupported[i])))
            return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: '%s' is true, which is not supported", path, unsupported[i]);
    json_t *sa = json_object_get(root, "scale_attn_weights");
    if (sa && json_is_false(sa)) return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: 'scale_attn_weights' false is not supported", path);
    c->rope_theta = 0;
    snprintf(c->act, sizeof c->act, "gelu_tanh");
    snprintf(c->norm, sizeof c->norm, "layernorm");
    snprintf(c->pos, sizeof c->pos, "learned");
    return NULL;
}

smelt_err *hf_config_parse(const char *path, const char *text, size_t len, char **arch, smelt_llm_config *cfg)
{
    *arch = NULL;
    memset(cfg, 0, sizeof *cfg);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return SMELT_ERR(SMELT_E_CORRUPT, "%s: not valid JSON: %s (line %d, column %d)", path, jerr.text, jerr.line, jerr.column);
    smelt_err *err = NULL;
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_object(root) || !json_is_string(mt)) {
        err = SMELT_ERR(SMELT_E_CORRUPT, "%s: missing string 'model_type' (supported: %s)", path, HF_SUPPORTED_TYPES);
        goto done;
    }
    const char *type = json_string_value(mt);
    if (hf_is_llama_family(type)) err = parse_llama(path, root, type, cfg);
    else if (strcmp(type, "gpt2") == 0) err = parse_gpt2(path, root, cfg);
    else err = SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: model_type '%s' is not supported (supported: %s)", path, type, HF_SUPPORTED_TYPES);
    if (!err) {
        cfg->bos_id = token_id(json_object_get(root, "bos_token_id"));
        cfg->eos_id = token_id(json_object_get(root, "eos_token_id"));
        if (!(*arch = strdup(type))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
done:
    json_decref(root);
    return err;
}

json_t *hf_config_to_json(const char *arch, const smelt_llm_config *c)
{
    json_t *o;
    if (strcmp(arch, "gpt2") == 0) {
        o = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:s, s:b}", "architectures", "GPT2LMHeadModel", "model_type", "gpt2",
                      "vocab_size", c->vocab_size, "n_embd", c->hidden, "n_layer", c->n_layers, "n_head", c->n_heads, "n_positions", c->max_pos,
                      "n_inner", c->ffn, "layer_norm_epsilon", c->norm_eps, "activation_function", "gelu_new", "tie_word_embeddings", 1);
    } else {
        const char *cls = strcmp(arch, "qwen2") == 0 ? "Qwen2ForCausalLM" : strcmp(arch, "mistral") == 0 ? "MistralForCausalLM" : "LlamaForCausalLM";
        o = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:b, s:b, s:s}", "architectures", cls, "model_type", arch,
                      "vocab_size", c->vocab_size, "hidden_size", c->hidden, "intermediate_size", c->ffn, "num_hidden_layers", c->n_layers,
                      "num_attention_heads", c->n_heads, "num_key_value_heads", c->n_kv_heads, "head_dim", c->head_dim, "max_position_embeddings",
                      c->max_pos, "rope_theta", c->rope_theta, "rms_norm_eps", c->norm_eps, "tie_word_embeddings", c->tied_embeddings,
                      "attention_bias", c->attn_out_bias, "mlp_bias", c->mlp_bias, "hidden_act", "silu");
    }
    if (o && c->bos_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(c->bos_id));
    if (o && c->eos_id >= 0) json_object_set_new(o, "eos_token_id", json_integer(c->eos_id));
    return o;
}
