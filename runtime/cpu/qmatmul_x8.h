/* Quantized matrix-vector products with the activations quantized too (the way llama.cpp's
 * Q4_0 x Q8_0 works): x is rounded once a call to int8 in blocks of QX_BLOCK columns with one f32
 * scale a block, then every weight row is an integer dot product (u8 x s8, int32 sums), turned
 * into float once a block. The float kernels of qmatmul.h convert every weight to f32 and run out
 * of shuffle and FMA throughput long before memory bandwidth; these read the weights at the speed
 * memory delivers them.
 *
 * Activations: block b of x (columns 32b .. 32b + 31) has s_b = max|x| / 127 and
 * q = round_half_even(x * (127 / max|x|)) (the product, so SIMD and scalar round the same float),
 * |q| <= 127; x is zero-padded to cols_p (a multiple of 128). The error is at most s_b / 2 an
 * element, so |y - y_float| <= sum_c |w_c| * s_b(c) / 2 (tests/unit/test_qmatmul_x8.c holds the
 * reference to that bound).
 *
 * 4-bit weights (u = the nibble as unsigned: q + 8 when symmetric, q when asymmetric, z = 8 or the
 * zero point): dot_b = sum u * xq - z * sum_b(xq), an exact int32 for every block; y = sum over
 * groups of scale_g * sum over the group's blocks of s_b * dot_b. The activation layout lets one
 * 64-byte load of packed weights (128 columns) meet x without shuffles: each 128 columns of x are
 * stored as their 64 even columns then their 64 odd ones, so the low nibbles of the weight bytes
 * multiply the first half and the high nibbles the second; an int32 lane of a dot-product
 * instruction then sums columns 8k .. 8k + 7 (lane k), whose block scale (lane[k]) and the sum of
 * its 8 activations (nsum[k], negated) are prepared with x.
 * int8 weights (per channel): y = scale_r * sum_b s_b * dot_b, an int32 lane summing 4 columns.
 *
 * Every kernel computes the same integer dot per block; only the order of the float sums differs
 * (the tests hold SIMD kernels to the reference within f32 rounding, and exactly where every float
 * step is exact). Kernels are chosen at run time: AVX-512 VNNI (vpdpbusd), AVX2 (vpmaddubsw +
 * vpmaddwd), portable reference; SMELT_KERNELS=ref|avx2 forces one.
 *
 * Which products use them: qmat_mul_x8, i.e. the decoder's quantized linears at T <= QMAT_MAX_T
 * rows of x (decode and small batches) unless SMELT_QMAT_ACT=f32 when the engine is made; more
 * rows go through the dequantize + sgemm path of qmat_mul (float activations), as do 4-bit groups
 * other than 32, 64 or a multiple of 128.
 */
#ifndef SMELT_QMATMUL_X8_H
#define SMELT_QMATMUL_X8_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/cpu/qmatmul.h"

#define QX_BLOCK 32  /* columns an activation scale */
#define QX_CHUNK 128 /* x is padded to this; the 4-bit layout's unit */

/* T rows of x quantized for weights of `bits` bits; arrays are [T][...] */
typedef struct {
    int T, bits, cols, cols_p;
    int lanes;     /* int32 lanes a row: cols_p / 8 (4-bit) or cols_p / 4 (int8) */
    int8_t *q;     /* [T][cols_p]: int8 in column order; 4-bit: each 128 columns even then odd */
    float *s;      /* [T][cols_p / QX_BLOCK] block scales (0 for an all-zero or padding block) */
    float *lane;   /* [T][lanes] the block scale of each lane */
    int32_t *nsum; /* 4-bit: [T][lanes] minus the sum of q over each lane's 8 columns */
    int32_t *nsum8; /* 4-bit: [T][lanes] 8 * nsum (the symmetric zero point's term, ready) */
    void *buf;     /* owns all of the above */
} qxvec;

/* How a decode kernel covers rows [r0, r1) of w four at a time: STEPS(a, b, ilv) runs whole
 * steps of four rows from a while they fit below b and returns where it stopped, ONE(a, b) runs
 * rows one at a time. Interleaved rows (qmatmul.h) come in whole groups: a range starting inside
 * one takes its first rows one at a time, and the rows past the last group are row after row. */
#define QX_GROUPED(STEPS, ONE)                                                  \
    do {                                                                        \
        int r_ = r0;                                                            \
        if (w->interleaved) {                                                   \
            int a_ = r_ % 4 ? (r_ / 4 + 1) * 4 : r_, last_ = w->rows / 4 * 4;   \
            a_ = a_ < r1 ? a_ : r1;                                             \
            if (r_ < a_) ONE(r_, a_);                                           \
            r_ = STEPS(a_, r1 < last_ ? r1 : last_, 1);                         \
        } else r_ = STEPS(r_, r1, 0);                                           \
        if (r_ < r1) ONE(r_, r1);                                               \
    } while (0)

/* quantizes one row of x (cols floats) by the rule above into the layout for `bits`-bit weights:
 * q (cols_p bytes), s (cols_p / QX_BLOCK), lane, and for 4 bits nsum and nsum8 (lanes each);
 * scratch holds cols_p bytes */
typedef void (*qx_quant_fn)(const float *x, int cols, int cols_p, int bits, int8_t *q, float *s, float *lane, int32_t *nsum, int32_t *nsum8,
                            int8_t *scratch);
/* y[t][r] for r in [r0, r1), t in [0, x->T) */
typedef void (*qx_rows_fn)(const qmat *w, int r0, int r1, const qxvec *x, float *y);
typedef struct {
    const char *name; /* "ref", "avx2", "avx512vnni" */
    qx_quant_fn quant;
    qx_rows_fn rows8, rows4;
} qx_kernels;

const qx_kernels *qx_kernels_ref(void);
const qx_kernels *qx_kernels_avx2(void); /* NULL when this CPU (or compiler) lacks AVX2 */
const qx_kernels *qx_kernels_vnni(void); /* NULL without AVX-512 VNNI */
const qx_kernels *qx_kernels_best(void);

/* The rest of the layout from q in column order (plain) and s: q (4 bits: the even/odd order),
 * lane, nsum, nsum8. What every quantizer must produce; the scalar and AVX2 ones call it. */
void qx_layout(int cols_p, int bits, const int8_t *plain, int8_t *q, const float *s, float *lane, int32_t *nsum, int32_t *nsum8);

/* the position of column c in a 4-bit activation row */
static inline int qx4_pos(int c) { return (c & ~127) + (c & 1) * 64 + ((c & 127) >> 1); }

/* Fills v for T rows of x with k's quantizer (NULL: the best). Returns false on OOM. */
bool qxvec_make(qxvec *v, const qx_kernels *k, const float *x, int T, int cols, int bits);
void qxvec_free(qxvec *v);

/* Whether the integer kernels take w (int8, or 4-bit with groups of 32, 64 or a multiple of 128). */
bool qmat_x8_supported(const qmat *w);
/* The default for an engine being made: int8 activations unless SMELT_QMAT_ACT=f32. */
bool qmat_x8_wanted(void);

/* y = x · W^T with int8 activations and the given kernels (NULL: the best), threaded over rows,
 * for T <= QMAT_MAX_T and a supported w; otherwise qmat_mul. Returns false on OOM. */
bool qmat_mul_x8_with(const qx_kernels *k, const qmat *w, const float *x, int T, float *y);
bool qmat_mul_x8(const qmat *w, const float *x, int T, float *y);

#endif
