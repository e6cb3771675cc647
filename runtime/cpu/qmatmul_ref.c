/* The scalar reference of the quantized products: what every SIMD kernel is tested against. */
#include "runtime/cpu/qmatmul.h"

#include <stddef.h>

/* the 4-bit value of column c in a packed row */
static int nibble(const uint8_t *row, int c, bool is_signed)
{
    int v = (row[c >> 1] >> ((c & 1) * 4)) & 15;
    return is_signed ? (v ^ 8) - 8 : v;
}

static void rows8_ref(const qmat *w, int r0, int r1, const float *x, const float *xsum, int T, float *y)
{
    (void)xsum;
    for (int r = r0; r < r1; r++) {
        const int8_t *q = (const int8_t *)w->q + (size_t)r * w->cols;
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * w->cols;
            float acc = 0;
            for (int c = 0; c < w->cols; c++) acc += (float)q[c] * xt[c];
            y[(size_t)t * w->rows + r] = acc * w->scale[r];
        }
    }
}

static void rows4_ref(const qmat *w, int r0, int r1, const float *x, const float *xsum, int T, float *y)
{
    int ng = w->cols / w->group;
    for (int r = r0; r < r1; r++) {
        const uint8_t *q = (const uint8_t *)w->q + (size_t)r * (w->cols / 2);
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * w->cols;
            float total = 0;
            for (int g = 0; g < ng; g++) {
                float acc = 0;
                for (int c = g * w->group; c < (g + 1) * w->group; c++) acc += (float)nibble(q, c, !w->zero) * xt[c];
                if (w->zero) acc -= (float)w->zero[(size_t)r * ng + g] * xsum[(size_t)t * ng + g];
                total += acc * w->scale[(size_t)r * ng + g];
            }
            y[(size_t)t * w->rows + r] = total;
        }
    }
}

const qmat_kernels *qmat_kernels_ref(void)
{
    static const qmat_kernels k = {"ref", rows8_ref, rows4_ref};
    return &k;
}

void qmat_dequant_rows(const qmat *w, int r0, int r1, float *out)
{
    int ng = w->cols / w->group;
    for (int r = r0; r < r1; r++) {
        float *o = out + (size_t)(r - r0) * w->cols;
        size_t stride;
        const uint8_t *q = qmat_row(w, r, &stride);
#define BYTE(j) q[(size_t)(j) / QMAT_ILV_BYTES * stride + (size_t)(j) % QMAT_ILV_BYTES]
        if (w->bits == 8) {
            for (int c = 0; c < w->cols; c++) o[c] = (float)(int8_t)BYTE(c) * w->scale[r];
            continue;
        }
        for (int c = 0; c < w->cols; c++) {
            int g = c / w->group, v = (BYTE(c >> 1) >> ((c & 1) * 4)) & 15;
            float z = w->zero ? (float)w->zero[(size_t)r * ng + g] : 0.0f;
            o[c] = ((float)(w->zero ? v : (v ^ 8) - 8) - z) * w->scale[(size_t)r * ng + g];
        }
#undef BYTE
    }
}
