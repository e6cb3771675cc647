/* Least-squares group scales for fixed integer codes.
 *
 * Rounding (GPTQ's, or RTN's) decides which grid point each weight takes; how far apart the grid
 * points are is then a separate, continuous choice. With the codes q and the zero points fixed, a
 * row's dequantized weights are linear in its group scales (deq_c = s_g (q_c - z_g) for column c
 * of group g), so the scales that minimise the layer's output error on the calibration inputs,
 *
 *     (w - deq)^T H (w - deq),   H = X^T X (any positive multiple),
 *
 * solve a G x G linear system a row (G = the row's groups): M s = b with
 * M_gh = sum_{c in g, d in h} a_c H_cd a_d and b_g = sum_{c in g} a_c (H w)_c, a_c = q_c - z_g.
 * The new scales replace the old only where they lower that error (they always should; the check
 * guards against a degenerate system), so the refit can only improve what GPTQ minimises.
 */
#ifndef SMELT_REFIT_H
#define SMELT_REFIT_H

#include <stdint.h>

#include "core/err.h"
#include "quant/rtn.h"

/* w [rows][cols]: the original (float) weights; Hf [cols][cols]: the calibration Hessian in f32;
 * q, zero as rtn_quantize writes them (zero NULL when symmetric); scale [rows][cols/group] is
 * updated in place. *gain, when not NULL, receives the relative drop of the summed output error
 * (0 when nothing changed). */
smelt_err *refit_scales(const float *w, int rows, int cols, const float *Hf, const quant_scheme *s, const void *q, float *scale, const uint8_t *zero,
                        double *gain);

#endif
