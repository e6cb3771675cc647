/* Random-weight Llama and GPT-2 decoders with Hugging Face names (see hf_synth.h). */
#define _POSIX_C_SOURCE 200809L
#include "core/rng.h"
#include "formats/hf_synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/hf_config.h"
#include "formats/hf_model.h"
#include "formats/tokenizer.h"

/* Largest value accepted for a width, vocabulary or context (and 4096 layers): far beyond any
 * model, small enough that no product of two of them overflows int64. */
#define SYNTH_MAX_DIM (1 << 24)
#define SYNTH_MAX_LAYERS 4096
/* Refuse models over this many parameters (4 TB of f32) before any arithmetic can overflow. */
#define SYNTH_MAX_PARAMS 1e12

/* FNV-1a of the tensor name, so every tensor has its own stream whatever order they are made in. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static bool is_gpt2(const hf_synth_opts *o) { return strcmp(o->arch, "gpt2") == 0; }

smelt_err *hf_synth_check(hf_synth_opts *o)
{
    if (!o->arch || (strcmp(o->arch, "llama") != 0 && !is_gpt2(o)))
        return SMELT_ERR(SMELT_E_INVALID, "--arch '%s' is not one synth makes (supported: llama, gpt2)", o->arch ? o->arch : "");
    struct {
        const char *flag;
        int v, max;
    } dims[] = {{"--hidden", o->hidden, SYNTH_MAX_DIM},   {"--layers", o->n_layers, SYNTH_MAX_LAYERS}, {"--heads", o->n_heads, SYNTH_MAX_DIM},
                {"--vocab", o->vocab_size, SYNTH_MAX_DIM}, {"--context", o->max_pos, SYNTH_MAX_DIM}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < 1 || dims[i].v > dims[i].max) return SMELT_ERR(SMELT_E_INVALID, "%s %d must be between 1 and %d", dims[i].flag, dims[i].v, dims[i].max);
    if (o->n_kv_heads == 0) o->n_kv_heads = o->n_heads;
    if (o->n_kv_heads < 1 || o->n_heads % o->n_kv_heads != 0)
        return SMELT_ERR(SMELT_E_INVALID, "--kv-heads %d must divide --heads %d", o->n_kv_heads, o->n_heads);
    if (o->head_dim < 0 || o->head_dim > SYNTH_MAX_DIM) return SMELT_ERR(SMELT_E_INVALID, "--head-dim %d must be between 1 and %d", o->head_dim, SYNTH_MAX_DIM);
    if (o->ffn < 0 || o->ffn > SYNTH_MAX_DIM) return SMELT_ERR(SMELT_E_INVALID, "--ffn %d must be between 1 and %d", o->ffn, SYNTH_MAX_DIM);
    if (is_gpt2(o)) {
        if (o->n_kv_heads != o->n_heads) return SMELT_ERR(SMELT_E_INVALID, "gpt2 has no grouped-query attention: --kv-heads must equal --heads");
        if (o->head_dim && (int64_t)o->head_dim * o->n_heads != o->hidden)
            return SMELT_ERR(SMELT_E_INVALID, "gpt2's head_dim is --hidden / --heads; --head-dim %d is not %d / %d", o->head_dim, o->hidden, o->n_heads);
        o->tied = true; /* GPT-2's head is always the token embedding */
    }
    if (!o->head_dim && o->hidden % o->n_heads != 0)
        return SMELT_ERR(SMELT_E_INVALID, "--heads %d does not divide --hidden %d (or give --head-dim)", o->n_heads, o->hidden);
    if (!o->head_dim) o->head_dim = o->hidden / o->n_heads;
    if (!is_gpt2(o) && o->head_dim % 2 != 0) return SMELT_ERR(SMELT_E_INVALID, "head_dim %d must be even for RoPE", o->head_dim);
    if (!o->ffn) o->ffn = is_gpt2(o) ? 4 * o->hidden : (int)((8 * (int64_t)o->hidden / 3 + 255) / 256 * 256);
    if (o->ffn > SYNTH_MAX_DIM) return SMELT_ERR(SMELT_E_INVALID, "the default --ffn for --hidden %d is too large; give --ffn", o->hidden);
    if (o->dtype != SMELT_DT_F32 && o->dtype != SMELT_DT_BF16 && o->dtype != SMELT_DT_F16)
        return SMELT_ERR(SMELT_E_INVALID, "--dtype %s is not one synth writes (supported: f32, bf16, f16)", smelt_dtype_name(o->dtype));
    double H = o->hidden, qd = (double)o->n_heads * o->head_dim, F = o->ffn, V = o->vocab_size;
    double per_layer = 2 * qd * H + 2 * (double)o->n_kv_heads * o->head_dim * H + 3 * F * H;
    if ((double)o->n_layers * per_layer + (2 * V + o->max_pos) * H > SYNTH_MAX_PARAMS)
        return SMELT_ERR(SMELT_E_INVALID, "a model of these sizes would have over %.0e parameters", SYNTH_MAX_PARAMS);
    return NULL;
}

int64_t hf_synth_param_count(const hf_synth_opts *o)
{
    int64_t H = o->hidden, F = o->ffn, V = o->vocab_size, L = o->n_layers;
    if (is_gpt2(o)) /* wte, wpe; per layer ln_1 (w, b), c_attn (w, b), c_proj, ln_2, c_fc, mlp.c_proj; ln_f */
        return V * H + (int64_t)o->max_pos * H + L * (2 * H + (3 * H * H + 3 * H) + (H * H + H) + 2 * H + (F * H + F) + (H * F + H)) + 2 * H;
    int64_t qd = (int64_t)o->n_heads * o->head_dim, kvd = (int64_t)o->n_kv_heads * o->head_dim;
    /* embedding; per layer 2 norms, q, k, v, o, gate, up, down; final norm; untied head */
    return V * H + L * (2 * H + 2 * qd * H + 2 * kvd * H + 3 * F * H) + H + (o->tied ? 0 : V * H);
}

typedef enum { FILL_UNIFORM, FILL_ONES, FILL_ZEROS } fill_kind;

/* Adds tensor `name` [d0] or [d0, d1] (d1 = 0 for a vector), filled per `kind`; uniform draws have
 * standard deviation `std`. */
static smelt_err *add(smelt_model *m, const hf_synth_opts *o, const char *name, int64_t d0, int64_t d1, fill_kind kind, double std)
{
    int64_t shape[2] = {d0, d1};
    int ndim = d1 ? 2 : 1;
    size_t n = (size_t)smelt_shape_numel(ndim, shape), nb = smelt_dtype_nbytes(o->dtype, n);
    void *data = smelt_model_alloc(m, nb);
    float *f = o->dtype == SMELT_DT_F32 ? data : malloc(n * sizeof *f);
    if (!data || !f) {
        if (f != data) free(f);
        return SMELT_ERR(SMELT_E_NOMEM, "tensor '%s': out of memory for %zu values", name, n);
    }
    if (kind == FILL_UNIFORM) {
        /* uniform in [-a, a) has standard deviation a / sqrt(3); 24 random bits a value */
        uint64_t s = o->seed ^ name_hash(name);
        float a = (float)(std * sqrt(3.0)), step = 2 * a / 16777216.0f;
        for (size_t i = 0; i < n; i++) f[i] = (float)(smelt_splitmix64(&s) >> 40) * step - a;
    } else {
        for (size_t i = 0; i < n; i++) f[i] = kind == FILL_ONES ? 1.0f : 0.0f;
    }
    if (f != data) {
        smelt_convert_float(data, o->dtype, f, SMELT_DT_F32, n);
        free(f);
    }
    return smelt_model_add_tensor(m, name, o->dtype, ndim, shape, data, NULL);
}

/* std of a Linear bias (uniform in [-0.02, 0.02]): small but not zero, so the bias path is exercised. */
#define BIAS_STD (0.02 / 1.7320508075688772)
#define NM(...) (snprintf(nm, sizeof nm, __VA_ARGS__), nm)

static smelt_err *add_llama(smelt_model *m, const hf_synth_opts *o)
{
    int64_t H = o->hidden, F = o->ffn, qd = (int64_t)o->n_heads * o->head_dim, kvd = (int64_t)o->n_kv_heads * o->head_dim;
    double sH = 1 / sqrt((double)H);
    char nm[128];
    SMELT_TRY(add(m, o, "model.embed_tokens.weight", o->vocab_size, H, FILL_UNIFORM, sH));
    for (int l = 0; l < o->n_layers; l++) {
        SMELT_TRY(add(m, o, NM("model.layers.%d.input_layernorm.weight", l), H, 0, FILL_ONES, 0));
        SMELT_TRY(add(m, o, NM("model.layers.%d.self_attn.q_proj.weight", l), qd, H, FILL_UNIFORM, sH));
        SMELT_TRY(add(m, o, NM("model.layers.%d.self_attn.k_proj.weight", l), kvd, H, FILL_UNIFORM, sH));
        SMELT_TRY(add(m, o, NM("model.layers.%d.self_attn.v_proj.weight", l), kvd, H, FILL_UNIFORM, sH));
        SMELT_TRY(add(m, o, NM("model.layers.%d.self_attn.o_proj.weight", l), H, qd, FILL_UNIFORM, 1 / sqrt((double)qd)));
        SMELT_TRY(add(m, o, NM("model.layers.%d.post_attention_layernorm.weight", l), H, 0, FILL_ONES, 0));
        SMELT_TRY(add(m, o, NM("model.layers.%d.mlp.gate_proj.weight", l), F, H, FILL_UNIFORM, sH));
        SMELT_TRY(add(m, o, NM("model.layers.%d.mlp.up_proj.weight", l), F, H, FILL_UNIFORM, sH));
        SMELT_TRY(add(m, o, NM("model.layers.%d.mlp.down_proj.weight", l), H, F, FILL_UNIFORM, 1 / sqrt((double)F)));
    }
    SMELT_TRY(add(m, o, "model.norm.weight", H, 0, FILL_ONES, 0));
    if (!o->tied) SMELT_TRY(add(m, o, "lm_head.weight", o->vocab_size, H, FILL_UNIFORM, sH));
    return NULL;
}

/* GPT-2 in the IR's Linear convention [out, in]; hf_export writes the Conv1D weights as [in, out]. */
static smelt_err *add_gpt2(smelt_model *m, const hf_synth_opts *o)
{
    int64_t H = o->hidden, F = o->ffn;
    double sH = 1 / sqrt((double)H);
    char nm[128];
    SMELT_TRY(add(m, o, "transformer.wte.weight", o->vocab_size, H, FILL_UNIFORM, sH));
    SMELT_TRY(add(m, o, "transformer.wpe.weight", o->max_pos, H, FILL_UNIFORM, sH));
    for (int l = 0; l < o->n_layers; l++) {
        SMELT_TRY(add(m, o, NM("transformer.h.%d.ln_1.weight", l), H, 0, FILL_ONES, 0));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.ln_1.bias", l), H, 0, FILL_ZEROS, 0));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.attn.c_attn.weight", l), 3 * H, H, FILL_UNIFORM, sH));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.attn.c_attn.bias", l), 3 * H, 0, FILL_UNIFORM, BIAS_STD));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.attn.c_proj.weight", l), H, H, FILL_UNIFORM, sH));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.attn.c_proj.bias", l), H, 0, FILL_UNIFORM, BIAS_STD));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.ln_2.weight", l), H, 0, FILL_ONES, 0));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.ln_2.bias", l), H, 0, FILL_ZEROS, 0));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.mlp.c_fc.weight", l), F, H, FILL_UNIFORM, sH));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.mlp.c_fc.bias", l), F, 0, FILL_UNIFORM, BIAS_STD));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.mlp.c_proj.weight", l), H, F, FILL_UNIFORM, 1 / sqrt((double)F)));
        SMELT_TRY(add(m, o, NM("transformer.h.%d.mlp.c_proj.bias", l), H, 0, FILL_UNIFORM, BIAS_STD));
    }
    SMELT_TRY(add(m, o, "transformer.ln_f.weight", H, 0, FILL_ONES, 0));
    SMELT_TRY(add(m, o, "transformer.ln_f.bias", H, 0, FILL_ZEROS, 0));
    return NULL;
}

/* The tokenizer's size must fit the vocabulary; its "<|endoftext|>" id (or -1) is returned in eot. */
static smelt_err *check_tokenizer(const hf_synth_opts *o, int *eot)
{
    *eot = -1;
    if (!o->tokenizer_json) return NULL;
    smelt_tokenizer *t;
    SMELT_TRY(smelt_tokenizer_load(o->tokenizer_json, strlen(o->tokenizer_json), "tokenizer.json", &t));
    int n = smelt_tokenizer_vocab_size(t);
    *eot = smelt_tokenizer_token_id(t, "<|endoftext|>");
    smelt_tokenizer_free(t);
    if (n > o->vocab_size)
        return SMELT_ERR(SMELT_E_INVALID, "tokenizer.json has %d tokens, more than --vocab %d (its ids would be outside the model)", n, o->vocab_size);
    return NULL;
}

static const char *torch_dtype(smelt_dtype dt) { return dt == SMELT_DT_BF16 ? "bfloat16" : dt == SMELT_DT_F16 ? "float16" : "float32"; }

smelt_err *hf_synth(const hf_synth_opts *opts, smelt_model **out)
{
    *out = NULL;
    hf_synth_opts o = *opts;
    SMELT_TRY(hf_synth_check(&o));
    int eot;
    SMELT_TRY(check_tokenizer(&o, &eot));
    smelt_model *m = smelt_model_new(SMELT_KIND_LLM, o.arch);
    if (!m) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    smelt_llm_config *c = &m->llm;
    *c = (smelt_llm_config){.vocab_size = o.vocab_size, .hidden = o.hidden, .n_layers = o.n_layers, .n_heads = o.n_heads, .n_kv_heads = o.n_kv_heads,
                            .head_dim = o.head_dim, .ffn = o.ffn, .max_pos = o.max_pos, .rope_theta = is_gpt2(&o) ? 0 : 10000.0, .norm_eps = 1e-5,
                            .tied_embeddings = o.tied, .bos_id = eot, .eos_id = eot};
    bool g = is_gpt2(&o);
    c->attn_qkv_bias = c->attn_out_bias = c->mlp_bias = g;
    snprintf(c->act, sizeof c->act, g ? "gelu_tanh" : "silu");
    snprintf(c->norm, sizeof c->norm, g ? "layernorm" : "rmsnorm");
    snprintf(c->pos, sizeof c->pos, g ? "learned" : "rope");
    smelt_err *err = g ? add_gpt2(m, &o) : add_llama(m, &o);
    if (!err && o.tokenizer_json && !(m->tokenizer_json = strdup(o.tokenizer_json))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (!err) {
        json_t *j = hf_config_to_json(o.arch, c);
        if (j) json_object_set_new(j, "torch_dtype", json_string(torch_dtype(o.dtype)));
        if (j) m->hf_config_json = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (!m->hf_config_json) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    if (!err) err = hf_build_graph(m, "synth");
    if (err) {
        smelt_model_free(m);
        return err;
    }
    *out = m;
    return NULL;
}
