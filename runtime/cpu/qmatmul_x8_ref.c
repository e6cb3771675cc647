/* The scalar reference of the int8-activation products: the integer dot of every block spelled
 * out, then the floats block by block. What every SIMD kernel is tested against. */
#include "runtime/cpu/qmatmul_x8.h"

#include <math.h>
#include <stddef.h>

static void quant_ref(const float *x, int cols, int cols_p, int bits, int8_t *out, float *s, float *lane, int32_t *nsum, int32_t *nsum8, int8_t *scratch)
{
    int8_t *q = bits == 4 ? scratch : out; /* column order */
    for (int b = 0; b < cols_p / QX_BLOCK; b++) {
        int c0 = b * QX_BLOCK, c1 = c0 + QX_BLOCK < cols ? c0 + QX_BLOCK : cols;
        float amax = 0;
        for (int c = c0; c < c1; c++) amax = fmaxf(amax, fabsf(x[c]));
        float inv = amax > 0 ? 127.0f / amax : 0.0f; /* an all-zero block: q = 0, s = 0 */
        for (int c = c0; c < c0 + QX_BLOCK; c++) {
            float v = c < c1 ? nearbyintf(x[c] * inv) : 0.0f;
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            q[c] = (int8_t)v;
        }
        s[b] = amax / 127.0f;
    }
    qx_layout(cols_p, bits, q, out, s, lane, nsum, nsum8);
}

/* byte j of a row at base with the given chunk stride (qmat_row) */
#define BYTE(base, stride, j) (base)[(size_t)(j) / QMAT_ILV_BYTES * (stride) + (size_t)(j) % QMAT_ILV_BYTES]

static void rows8_ref(const qmat *w, int r0, int r1, const qxvec *x, float *y)
{
    int n = w->cols, nb = x->cols_p / QX_BLOCK;
    for (int r = r0; r < r1; r++) {
        size_t stride;
        const uint8_t *wq = qmat_row(w, r, &stride);
        for (int t = 0; t < x->T; t++) {
            const int8_t *xq = x->q + (size_t)t * x->cols_p;
            const float *s = x->s + (size_t)t * nb;
            float total = 0;
            for (int b = 0; b * QX_BLOCK < n; b++) {
                int32_t dot = 0;
                for (int c = b * QX_BLOCK; c < (b + 1) * QX_BLOCK && c < n; c++) dot += (int32_t)(int8_t)BYTE(wq, stride, c) * xq[c];
                total += s[b] * (float)dot;
            }
            y[(size_t)t * w->rows + r] = total * w->scale[r];
        }
    }
}

static void rows4_ref(const qmat *w, int r0, int r1, const qxvec *x, float *y)
{
    int n = w->cols, G = w->group, ng = n / G, nb = x->cols_p / QX_BLOCK;
    for (int r = r0; r < r1; r++) {
        size_t stride;
        const uint8_t *wq = qmat_row(w, r, &stride);
        for (int t = 0; t < x->T; t++) {
            const int8_t *xq = x->q + (size_t)t * x->cols_p;
            const float *s = x->s + (size_t)t * nb;
            float total = 0;
            for (int g = 0; g < ng; g++) {
                int32_t z = w->zero ? w->zero[(size_t)r * ng + g] : 8;
                float acc = 0;
                for (int b = g * G / QX_BLOCK; b < (g + 1) * G / QX_BLOCK; b++) {
                    int32_t dot = 0, xsum = 0;
                    for (int c = b * QX_BLOCK; c < (b + 1) * QX_BLOCK; c++) {
                        int u = (BYTE(wq, stride, c >> 1) >> ((c & 1) * 4)) & 15;
                        if (!w->zero) u ^= 8; /* two's complement nibble -> q + 8 */
                        int xv = xq[qx4_pos(c)];
                        dot += u * xv;
                        xsum += xv;
                    }
                    acc += s[b] * (float)(dot - z * xsum);
                }
                total += w->scale[(size_t)r * ng + g] * acc;
            }
            y[(size_t)t * w->rows + r] = total;
        }
    }
}

const qx_kernels *qx_kernels_ref(void)
{
    static const qx_kernels k = {"ref", quant_ref, rows8_ref, rows4_ref};
    return &k;
}
