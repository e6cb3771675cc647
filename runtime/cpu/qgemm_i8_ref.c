/* The scalar reference of the w8a8 products: what every SIMD kernel is held to, bit for bit. */
#include "runtime/cpu/qgemm_i8.h"

static void gemm_ref(const i8mat *w, const uint8_t *xq, const float *xs, int T, int r0, int r1, float *y)
{
    for (int t = 0; t < T; t++) {
        const int8_t *x = (const int8_t *)xq + (size_t)t * w->cols_p;
        for (int r = r0; r < r1; r++) {
            int32_t acc = 0;
            for (int c = 0; c < w->cols; c++) acc += (int32_t)x[c] * i8mat_at(w, r, c);
            y[(size_t)t * w->rows + r] = ((float)acc * xs[t]) * w->scale[r];
        }
    }
}

static void quant_ref(const float *x, int T, int cols, int cols_p, uint8_t *xq, float *xs) { i8_quantize_rows(x, T, cols, cols_p, false, xq, xs); }

const i8_kernels *i8_kernels_ref(void)
{
    static const i8_kernels k = {"ref", false, gemm_ref, quant_ref};
    return &k;
}
