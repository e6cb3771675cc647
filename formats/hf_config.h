/* Hugging Face config.json -> smelt_llm_config, for the decoder families smelt implements.
 *
 * Supported: model_type 'llama', 'mistral', 'qwen2' (RMSNorm, RoPE, SwiGLU, GQA; Qwen2's q/k/v
 * biases) and 'gpt2' (LayerNorm, learned positions, GELU tanh, fused qkv). Anything that would
 * change the computation and is not implemented (rope_scaling, sliding windows shorter than the
 * context, other activations) is an error naming the field, never a silently different model.
 */
#ifndef SMELT_HF_CONFIG_H
#define SMELT_HF_CONFIG_H

#include "core/ir.h"

#define HF_SUPPORTED_TYPES "llama, mistral, qwen2, gpt2"

/* Parses config.json text (len bytes; path names it in errors). *arch receives a malloc'd copy of
 * the model_type. */
smelt_err *hf_config_parse(const char *path, const char *text, size_t len, char **arch, smelt_llm_config *cfg);

/* true for the Llama-style families (llama, mistral, qwen2). */
bool hf_is_llama_family(const char *arch);

/* Builds a config.json object for cfg (used when exporting a model that kept no original). */
json_t *hf_config_to_json(const char *arch, const smelt_llm_config *cfg);

#endif
