/* Layer sensitivity and mixed precision.
 *
 * A weight's sensitivity is the KL divergence KL(float || model) of the next-token distributions,
 * averaged over calibration tokens, when that weight alone is rounded to the low-precision scheme
 * (RTN) and everything else stays float. Summed sensitivities approximate the loss of quantizing
 * several weights at once well enough to rank them (the effects are small and nearly additive).
 *
 * Mixed precision under a bit budget: every weight starts at the low scheme; weights move to int8
 * (per channel) in order of sensitivity removed per extra stored bit until the next move would
 * pass the average budget (bits per weight, scales included, over the quantized weights). A
 * greedy knapsack, exact enough when, as here, no single weight is a large share of the total. */
#ifndef SMELT_SENSITIVITY_H
#define SMELT_SENSITIVITY_H

#include <stdint.h>

#include "core/ir.h"
#include "quant/rtn.h"

/* kl[i] for each tensor index in `tensors` (n of them), measured on n_windows windows of `window`
 * tokens (ids back to back). progress (may be NULL) is called after each weight. */
smelt_err *quant_sensitivity(smelt_model *m, const int *tensors, int n, const quant_scheme *low, const int32_t *ids, int n_windows, int window,
                             void (*progress)(void *ctx, int done, int total), void *ctx, double *kl);

/* Bytes a [rows, cols] weight takes under scheme s (q plus f32 scales and u8 zero points). */
int64_t quant_weight_bytes(int64_t rows, int64_t cols, const quant_scheme *s);

/* Chooses high[i] (true: int8 per channel) for weights of the given shapes so that the average
 * bits per weight stay ≤ avg_bits, least summed sensitivity first. Fails when even all-low passes
 * the budget, naming the least budget possible. */
smelt_err *quant_mixed_choose(const int64_t *rows, const int64_t *cols, const double *kl, const double *kl_high, int n, const quant_scheme *low,
                              double avg_bits, bool *high, double *avg_out);

#endif
