/* Random-weight decoders in Hugging Face layout, for tests and benchmarks of any size.
 *
 * hf_synth builds a model of kind LLM exactly as hf_import would have produced it from a real
 * checkpoint (Hugging Face tensor names, the decoder graph of formats/hf_graph.c, a config.json
 * text), with weights drawn from a seeded generator so the same options always give the same bytes;
 * hf_export then writes it as a folder that `smelt inspect`, `run` and `perplexity` accept.
 *
 * Weights: every matrix is uniform with standard deviation 1/sqrt(fan_in) (embeddings and position
 * tables 1/sqrt(hidden), so a tied head gives logits of unit scale), Linear biases uniform in
 * [-0.02, 0.02], norm weights one and LayerNorm biases zero. Each tensor has its own stream
 * (splitmix64 seeded from the seed and the tensor's name), so a tensor's values do not depend on
 * the others'. bf16/f16 weights are the f32 draws rounded to nearest even.
 */
#ifndef SMELT_HF_SYNTH_H
#define SMELT_HF_SYNTH_H

#include "core/ir.h"

typedef struct {
    const char *arch; /* "llama" or "gpt2" */
    int hidden, n_layers, n_heads, n_kv_heads;
    int head_dim; /* 0: hidden / n_heads (llama may set another even value; gpt2 may not) */
    int ffn;      /* 0: llama 8*hidden/3 rounded up to a multiple of 256, gpt2 4*hidden */
    int vocab_size, max_pos;
    smelt_dtype dtype; /* f32, bf16 or f16 */
    uint64_t seed;
    bool tied; /* llama: the head is the embedding table (gpt2 is always tied) */
    /* tokenizer.json text to carry (may be NULL); must hold no id >= vocab_size. Its
     * "<|endoftext|>" token, when present, becomes bos/eos in the config. */
    const char *tokenizer_json;
} hf_synth_opts;

/* Fills in the defaults of o (ffn, head_dim, n_kv_heads when 0) and checks the combination; the
 * error names the option ("--heads 6 does not divide --hidden 64"). */
smelt_err *hf_synth_check(hf_synth_opts *o);

/* Parameters of the model o describes (after hf_synth_check), by the closed-form count. */
int64_t hf_synth_param_count(const hf_synth_opts *o);

/* Builds the model (caller frees with smelt_model_free). Runs hf_synth_check first. */
smelt_err *hf_synth(const hf_synth_opts *o, smelt_model **out);

#endif
