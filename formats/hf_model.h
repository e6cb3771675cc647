/* Hugging Face decoder checkpoints <-> the IR.
 *
 * Import turns a folder (config.json, model.safetensors or a sharded index, tokenizer.json) into a
 * model of kind LLM whose graph spells out the decoder with smelt's high-level ops (domain
 * "smelt"): Embedding, PositionEmbedding, RMSNorm, LayerNorm, Linear, RoPE, Attention, SwiGLU,
 * GeluTanh, Split, Add. Weights keep their Hugging Face names and stored dtype; GPT-2's Conv1D
 * weights ([in, out]) are transposed to the Linear convention [out, in].
 * Export writes a folder back: config.json, model.safetensors (tensors in IR order, Conv1D weights
 * transposed back), tokenizer.json.
 */
#ifndef SMELT_HF_MODEL_H
#define SMELT_HF_MODEL_H

#include "core/ir.h"

/* Imports the checkpoint folder dir into a new model (caller frees). Each file read is appended
 * to m->meta["sources"] ({path, bytes[, sha256]}) with hashes when hash_sources is true. */
smelt_err *hf_import(const char *dir, bool hash_sources, smelt_model **out);

/* Builds the decoder graph for m (tensors and llm config already set) and checks every expected
 * weight exists with the right shape and no weight is left unused. Used by import and by tools
 * that make new decoders (distillation students). */
smelt_err *hf_build_graph(smelt_model *m, const char *source);

/* Writes m (kind LLM) to the folder dir, which must not exist yet or be empty. Quantized tensors
 * cannot be exported to Hugging Face format (error). */
smelt_err *hf_export(const smelt_model *m, const char *dir);

/* "transformer." when m's GPT-2 weights carry that prefix, else "". */
const char *hf_gpt2_prefix(const smelt_model *m);

/* True for GPT-2 weights stored as Conv1D ([in, out]) in Hugging Face checkpoints. */
bool hf_gpt2_is_conv1d(const char *name);

#endif
