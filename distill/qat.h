/* Quantization-aware training: the student's decoder projections (q, k, v, o, gate, up, down; not
 * the embedding, norms or head, which `smelt quant` keeps in float too) run forward through their
 * round-to-nearest quantized values (quant/rtn.h, the exact rule the final artifact is written
 * with), while the optimizer updates float master weights with the gradient taken at the quantized
 * point (the straight-through estimator: rounding's derivative is taken as one). */
#ifndef SMELT_DISTILL_QAT_H
#define SMELT_DISTILL_QAT_H

#include "distill/tmodel.h"
#include "quant/rtn.h"

/* Checks every projection's input width is a multiple of the scheme's group. */
smelt_err *qat_check(const tm_model *m, const quant_scheme *s);

/* out = master with every projection replaced by dequant(quant(W)); other tensors copied. */
void qat_fake_quantize(const tm_model *m, const float *master, float *out, const quant_scheme *s);

#endif
