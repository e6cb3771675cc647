/* The trainable model's parameter table and its conversion to and from the IR (see tmodel.h). */
#define _POSIX_C_SOURCE 200809L
#include "distill/tmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/hf_config.h"
#include "formats/hf_model.h"
#include "runtime/cpu/qmatmul.h"

static const char *const slot_names[TM_PER_LAYER] = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
    "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
};

static const char *const gpt2_slot_names[TG_PER_LAYER] = {
    "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
    "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
};

static bool gpt2(const tm_model *m) { return m->c.arch == TM_GPT2; }
int tm_idx_embed(const tm_model *m) { (void)m; return 0; }
int tm_idx_pos(const tm_model *m) { return gpt2(m) ? 1 : -1; }
int tm_idx_layer(const tm_model *m, int layer, int slot) { return gpt2(m) ? 2 + layer * TG_PER_LAYER + slot : 1 + layer * TM_PER_LAYER + slot; }
int tm_idx_norm(const tm_model *m) { return gpt2(m) ? 2 + m->c.L * TG_PER_LAYER : 1 + m->c.L * TM_PER_LAYER; }
int tm_idx_head(const tm_model *m) { return m->c.tied ? 0 : 2 + m->c.L * TM_PER_LAYER; }

static void add(tm_model *m, const char *name, int64_t d0, int64_t d1, tm_kind kind)
{
    tm_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    t->off = m->n_params;
    t->kind = kind;
    t->decay = kind != TM_K_NORM && kind != TM_K_BIAS;
    /* 16-float alignment keeps every tensor's rows on cache-line boundaries */
    m->n_params += (t->numel + 15) & ~(size_t)15;
}

smelt_err *tm_new(const tm_config *c, tm_model **out)
{
    *out = NULL;
    if (c->V < 1 || c->C < 1 || c->L < 0 || c->nh < 1 || c->nkv < 1 || c->nh % c->nkv || c->hd < 1 || c->F < 1)
        return SMELT_ERR(SMELT_E_INVALID, "student config: sizes must be positive and heads a multiple of kv heads");
    bool g2 = c->arch == TM_GPT2;
    if (!g2 && (c->hd < 2 || c->hd % 2)) return SMELT_ERR(SMELT_E_INVALID, "student config: head_dim %d must be even for RoPE", c->hd);
    if (g2 && (c->nkv != c->nh || c->nh * c->hd != c->C || !c->tied || c->max_pos < 1))
        return SMELT_ERR(SMELT_E_INVALID, "gpt2 student config: heads x head_dim must be the width, no grouped-query heads, a tied head and positions >= 1");
    tm_model *m = calloc(1, sizeof *m);
    if (!m) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    m->c = *c;
    m->tensors = calloc((size_t)c->L * (g2 ? TG_PER_LAYER : TM_PER_LAYER) + 4, sizeof *m->tensors);
    if (!m->tensors) {
        free(m);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    int64_t C = c->C, QD = (int64_t)c->nh * c->hd, KVD = (int64_t)c->nkv * c->hd, F = c->F;
    char nm[96];
    if (g2) {
        add(m, "transformer.wte.weight", c->V, C, TM_K_EMBED);
        add(m, "transformer.wpe.weight", c->max_pos, C, TM_K_POS);
        for (int l = 0; l < c->L; l++) {
            int64_t shapes[TG_PER_LAYER][2] = {{C, 0}, {C, 0}, {3 * C, C}, {3 * C, 0}, {C, C}, {C, 0}, {C, 0}, {C, 0}, {F, C}, {F, 0}, {C, F}, {C, 0}};
            for (int s = 0; s < TG_PER_LAYER; s++) {
                snprintf(nm, sizeof nm, "transformer.h.%d.%s", l, gpt2_slot_names[s]);
                tm_kind k = shapes[s][1] ? TM_K_PROJ : s == TG_LN1W || s == TG_LN2W ? TM_K_NORM : TM_K_BIAS;
                add(m, nm, shapes[s][0], shapes[s][1], k);
            }
        }
        add(m, "transformer.ln_f.weight", C, 0, TM_K_NORM);
        add(m, "transformer.ln_f.bias", C, 0, TM_K_BIAS);
    } else {
        add(m, "model.embed_tokens.weight", c->V, C, TM_K_EMBED);
        for (int l = 0; l < c->L; l++) {
            int64_t shapes[TM_PER_LAYER][2] = {{C, 0}, {QD, C}, {KVD, C}, {KVD, C}, {C, QD}, {C, 0}, {F, C}, {F, C}, {C, F}};
            for (int s = 0; s < TM_PER_LAYER; s++) {
                snprintf(nm, sizeof nm, "model.layers.%d.%s", l, slot_names[s]);
                add(m, nm, shapes[s][0], shapes[s][1], shapes[s][1] ? TM_K_PROJ : TM_K_NORM);
            }
        }
        add(m, "model.norm.weight", C, 0, TM_K_NORM);
        if (!c->tied) add(m, "lm_head.weight", c->V, C, TM_K_HEAD);
    }
    m->w = aligned_alloc(64, m->n_params * sizeof(float));
    m->g = aligned_alloc(64, m->n_params * sizeof(float));
    if (!m->w || !m->g) {
        size_t n = m->n_params;
        tm_free(m);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory for %zu parameters", n);
    }
    memset(m->w, 0, m->n_params * sizeof(float));
    memset(m->g, 0, m->n_params * sizeof(float));
    *out = m;
    return NULL;
}

void tm_free(tm_model *m)
{
    if (!m) return;
    free(m->tensors);
    free(m->w);
    free(m->g);
    free(m);
}

smelt_err *tm_config_from_llm(const smelt_model *src, const char *what, tm_config *out)
{
    const smelt_llm_config *c = &src->llm;
    bool g2 = src->kind == SMELT_KIND_LLM && src->arch && strcmp(src->arch, "gpt2") == 0;
    if (src->kind != SMELT_KIND_LLM || !src->arch || (!hf_is_llama_family(src->arch) && !g2))
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: distillation trains Llama-family decoders and GPT-2; this is '%s'", what, src->arch ? src->arch : "?");
    if (g2) {
        if (strcmp(c->act, "gelu_tanh") != 0 || strcmp(c->norm, "layernorm") != 0 || strcmp(c->pos, "learned") != 0 || !c->attn_qkv_bias ||
            !c->attn_out_bias || !c->mlp_bias || !c->tied_embeddings || c->n_kv_heads != c->n_heads)
            return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: the trainer's gpt2 needs gelu_tanh, layernorm, learned positions, biases and a tied head (has %s, %s, %s)", what,
                             c->act, c->norm, c->pos);
        *out = (tm_config){.V = c->vocab_size, .C = c->hidden, .L = c->n_layers, .nh = c->n_heads, .nkv = c->n_heads, .hd = c->head_dim, .F = c->ffn,
                           .max_pos = c->max_pos, .eps = (float)c->norm_eps, .tied = true, .bos_id = c->bos_id, .eos_id = c->eos_id, .arch = TM_GPT2};
        return NULL;
    }
    if (c->attn_qkv_bias || c->attn_out_bias || c->mlp_bias)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: attention or MLP biases are not supported by the trainer", what);
    if (strcmp(c->act, "silu") != 0 || strcmp(c->norm, "rmsnorm") != 0 || strcmp(c->pos, "rope") != 0)
        return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: the trainer needs silu, rmsnorm and rope (has %s, %s, %s)", what, c->act, c->norm, c->pos);
    *out = (tm_config){.V = c->vocab_size, .C = c->hidden, .L = c->n_layers, .nh = c->n_heads, .nkv = c->n_kv_heads, .hd = c->head_dim, .F = c->ffn,
                       .max_pos = c->max_pos, .eps = (float)c->norm_eps, .theta = (float)c->rope_theta, .tied = c->tied_embeddings,
                       .bos_id = c->bos_id, .eos_id = c->eos_id};
    return NULL;
}

/* The source name of m's tensor i under the layer map; GPT-2 names lose their "transformer." when
 * the source's checkpoint has none (some GPT-2 exports store "h.0.ln_1.weight"). */
static void source_name(const tm_model *m, int i, const int *layer_map, const smelt_model *src, char *buf, size_t cap)
{
    int l;
    const char *name = m->tensors[i].name;
    const char *layers = gpt2(m) ? "transformer.h." : "model.layers.", *prefix = "";
    if (gpt2(m)) {
        name += strlen("transformer.");
        layers += strlen("transformer.");
        prefix = hf_gpt2_prefix(src);
    }
    size_t n = strlen(layers);
    if (layer_map && strncmp(name, layers, n) == 0 && sscanf(name + n, "%d.", &l) == 1) {
        const char *rest = strchr(name + n, '.') + 1;
        snprintf(buf, cap, "%s%s%d.%s", prefix, layers, layer_map[l], rest);
    } else {
        snprintf(buf, cap, "%s%s", prefix, name);
    }
}

smelt_err *tm_load_from(tm_model *m, const smelt_model *src, const int *layer_map, const char *what)
{
    char nm[128], got[64], exp[64];
    for (int i = 0; i < m->n_tensors; i++) {
        const tm_tensor *t = &m->tensors[i];
        source_name(m, i, layer_map, src, nm, sizeof nm);
        const smelt_tensor *s = smelt_model_find(src, nm);
        if (!s) return SMELT_ERR(SMELT_E_INVALID, "%s: tensor '%s' is missing", what, nm);
        if (s->quant.kind == SMELT_QUANT_NONE && !smelt_dtype_traits(s->dtype)->is_float)
            return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: tensor '%s' is %s; the trainer starts from float weights", what, nm, smelt_dtype_name(s->dtype));
        if (s->ndim != t->ndim || s->shape[0] != t->shape[0] || (t->ndim == 2 && s->shape[1] != t->shape[1]))
            return SMELT_ERR(SMELT_E_INVALID, "%s: tensor '%s' has shape %s, the student needs %s", what, nm, smelt_shape_str(s->ndim, s->shape, got, sizeof got),
                             smelt_shape_str(t->ndim, t->shape, exp, sizeof exp));
        if (s->quant.kind == SMELT_QUANT_NONE) {
            smelt_convert_float(tm_w(m, i), SMELT_DT_F32, s->data, s->dtype, t->numel);
            continue;
        }
        /* a quantized weight (e.g. from GPTQ) starts the student at its dequantized values */
        const smelt_quant *q = &s->quant;
        int rows = (int)t->shape[0], cols = t->ndim == 2 ? (int)t->shape[1] : 0, group = q->kind == SMELT_QUANT_GROUP ? q->group_size : cols;
        const smelt_tensor *sc = q->scale ? smelt_model_find(src, q->scale) : NULL, *z = q->zero ? smelt_model_find(src, q->zero) : NULL;
        bool ok = t->ndim == 2 && group > 0 && cols % group == 0 && (q->bits == 8 || q->bits == 4) && sc && sc->dtype == SMELT_DT_F32 &&
                  smelt_shape_numel(sc->ndim, sc->shape) == (int64_t)rows * (cols / group) && (q->symmetric || (z && z->dtype == SMELT_DT_U8));
        if (!ok) return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: quantized tensor '%s' is not a w8 or w4 linear weight the trainer can dequantize", what, nm);
        qmat qm = {q->bits, rows, cols, group, s->data, sc->data, z ? z->data : NULL, false};
        qmat_dequant_rows(&qm, 0, rows, tm_w(m, i));
    }
    return NULL;
}

static smelt_llm_config llm_config(const tm_config *c)
{
    bool g2 = c->arch == TM_GPT2;
    smelt_llm_config o = {.vocab_size = c->V, .hidden = c->C, .n_layers = c->L, .n_heads = c->nh, .n_kv_heads = c->nkv, .head_dim = c->hd, .ffn = c->F,
                          .max_pos = c->max_pos, .rope_theta = g2 ? 0 : c->theta, .norm_eps = c->eps, .tied_embeddings = c->tied, .bos_id = c->bos_id,
                          .eos_id = c->eos_id, .attn_qkv_bias = g2, .attn_out_bias = g2, .mlp_bias = g2};
    snprintf(o.act, sizeof o.act, g2 ? "gelu_tanh" : "silu");
    snprintf(o.norm, sizeof o.norm, g2 ? "layernorm" : "rmsnorm");
    snprintf(o.pos, sizeof o.pos, g2 ? "learned" : "rope");
    return o;
}

static smelt_err *to_smelt(const tm_model *tm, bool copy, const char *tokenizer_json, const json_t *meta, smelt_model **out)
{
    *out = NULL;
    const char *arch = tm->c.arch == TM_GPT2 ? "gpt2" : "llama";
    smelt_model *m = smelt_model_new(SMELT_KIND_LLM, arch);
    if (!m) return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    m->llm = llm_config(&tm->c);
    smelt_err *err = NULL;
    for (int i = 0; i < tm->n_tensors && !err; i++) {
        const tm_tensor *t = &tm->tensors[i];
        void *data = tm_w(tm, i);
        if (copy) {
            void *d = smelt_model_alloc(m, t->numel * sizeof(float));
            if (!d) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            else memcpy(d, data, t->numel * sizeof(float));
            data = d;
        }
        if (!err) err = smelt_model_add_tensor(m, t->name, SMELT_DT_F32, t->ndim, t->shape, data, NULL);
    }
    if (!err && tokenizer_json && !(m->tokenizer_json = strdup(tokenizer_json))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    if (!err && meta) {
        json_decref(m->meta);
        if (!(m->meta = json_deep_copy(meta))) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    if (!err) {
        json_t *j = hf_config_to_json(arch, &m->llm);
        if (j) json_object_set_new(j, "torch_dtype", json_string("float32"));
        if (j) m->hf_config_json = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (!m->hf_config_json) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    }
    if (!err) err = hf_build_graph(m, "student");
    if (err) {
        smelt_model_free(m);
        return err;
    }
    *out = m;
    return NULL;
}

smelt_err *tm_to_smelt(const tm_model *m, const char *tokenizer_json, const json_t *meta, smelt_model **out)
{
    return to_smelt(m, true, tokenizer_json, meta, out);
}

smelt_err *tm_view_smelt(const tm_model *m, smelt_model **out) { return to_smelt(m, false, NULL, NULL, out); }
