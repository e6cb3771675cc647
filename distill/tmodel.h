/* The trainable model: a Llama-family decoder's parameters as f32 master weights in one allocation,
 * with a gradient buffer of the same layout and a table of named tensors pointing into both (the
 * llm.c layout). Conversion to and from the IR (smelt_model) keeps the Hugging Face names, so a
 * trained model is written as an ordinary .smelt artifact the engine runs.
 *
 * Tensor order: model.embed_tokens.weight, then per layer input_layernorm, q_proj, k_proj, v_proj,
 * o_proj, post_attention_layernorm, gate_proj, up_proj, down_proj, then model.norm.weight and, when
 * the head is not tied to the embedding, lm_head.weight.
 */
#ifndef SMELT_DISTILL_TMODEL_H
#define SMELT_DISTILL_TMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ir.h"

typedef struct {
    int V, C, L, nh, nkv, hd, F, max_pos;
    float eps, theta;
    bool tied;
    int bos_id, eos_id;
} tm_config;

/* Per-layer tensor slots, in table order. */
enum { TM_LN1, TM_WQ, TM_WK, TM_WV, TM_WO, TM_LN2, TM_WG, TM_WU, TM_WD, TM_PER_LAYER };

typedef struct {
    char name[96];
    size_t off;   /* floats from the start of the parameter (and gradient) buffer */
    size_t numel;
    int ndim;
    int64_t shape[2];
    bool decay; /* matrices decay; norm weights do not */
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

/* Index of a tensor in the table: the embedding, a layer's slot, the final norm, the head (the
 * embedding when tied). */
int tm_idx_embed(const tm_model *m);
int tm_idx_layer(const tm_model *m, int layer, int slot);
int tm_idx_norm(const tm_model *m);
int tm_idx_head(const tm_model *m);
static inline float *tm_w(const tm_model *m, int idx) { return m->w + m->tensors[idx].off; }
static inline float *tm_g(const tm_model *m, int idx) { return m->g + m->tensors[idx].off; }

/* The training config of an IR model of the Llama family (errors name what is not supported:
 * GPT-2, biases, another activation). */
smelt_err *tm_config_from_llm(const smelt_model *src, const char *what, tm_config *out);
/* Copies src's tensors (any float dtype) into m by name; `layer_map[l]` names the source layer of m's
 * layer l (NULL: the same index). Errors name the missing tensor or the shape that differs. */
smelt_err *tm_load_from(tm_model *m, const smelt_model *src, const int *layer_map, const char *what);

/* A new IR model (kind LLM, arch "llama") holding a copy of m's weights as f32, with the decoder
 * graph, config.json text, tokenizer_json (copied, may be NULL) and meta (copied, may be NULL). */
smelt_err *tm_to_smelt(const tm_model *m, const char *tokenizer_json, const json_t *meta, smelt_model **out);
/* The same, but the IR tensors point straight at m->w (no copy): for evaluating with the engine while
 * training. The IR model must be freed before m. */
smelt_err *tm_view_smelt(const tm_model *m, smelt_model **out);

#endif
