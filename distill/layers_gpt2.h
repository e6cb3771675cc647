/* The training kernels GPT-2 adds to layers.h: LayerNorm with a bias, GELU (tanh approximation)
 * and learned position embeddings. Same conventions: row-major, N = B*T tokens, parameter
 * gradients accumulate (+=), parallel over smelt's pool, and sums over tokens in a fixed order so
 * results do not depend on the thread count. */
#ifndef SMELT_DISTILL_LAYERS_GPT2_H
#define SMELT_DISTILL_LAYERS_GPT2_H

#include <stdint.h>

/* out = (x - mean) * rstd * w + b per row, mean[N] and rstd[N] = 1/sqrt(var + eps) saved for the
 * backward (the inference engine's order of operations, so both give the same floats) */
void tl_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N, int C, float eps);
/* dx[N,C] += (the norm's input gradient), dw[C] += sum_t dout * xhat, db[C] += sum_t dout */
void tl_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w, const float *mean, const float *rstd, int N,
                           int C);

/* y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) over n elements */
void tl_gelu_forward(float *y, const float *x, int64_t n);
/* dx = dy * gelu'(x) (overwritten; dx may alias dy) */
void tl_gelu_backward(float *dx, const float *dy, const float *x, int64_t n);

/* x[b*T + t] += wpe[t] for B sequences of T tokens starting at position 0 */
void tl_pos_forward(float *x, const float *wpe, int B, int T, int C);
/* dwpe[t] += sum_b dx[b*T + t] (summed in sequence order) */
void tl_pos_backward(float *dwpe, const float *dx, int B, int T, int C);

#endif
