/* AWQ's scale search (awq.h): every candidate quantizes the scaled weights with RTN and measures
 * trace(E H E^T) through one sgemm a weight. */
#include "quant/awq.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "runtime/cpu/qmatmul.h"

/* the output error of RTN on W scaled by s, through Hf (f32 H) */
static double scaled_rtn_error(const float *W, int rows, int cols, const float *s, const float *Hf, const quant_scheme *sch, float *Ws, float *E,
                               void *q, float *scale, uint8_t *zero)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) Ws[(size_t)r * cols + c] = W[(size_t)r * cols + c] * s[c];
    rtn_quantize(Ws, rows, cols, sch, q, scale, zero);
    int group = sch->bits == 8 ? cols : sch->group;
    qmat qm = {sch->bits, rows, cols, group, q, scale, zero, false};
    qmat_dequant_rows(&qm, 0, rows, Ws);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) Ws[(size_t)r * cols + c] = W[(size_t)r * cols + c] - Ws[(size_t)r * cols + c] / s[c];
    /* E = (W - Wq) H, then the error is the sum of (W - Wq) ∘ E */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, cols, 1.0f, Ws, cols, Hf, cols, 0.0f, E, cols);
    double err = 0;
    for (size_t i = 0; i < (size_t)rows * cols; i++) err += (double)Ws[i] * E[i];
    return err;
}

smelt_err *awq_search(const float *const *W, const int *rows, int n_w, int cols, const double *H, const float *xabs, const quant_scheme *sch,
                      float *scales, float *alpha)
{
    int max_rows = 0;
    for (int i = 0; i < n_w; i++) max_rows = rows[i] > max_rows ? rows[i] : max_rows;
    size_t n = (size_t)max_rows * cols;
    float *Hf = malloc((size_t)cols * cols * sizeof *Hf), *Ws = malloc(n * sizeof *Ws), *E = malloc(n * sizeof *E), *s = malloc((size_t)cols * sizeof *s);
    void *q = malloc(n);
    float *scale = malloc(n * sizeof *scale); /* more than the groups need; simple */
    uint8_t *zero = malloc(n);
    smelt_err *err = NULL;
    if (!Hf || !Ws || !E || !s || !q || !scale || !zero) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory for the AWQ search (%d x %d)", max_rows, cols);
    for (size_t i = 0; !err && i < (size_t)cols * cols; i++) Hf[i] = (float)H[i];
    double best = INFINITY;
    for (int k = 0; !err && k < AWQ_GRID; k++) {
        float a = (float)k / AWQ_GRID, mx = 0, mn = INFINITY;
        for (int c = 0; c < cols; c++) {
            s[c] = powf(fmaxf(xabs[c], 1e-4f), a);
            mx = fmaxf(mx, s[c]);
            mn = fminf(mn, s[c]);
        }
        float norm = sqrtf(mx * mn);
        for (int c = 0; c < cols; c++) s[c] /= norm;
        double e = 0;
        for (int i = 0; i < n_w; i++) e += scaled_rtn_error(W[i], rows[i], cols, s, Hf, sch, Ws, E, q, scale, sch->asym ? zero : NULL);
        if (e < best) {
            best = e;
            *alpha = a;
            for (int c = 0; c < cols; c++) scales[c] = s[c];
        }
    }
    free(Hf), free(Ws), free(E), free(s), free(q), free(scale), free(zero);
    return err;
}
