/* GPTQ (Frantar et al., 2022): quantize a weight matrix column by column, each column's rounding
 * error spread over the columns not yet quantized in proportion to the inverse Hessian of the
 * layer's reconstruction loss, H = 2 X^T X over calibration inputs X [n, cols].
 *
 * Rows are independent given H, so they are split over the thread pool; within a row the columns
 * go in blocks of 128 with the update to later blocks applied once a block (lazy batch update).
 * Group scales (and zero points) are computed, with the RTN rules of quant/rtn.h, from a group's
 * weights as they stand when its first column is reached.
 *
 * Act-order processes the columns by decreasing H diagonal, so the inputs that matter most are
 * rounded first, while the most error can still be spread. Its groups are static (every group's
 * range taken from the weights before the pass), so the storage stays contiguous groups in the
 * original column order and the kernels need no index.
 *
 * With clip, a group's range is the shrink of its min/max with the least weighted rounding error
 * (in place of min/max itself) when the group's first column is reached. */
#ifndef SMELT_GPTQ_H
#define SMELT_GPTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "quant/rtn.h"

/* W [rows][cols] f32 (overwritten with the dequantized result); H [cols][cols] (overwritten).
 * damp is the fraction of mean(diag(H)) added to the diagonal (0.01 is usual). Writes q, scale
 * and zero as rtn_quantize does. Fails when H is not positive definite even after dampening. */
smelt_err *gptq_quantize(float *W, int rows, int cols, double *H, double damp, bool act_order, bool clip, const quant_scheme *s, void *q,
                         float *scale, uint8_t *zero);

/* GPTQ against the float model's outputs (GPTAQ's asymmetric calibration, Li et al., 2025): the
 * layer's quantized-model inputs X_q differ from the float model's X_f, and the loss that matters
 * is ||X_f W^T - X_q Q^T||. With H = 2 X_q^T X_q / n and G = 2 X_q^T X_f / n ([cols][cols]) it is
 * ||X_q (V - Q)^T|| plus a constant, V = W G^T (H + damp)^-1 the float weights that best follow
 * the float model from the quantized inputs: W becomes V, and GPTQ then rounds V with H. H is not
 * changed. */
smelt_err *gptq_float_target(float *W, int rows, int cols, const double *H, const double *G, double damp);

#endif
