/* SmoothQuant for w8a8: moves activation outliers into the weights before both are quantized to
 * int8. For each input channel j of a group of projections that share an input,
 *   s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)
 * (max|X_j| over the calibration tokens of the float model, max|W_j| over the group's weights'
 * column j); the input is divided by s and the weights' columns multiplied by it, which leaves the
 * float model's outputs unchanged. Every division is folded into an earlier weight, so the runtime
 * needs no scale vector:
 *   q/k/v     input_layernorm weight /= s (hidden channels)
 *   gate/up   post_attention_layernorm weight /= s
 *   o_proj    v_proj's output rows /= s: attention mixes V rows linearly, so output channel
 *             (head h, dim d) carries v row (kv head of h, d); with grouped-query attention the
 *             heads sharing a kv head share one s (maxima taken over the group)
 *   down_proj up_proj's output rows /= s (silu(gate) * up is linear in up)
 * Folded tensors become f32. Llama-family decoders only (GPT-2's GELU sits before its down
 * projection, and its fused c_attn would need its own fold). */
#ifndef SMELT_SMOOTHQUANT_H
#define SMELT_SMOOTHQUANT_H

#include <stdint.h>

#include "core/ir.h"

/* Smooths m (a float Llama-family model) in place from n_calib windows of `window` tokens run
 * through it; alpha in [0, 1]. On success *info (caller owns) describes what was done for the
 * artifact manifest, and *linear_bytes is what the projection weights took before they became
 * f32 (the size a quantization report should compare against). */
smelt_err *smoothquant_apply(smelt_model *m, const int32_t *calib, int n_calib, int window, double alpha, json_t **info, size_t *linear_bytes);

/* Marks m's quantization record (meta.quantization, as quantize_llm wrote it) for the engine:
 * w8a8 sets "scheme": "w8a8", "activations": "int8" and "smoothquant": sq (taken, may be NULL);
 * kv8 sets "kv_cache": "int8". */
smelt_err *w8a8_record(smelt_model *m, bool w8a8, json_t *sq, bool kv8);

#endif
