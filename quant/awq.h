/* AWQ (Lin et al., 2023): activation-aware scaling before group-wise rounding.
 *
 * The input channels that carry large activations matter most to a layer's output, and their
 * weights lose the most to rounding. Multiplying weight column j by s_j > 1 (and dividing the
 * input by s_j, folded into whatever computes the input) gives those weights more of the grid.
 * s_j = mean|x_j|^alpha, normalized so that max(s) * min(s) = 1, with alpha from a grid search
 * minimising the output error the rounding causes on calibration inputs. With H = 2 X^T X / n the
 * output error of weights W quantized to Wq is trace((W - Wq) H (W - Wq)^T), so the search needs
 * the same Hessian as GPTQ and no stored activations. alpha = 0 (s = 1) is plain RTN and is on the
 * grid, so the chosen scales never do worse than RTN on that measure. */
#ifndef SMELT_AWQ_H
#define SMELT_AWQ_H

#include "core/err.h"
#include "quant/rtn.h"

#define AWQ_GRID 20 /* alpha = 0, 0.05, ..., 0.95 */

/* W: n_w f32 matrices [rows[i]][cols] that read the same input (q, k and v, say); H [cols][cols];
 * xabs [cols] the mean |x| of each input channel. Writes the chosen scales s [cols] and alpha. */
smelt_err *awq_search(const float *const *W, const int *rows, int n_w, int cols, const double *H, const float *xabs, const quant_scheme *s,
                      float *scales, float *alpha);

#endif
