/* Training kernels: each layer is a forward/backward pair of plain functions over row-major
 * buffers, shapes in comments, no hidden state (llm.c's pattern). N is the number of tokens in a
 * batch (B sequences of T). Backward functions accumulate (+=) into parameter gradients; input
 * gradients are overwritten unless the comment says they accumulate.
 *
 * Matrix products go to single-threaded OpenBLAS sgemm calls, one per block of the output, spread
 * over smelt's thread pool; everything else runs on the pool too.
 */
#ifndef SMELT_DISTILL_LAYERS_H
#define SMELT_DISTILL_LAYERS_H

#include <stdbool.h>
#include <stdint.h>

/* C[M,N] = alpha op(A) op(B) + beta C, row-major, split over the pool by blocks of C. */
void tl_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* y[N,out] = x[N,in] W[out,in]^T (+ b[out] on every row when b is not NULL) */
void tl_linear_forward(float *y, const float *x, const float *W, const float *b, int N, int in, int out);
/* dx[N,in] = dy W (accumulates when acc_dx), dW[out,in] += dy^T x, db[out] += sum_t dy (db may be NULL) */
void tl_linear_backward(float *dx, bool acc_dx, float *dW, float *db, const float *dy, const float *x, const float *W, int N, int in, int out);

/* dst[W] += the sum over rows t < N of what fn adds into acc[W] for row t. Partial sums over fixed
 * blocks of rows (row order inside a block) are added in block order, so parameter gradients that
 * sum over tokens (norm weights, biases) come out the same whatever the thread count. */
typedef void (*tl_row_fn)(const void *ctx, int64_t t, float *acc);
void tl_reduce_rows(float *dst, int W, int64_t N, tl_row_fn fn, const void *ctx);

/* out[N,C] = embed[ids] */
void tl_embed_forward(float *out, const int32_t *ids, const float *embed, int N, int C);
/* dembed[ids[t]] += dout[t] */
void tl_embed_backward(float *dembed, const float *dout, const int32_t *ids, int N, int C);

/* out = w * x * rstd per row; rstd[N] = 1/sqrt(mean(x^2) + eps) is saved for the backward */
void tl_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
/* dx[N,C] += (the norm's input gradient), dw[C] += sum_t dout * x * rstd */
void tl_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int N, int C);

/* RoPE tables for positions 0..T-1: cs[T, hd/2] cosines and sn[T, hd/2] sines of pos * inv_freq,
 * inv_freq_i = 1 / theta^(2i/hd) in f32 (the engine's and the reference's convention). */
void tl_rope_tables(float *cs, float *sn, int T, int hd, float theta);
/* x[B*T, nh*hd] rotated in place (rotate-half layout: pairs (i, i + hd/2)); inverse for the backward */
void tl_rope(float *x, const float *cs, const float *sn, int B, int T, int nh, int hd, bool inverse);

/* Causal attention with grouped-query heads. q[N, nh*hd], k,v[N, nkv*hd], out[N, nh*hd],
 * P[B, nh, T, T] the saved probabilities. */
void tl_attention_forward(float *out, float *P, const float *q, const float *k, const float *v, int B, int T, int nh, int nkv, int hd);
/* dq, dk, dv (overwritten) from dout; scratch holds B*nkv*T*T floats */
void tl_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *P, const float *q, const float *k,
                           const float *v, int B, int T, int nh, int nkv, int hd);

/* s = silu(g) * u over n elements */
void tl_swiglu_forward(float *s, const float *g, const float *u, int64_t n);
/* dg, du (overwritten) from ds */
void tl_swiglu_backward(float *dg, float *du, const float *ds, const float *g, const float *u, int64_t n);

/* y = a + b over n elements (y may alias a) */
void tl_add(float *y, const float *a, const float *b, int64_t n);

#endif
