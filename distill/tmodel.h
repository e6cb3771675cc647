/* The trainable model: a decoder's parameters (Llama family or GPT-2) as f32 master weights in one
 * allocation, with a gradient buffer of the same layout and a table of named tensors pointing into
 * both (the llm.c layout). Conversion to and from the IR (smelt_model) keeps the Hugging Face names,
 * so a trained model is written as an ordinary .smelt artifact the engine runs.
 *
 * Llama tensor order: model.embed_tokens.weight, then per layer input_layernorm, q_proj, k_proj,
 * v_proj, o_proj, post_attention_layernorm, gate_proj, up_proj, down_proj, then model.norm.weight
 * and, when the head is not tied to the embedding, lm_head.weight.
 *
 * GPT-2 tensor order: transformer.wte.weight, transformer.wpe.weight, then per layer ln_1 (weight,
 * bias), attn.c_attn (weight [3C, C], bias), attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj (weight, bias
 * each), then transformer.ln_f (weight, bias); the head is always the token embedding. Linear weights
 * are [out, in] as in the IR (the importer has already transposed HF's Conv1D layout).
 */
#ifndef SMELT_DISTILL_TMODEL_H
#define SMELT_DISTILL_TMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ir.h"

typedef enum { TM_LLAMA, TM_GPT2 } tm_arch;

typedef struct {
    int V, C, L, nh, nkv, hd, F, max_pos;
    float eps, theta;
    bool tied;
    int bos_id, eos_id;
    tm_arch arch; /* TM_GPT2: LayerNorm, learned positions, GELU tanh, biases, MHA, tied head */
} tm_config;

/* Per-layer tensor slots, in table order: Llama, then GPT-2. */
enum { TM_LN1, TM_WQ, TM_WK, TM_WV, TM_WO, TM_LN2, TM_WG, TM_WU, TM_WD, TM_PER_LAYER };
enum { TG_LN1W, TG_LN1B, TG_QKVW, TG_QKVB, TG_PROJW, TG_PROJB, TG_LN2W, TG_LN2B, TG_FCW, TG_FCB, TG_FPW, TG_FPB, TG_PER_LAYER };

/* What a tensor is: decides weight decay (matrices only), initialisation and what QAT quantizes. */
typedef enum { TM_K_EMBED, TM_K_POS, TM_K_NORM, TM_K_BIAS, TM_K_PROJ, TM_K_HEAD } tm_kind;

typedef struct {
    char name[96];
    size_t off;   /* floats from the start of the parameter (and gradient) buffer */
    size_t numel;
    int ndim;
    int64_t shape[2];
    bool decay; /* matrices decay; norm weights and biases do not */
    tm_kind kind;
} tm_tensor;

typedef struct {
    tm_config c;
    tm_tensor *tensors;
    int n_tensors;
    size_t n_params;
    float *w; /* parameters (owned, 64-byte aligned) */
    float *g; /* gradients, same layout (owned) */
} tm_model;

/* Allocates a model of config c with zeroed parameters and gradients. */
smelt_err *tm_new(const tm_config *c, tm_model **out);
void tm_free(tm_model *m);

/* Index of a tensor in the table: the embedding, GPT-2's position embedding (-1 for Llama), a layer's
 * slot (TM_* for Llama, TG_* for GPT-2), the final norm's weight (GPT-2: its bias follows), the head
 * (the embedding when tied). */
int tm_idx_embed(const tm_model *m);
int tm_idx_pos(const tm_model *m);
int tm_idx_layer(const tm_model *m, int layer, int slot);
int tm_idx_norm(const tm_model *m);
int tm_idx_head(const tm_model *m);
static inline float *tm_w(const tm_model *m, int idx) { return m->w + m->tensors[idx].off; }
static inline float *tm_g(const tm_model *m, int idx) { return m->g + m->tensors[idx].off; }

/* The training config of an IR model of the Llama family or GPT-2 (errors name what is not
 * supported: biases on a Llama, another activation, norm or position scheme). */
smelt_err *tm_config_from_llm(const smelt_model *src, const char *what, tm_config *out);
/* Copies src's tensors (any float dtype) into m by name; `layer_map[l]` names the source layer of m's
 * layer l (NULL: the same index). Errors name the missing tensor or the shape that differs. */
smelt_err *tm_load_from(tm_model *m, const smelt_model *src, const int *layer_map, const char *what);

/* A new IR model (kind LLM, arch "llama" or "gpt2") holding a copy of m's weights as f32, with the decoder
 * graph, config.json text, tokenizer_json (copied, may be NULL) and meta (copied, may be NULL). */
smelt_err *tm_to_smelt(const tm_model *m, const char *tokenizer_json, const json_t *meta, smelt_model **out);
/* The same, but the IR tensors point straight at m->w (no copy): for evaluating with the engine while
 * training. The IR model must be freed before m. */
smelt_err *tm_view_smelt(const tm_model *m, smelt_model **out);

#endif
