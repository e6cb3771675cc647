/* w8a8 products: y[T, rows] = x[T, cols] · W^T with int8 weights (one scale per output channel)
 * and the activations quantized to int8 on the fly, one scale per token (dynamic, symmetric:
 * sa = max|x_t| / 127, q = round(x / sa)); the dot products are integer, int32 accumulators, and
 * y[t][r] = ((float)dot * sa_t) * sw_r.
 *
 * Weights are repacked once (i8mat_pack) into panels of 16 output rows by 4 input columns, the
 * layout of a VNNI dot product (vpdpbusd: four u8×s8 products summed into each int32 lane), so one
 * 64-byte load feeds 16 rows and a broadcast of 4 activation bytes; the same panels serve AVX2
 * (two 32-byte halves) and the scalar reference. Rows are padded to 16 and columns to 4 with zeros.
 *
 * u8×s8 asymmetry: VNNI multiplies unsigned by signed bytes, so its kernel takes the activations
 * offset by 128 (u8 = q + 128) and subtracts 128 · rowsum(W), precomputed at packing. AVX2's
 * maddubs would saturate on 255 · 127 · 2, so it keeps q signed and moves the sign onto the
 * weights (|q| · sign(w, q)); that needs weights in [-127, 127], which packing guarantees (RTN never
 * writes -128; a -128 is clamped to -127). Every kernel gives the same integer dots, so the same
 * floats (tests/unit/test_qgemm_i8.c holds them to the reference bit for bit).
 *
 * Kernels are chosen at run time (AVX-512 VNNI, AVX2, reference; SMELT_KERNELS=ref|avx2|avx512
 * forces one). Many tokens (prefill) go through register tiles of several tokens by 64 rows, so
 * each weight panel loaded is used for all of them; one token (decode) streams the int8 weights.
 */
#ifndef SMELT_QGEMM_I8_H
#define SMELT_QGEMM_I8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define I8_PANEL_ROWS 16
#define I8_PANEL_K 4

typedef struct {
    int rows, cols;     /* out and in features */
    int rows_p, cols_p; /* padded to multiples of 16 and 4 */
    int8_t *w;          /* [rows_p / 16][cols_p / 4][16][4] (owned) */
    int32_t *rowsum;    /* [rows_p] sums of each row's q (owned) */
    const float *scale; /* [rows] weight scales (borrowed) */
} i8mat;

/* Packs q [rows][cols] (int8, row-major) with its per-row scales (borrowed, must outlive m).
 * Returns false on OOM. */
bool i8mat_pack(i8mat *m, const int8_t *q, const float *scale, int rows, int cols);
void i8mat_free(i8mat *m);
/* The packed weight at (r, c), for tests and the reference. */
static inline int i8mat_at(const i8mat *m, int r, int c)
{
    return m->w[((size_t)(r / 16) * (m->cols_p / 4) + c / 4) * 64 + (r % 16) * 4 + c % 4];
}

/* A set of kernels. `offset` kernels take activations as u8 = q + 128, the others as s8 q; xq rows
 * are cols_p bytes apart (padding holds q = 0). gemm writes y[t][r] (rows apart) for t in [0, T)
 * and r in [r0, r1), r0 a multiple of 16. */
typedef void (*i8_gemm_fn)(const i8mat *w, const uint8_t *xq, const float *xs, int T, int r0, int r1, float *y);
/* i8_quantize_rows in the kernel's form, vectorized; the same bytes and scales as the scalar one */
typedef void (*i8_quant_fn)(const float *x, int T, int cols, int cols_p, uint8_t *xq, float *xs);
typedef struct {
    const char *name; /* "ref", "avx2", "avx512vnni" */
    bool offset;
    i8_gemm_fn gemm;
    i8_quant_fn quant;
} i8_kernels;

const i8_kernels *i8_kernels_ref(void);
const i8_kernels *i8_kernels_avx2(void);   /* NULL when this CPU (or compiler) lacks AVX2 */
const i8_kernels *i8_kernels_vnni(void);   /* NULL without AVX-512 VNNI */
const i8_kernels *i8_kernels_best(void);

/* Quantizes T rows of x (cols floats each) per token into xq (T × cols_p bytes, offset or not) and
 * xs (the T scales): sa = max|x| / 127 and q = round_half_even(x · (127 / max|x|)), clamped to
 * ±127 (the product, not a division, so SIMD versions round the very same float). */
void i8_quantize_rows(const float *x, int T, int cols, int cols_p, bool offset, uint8_t *xq, float *xs);

/* y = x · W^T (w8a8) with the given kernels (NULL: the best), threaded over tokens and rows.
 * Returns false on OOM (the quantized activations: T × cols_p bytes). */
bool i8_mul(const i8_kernels *k, const i8mat *w, const float *x, int T, float *y);

#endif
