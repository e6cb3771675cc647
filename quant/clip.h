/* Clipping search: RTN whose group range is shrunk when that lowers the group's error.
 *
 * Rounding to the full range [min, max] of a group wastes levels on a few outliers; shrinking the
 * range by a factor (1.0, 0.975, ... 0.5) clips them but rounds everything else more finely. For
 * each group the factor with the least error is kept. The error is the plain squared weight error,
 * or, given the layer's input second moments H (= 2 X^T X / n), the error of the layer's outputs
 * the row causes on the calibration inputs, e^T H e: the groups of a row are chosen in turn, each
 * against the errors the others have at that point (groups wider than 128, such as w8 rows, use
 * only H's diagonal). That is AWQ's "auto-clip" with the Hessian in place of stored activations
 * and the cross-group terms kept. Ties keep the larger range, so
 * where clipping never helps the result is RTN's, bit for bit. */
#ifndef SMELT_CLIP_H
#define SMELT_CLIP_H

#include "quant/rtn.h"

/* The RTN rules of rtn.h applied to w shrunk to `shrink` of its range (1 = plain RTN). */
void rtn_group_params_shrunk(const float *w, int n, const quant_scheme *s, float shrink, float *scale, int *zero);

/* Like rtn_quantize, with the range of every group (every row for w8) chosen by the search.
 * H may be NULL (weight error) or [cols][cols] row-major. */
void clip_quantize(const float *w, int rows, int cols, const quant_scheme *s, const double *H, void *q, float *scale, uint8_t *zero);

#endif
