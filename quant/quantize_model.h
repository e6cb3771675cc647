/* Quantizing a language model's linear layers in place: every Linear node of the decoder blocks
 * (the embeddings and the output head are kept as they are) gets its weight replaced by the
 * quantized tensor plus '<weight>.scale' (f32 [out, groups]) and, when asymmetric,
 * '<weight>.zero' (u8 [out, groups]) tensors; the tensor's quant fields say how to read them.
 * The recipe goes into m->meta["quantization"] so the artifact records it.
 *
 * rtn rounds each weight to nearest (quant/rtn.h). gptq (quant/gptq.h) goes block by block: the
 * calibration windows run through the model as quantized so far, the inputs of the block's
 * projections give each projection's Hessian, and the block's weights are quantized with it
 * before the next block sees their outputs. */
#ifndef SMELT_QUANTIZE_MODEL_H
#define SMELT_QUANTIZE_MODEL_H

#include "core/ir.h"
#include "quant/rtn.h"

typedef struct {
    quant_scheme scheme;
    const char *method;   /* "rtn", "gptq" or "awq" */
    bool clip;            /* rtn: search each group's range (quant/clip.h) */
    bool act_order;       /* gptq: columns in order of decreasing Hessian diagonal */
    bool refit;           /* calibrated methods: least-squares group scales for the rounded codes (quant/refit.h) */
    bool float_target;    /* gptq: aim each layer at the float model's outputs, not its weights (gptq_float_target) */
    const int32_t *calib; /* gptq: n_calib windows of calib_window tokens, back to back */
    int n_calib, calib_window;
    double damp; /* gptq: added to diag(H) as a fraction of its mean (0.01 is usual) */
    double avg_bits;    /* > 0: mixed precision, weights moved to int8 by sensitivity (quant/sensitivity.h) */
    int sens_windows;   /* calibration windows the sensitivity is measured on */
} quant_recipe;

/* One quantized weight: its reconstruction error ||W - Q(W)||_F / ||W||_F and sizes; with
 * mixed precision its sensitivity (KL when it alone is at the low scheme), else -1. */
typedef struct {
    char *tensor;
    int bits, group;
    double rel_err;
    size_t bytes_before, bytes_after;
    double sensitivity;
} quant_report;

typedef void (*quant_progress_fn)(void *ctx, int done, int total);

/* Quantizes m (kind LLM) per r. On success *rep (n_rep entries, caller frees with
 * quant_report_free) lists each weight. Fails, leaving m unusable, on an unknown scheme, a group
 * size that does not divide a layer's input features, or weights that are already quantized. */
smelt_err *quantize_llm(smelt_model *m, const quant_recipe *r, quant_progress_fn progress, void *ctx, quant_report **rep, int *n_rep);
void quant_report_free(quant_report *rep, int n);

#endif
