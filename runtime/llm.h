/* The CPU engine for decoder language models (Llama family and GPT-2) imported into the IR.
 *
 * An engine binds the model's weights once (f32 weights are used in place, from the mapping;
 * bf16/f16 ones are widened to f32 copies the engine owns) and runs forward passes over a ragged
 * batch: any number of sequences, each adding any number of tokens after what its KV cache already
 * holds. One call therefore serves prefill (one sequence, many tokens), decode (many sequences, one
 * token each) and anything between, which is how the serving and eval stages schedule requests.
 * Sequences are created and retired independently between calls.
 *
 * The matrix products go to OpenBLAS sgemm over all the batch's tokens at once; attention, norms,
 * RoPE and activations are our own loops on the thread pool (core/threads.h). Quantized weights go
 * through runtime/cpu/qmatmul.h; an artifact whose meta.quantization has "activations": "int8"
 * (w8a8) runs its int8 linears through runtime/cpu/qgemm_i8.h instead, and "kv_cache": "int8"
 * keeps the KV cache in int8 with a scale per token and kv head (llm_kv8.c).
 *
 * Ownership: the engine borrows the model (which must outlive it); a sequence belongs to the engine
 * that made it and is freed before it.
 */
#ifndef SMELT_LLM_H
#define SMELT_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ir.h"

typedef struct llm_engine llm_engine;
typedef struct llm_seq llm_seq;

/* Binds m (kind LLM, as hf_import or artifact_read made it). Errors name the missing or misshapen
 * weight, or the op the engine does not run. */
smelt_err *llm_engine_new(const smelt_model *m, llm_engine **out);
/* An engine over an ONNX decoder graph (input 'input_ids' i64 [batch, seq], output 'logits'
 * [batch, seq, vocab]) run by the graph executor. It has no KV cache: every forward recomputes each
 * sequence in full, so it serves checks and small models, not serving. vocab_size comes from the
 * output's shape (or the given value when that dim is symbolic), max_pos is the context to allow. */
smelt_err *llm_engine_new_graph(const smelt_model *m, int vocab_size, int max_pos, llm_engine **out);
void llm_engine_free(llm_engine *e);
const smelt_llm_config *llm_engine_config(const llm_engine *e);
/* Bytes of weights one forward pass reads (for bandwidth figures). */
size_t llm_engine_weight_bytes(const llm_engine *e);

/* A new, empty sequence (its KV cache grows as tokens are added, up to the model's context). */
smelt_err *llm_seq_new(llm_engine *e, llm_seq **out);
void llm_seq_free(llm_seq *s);
/* Tokens the sequence's cache holds. */
int llm_seq_len(const llm_seq *s);
/* Keeps only the first len cached tokens (len ≤ length), e.g. to re-score a shared prefix. */
void llm_seq_truncate(llm_seq *s, int len);
/* Bytes of KV cache a token costs (all layers, K and V; under kv8 the int8 values and their scales). */
size_t llm_kv_bytes_per_token(const llm_engine *e);

/* One sequence's share of a forward pass. */
typedef struct {
    llm_seq *seq;
    const int32_t *tokens;
    int n_tokens;    /* ≥ 1 */
    bool all_logits; /* logits for every new token, else only for the last */
} llm_batch_item;

/* Runs the items' new tokens through the model, appending them to each sequence's cache, and
 * writes logits row by row in item order (n_tokens rows for all_logits items, else 1) into
 * `logits` (rows × vocab floats; NULL when only the caches are wanted). Fails without changing any cache when a token id is out of range,
 * a sequence appears twice, or a sequence would pass the model's context. */
smelt_err *llm_forward(llm_engine *e, const llm_batch_item *items, int n_items, float *logits);

/* Calibration (quantization): the inputs of a block's projections as the forward pass computes
 * them, x [T, dim] for the T tokens of the batch. LLM_IN_QKV feeds q/k/v (GPT-2's fused c_attn),
 * LLM_IN_O the attention output projection, LLM_IN_MLP the gate/up (GPT-2's c_fc) projections,
 * LLM_IN_DOWN the down projection (GPT-2's mlp c_proj). */
typedef enum { LLM_IN_QKV, LLM_IN_O, LLM_IN_MLP, LLM_IN_DOWN, LLM_IN_COUNT } llm_input_kind;
typedef void (*llm_capture_fn)(void *ctx, int layer, llm_input_kind kind, const float *x, int T, int dim);
/* Calls fn for every projection input from then on (NULL stops). With stop_after_layer >= 0 a
 * forward pass ends after that block: the caches are filled that far and no logits are written. */
void llm_engine_set_capture(llm_engine *e, llm_capture_fn fn, void *ctx, int stop_after_layer);
/* With a capture and stop_after_layer set: the pass ends in that block right after `kind`'s input
 * is captured, skipping the rest of the block (a calibration pass that wants only that input).
 * LLM_IN_COUNT (the default) finishes the block. */
void llm_engine_set_capture_stop(llm_engine *e, llm_input_kind kind);

/* Block-by-block calibration. Quantizing block l changes its weights and nothing before it, so a
 * quantizer keeps each calibration token's hidden state between blocks and runs one block at a
 * time instead of the whole prefix again: an engine over blocks first..last binds (and widens)
 * only their weights, plus the embeddings when first is 0; it has no head, and llm_forward
 * refuses it. */
smelt_err *llm_engine_new_blocks(const smelt_model *m, int first, int last, llm_engine **out);
/* Runs the items' new tokens through the engine's blocks: x_in [T, hidden] (rows in item order,
 * as llm_forward stacks them) is the input of block `first`, or NULL for the tokens' embeddings
 * (first must be 0); x_out [T, hidden] receives the output of block `last` (NULL: not wanted; it
 * may be x_in; when a capture's stop ends the pass early, x_out receives the residual stream where
 * it stopped: the block's input at LLM_IN_QKV or LLM_IN_O, the stream after the attention half,
 * x + o(attention), at LLM_IN_MLP or LLM_IN_DOWN). The sequences' caches of those blocks fill and
 * their lengths advance; the capture callback sees the projection inputs as in llm_forward. */
smelt_err *llm_forward_blocks(llm_engine *e, const llm_batch_item *items, int n_items, const float *x_in, float *x_out);
/* An engine over one block (first == last) can start inside it, at the input of a projection,
 * when what comes before is already known (a quantizer whose earlier weights in the block are
 * final): LLM_IN_O takes x_in = the block's input and proj_in = the attention output o reads;
 * LLM_IN_MLP takes x_in = the stream after the attention half (what a pass stopped at LLM_IN_MLP
 * wrote to x_out); LLM_IN_DOWN takes that stream and proj_in = the down projection's input. The
 * pass computes the same floats as the whole block from there (the capture sees the start's own
 * input too); the block's KV cache is not written. LLM_IN_QKV, the default, runs the whole block.
 * Fails on other engines. */
smelt_err *llm_engine_set_start(llm_engine *e, llm_input_kind kind);
/* llm_forward_blocks for an engine that starts at LLM_IN_O or LLM_IN_DOWN: proj_in [T, dim] is
 * that projection's input (dim = heads x head_dim or ffn), rows as x_in's; NULL otherwise. */
smelt_err *llm_forward_blocks_from(llm_engine *e, const llm_batch_item *items, int n_items, const float *x_in, const float *proj_in, float *x_out);

#endif
