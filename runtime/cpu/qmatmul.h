/* Products with quantized weight matrices: y[T, rows] = x[T, cols] · W^T, W stored as int8 per
 * output channel or 4-bit per group of columns, w = scale * (q - zero).
 *
 * Storage (what quant/ writes into the IR): int8 q as [rows][cols] bytes; 4-bit q packed two a
 * byte along the columns, the lower column in the low nibble, [rows][cols / 2]; symmetric 4-bit
 * values are two's complement (-8..7), asymmetric ones 0..15 with a u8 zero point a group.
 * scale (and zero) are [rows][cols / group], f32 (u8).
 *
 * Kernels: a portable scalar reference (_ref) and AVX2 and AVX-512 versions, chosen at run time
 * from the CPU's features (SMELT_KERNELS=ref|avx2|avx512 forces one, for tests and benchmarks).
 * A few rows of x (decode) stream the quantized weights once for all of them; many rows (prefill)
 * dequantize a block of weight rows at a time and use sgemm. These float-activation kernels are
 * the accuracy reference; the decoder's decode runs qmatmul_x8.h (int8 activations, integer dot
 * products) instead, which reads the weights at memory speed.
 */
#ifndef SMELT_QMATMUL_H
#define SMELT_QMATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int bits;       /* 8 or 4 */
    int rows, cols; /* out and in features */
    int group;      /* columns a scale: cols for int8 per channel; 32, 64 or 128 for 4-bit */
    const void *q;
    const float *scale;
    const uint8_t *zero; /* NULL when symmetric */
    bool interleaved;    /* q in the decode layout below instead of row after row */
} qmat;

/* The decode layout (interleaved): the rows in groups of QMAT_ILV_ROWS, each group a header and
 * then its bytes: QMAT_ILV_BYTES of row 0, the same columns of rows 1, 2 and 3, then the next
 * QMAT_ILV_BYTES of row 0, and so on. The header holds the group's scales ([4][groups] f32) and,
 * asymmetric, its zero points ([4][groups] u8), padded to whole cache lines. The rows past the
 * last whole group follow row after row, without one. A group is then one sequential stream,
 * scales included: the int8-activation kernels read four rows a step, and with the rows apart
 * the hardware prefetchers see four streams of 2 KiB (a 4096-column 4-bit row) that end before
 * they ramp up, and with the scales apart two more small streams (measured, 2 threads, cold
 * 4096 x 4096 4-bit: 0.72 of the memory roofline row after row, 0.85-0.93 interleaved, and
 * scales and zero points from cache instead of their arrays 1.14x sym, 1.44x asym). Only where a
 * row is whole chunks (qmat_can_interleave); the engine repacks a copy of each quantized weight
 * it runs through those kernels, and scale and zero keep pointing at the [rows][groups] arrays
 * (the other kernels read those). */
#define QMAT_ILV_ROWS 4
#define QMAT_ILV_BYTES 64

/* bytes a row of q */
static inline size_t qmat_row_bytes(const qmat *w) { return w->bits == 8 ? (size_t)w->cols : (size_t)w->cols / 2; }

/* bytes of a group's header in the decode layout */
static inline size_t qmat_ilv_header_bytes(const qmat *w)
{
    size_t ng = (size_t)(w->cols / w->group), h = QMAT_ILV_ROWS * ng * (sizeof(float) + (w->zero ? 1 : 0));
    return (h + QMAT_ILV_BYTES - 1) / QMAT_ILV_BYTES * QMAT_ILV_BYTES;
}

/* bytes of q in the decode layout */
static inline size_t qmat_interleaved_bytes(const qmat *w)
{
    return (size_t)(w->rows / QMAT_ILV_ROWS) * qmat_ilv_header_bytes(w) + (size_t)w->rows * qmat_row_bytes(w);
}

/* The header of the group holding row r (decode layout, r in a whole group): scales, then zero
 * points, [QMAT_ILV_ROWS][groups] each. */
static inline const uint8_t *qmat_group_header(const qmat *w, int r)
{
    size_t g = (size_t)(r / QMAT_ILV_ROWS);
    return (const uint8_t *)w->q + g * (qmat_ilv_header_bytes(w) + QMAT_ILV_ROWS * qmat_row_bytes(w));
}

/* Where row r is: byte j at base + (j / QMAT_ILV_BYTES) * (*stride) + j % QMAT_ILV_BYTES. */
static inline const uint8_t *qmat_row(const qmat *w, int r, size_t *stride)
{
    size_t rb = qmat_row_bytes(w);
    int whole = w->rows / QMAT_ILV_ROWS * QMAT_ILV_ROWS;
    *stride = QMAT_ILV_BYTES;
    if (!w->interleaved) return (const uint8_t *)w->q + (size_t)r * rb;
    if (r >= whole) return (const uint8_t *)w->q + (size_t)(whole / QMAT_ILV_ROWS) * qmat_ilv_header_bytes(w) + (size_t)r * rb;
    *stride = (size_t)QMAT_ILV_ROWS * QMAT_ILV_BYTES;
    return qmat_group_header(w, r) + qmat_ilv_header_bytes(w) + (size_t)(r % QMAT_ILV_ROWS) * QMAT_ILV_BYTES;
}

/* Whether w (row after row) can take the decode layout: rows of whole chunks, a whole group. */
bool qmat_can_interleave(const qmat *w);
/* Writes w (row after row) in the decode layout into dst (qmat_interleaved_bytes). */
void qmat_interleave(const qmat *w, void *dst);

/* The kernel for rows [r0, r1) of W against T (≤ QMAT_MAX_T) vectors; xsum[t][g] holds the sum of
 * x[t]'s group g (asymmetric weights need it), y[t][r] is written for r in [r0, r1). */
#define QMAT_MAX_T 8
typedef void (*qmat_rows_fn)(const qmat *w, int r0, int r1, const float *x, const float *xsum, int T, float *y);

typedef struct {
    const char *name; /* "ref", "avx2", "avx512" */
    qmat_rows_fn rows8, rows4;
} qmat_kernels;

const qmat_kernels *qmat_kernels_ref(void);
const qmat_kernels *qmat_kernels_avx2(void);   /* NULL when not compiled in */
const qmat_kernels *qmat_kernels_avx512(void); /* NULL when not compiled in */
/* The best kernels this CPU runs (or the forced ones). */
const qmat_kernels *qmat_kernels_best(void);

/* y = x · W^T with the best kernels, threaded over rows. Returns false on OOM (prefill scratch). */
bool qmat_mul(const qmat *w, const float *x, int T, float *y);
/* The same with given kernels, for tests. */
bool qmat_mul_with(const qmat_kernels *k, const qmat *w, const float *x, int T, float *y);
/* Dequantizes rows [r0, r1) into out[(r1 - r0) * cols]. */
void qmat_dequant_rows(const qmat *w, int r0, int r1, float *out);
/* Bytes of W (q plus scales and zero points). */
size_t qmat_bytes(const qmat *w);

#endif
