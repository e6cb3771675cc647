/* Least-squares group scales for fixed codes (refit.h). The products with H go through sgemm, one
 * a group of columns, so the cost is one rows x cols x cols product whatever the group size; the
 * small per-row systems are solved in double by LAPACK. */
#include "quant/refit.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

/* LAPACK's Fortran interface (OpenBLAS exports it) */
extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b, const int *ldb, int *info);

static int code_at(const quant_scheme *s, const void *q, int cols, int r, int c)
{
    if (s->bits == 8) return ((const int8_t *)q)[(size_t)r * cols + c];
    uint8_t b = ((const uint8_t *)q)[((size_t)r * cols + c) / 2];
    int v = (b >> ((c & 1) * 4)) & 15;
    return s->asym ? v : v >= 8 ? v - 16 : v; /* sym nibbles are two's complement */
}

/* s^T M s - 2 s^T b: the row's output error less its constant w^T H w */
static double objective(const double *M, const double *b, const float *s, int G)
{
    double e = 0;
    for (int g = 0; g < G; g++) {
        double ms = 0;
        for (int h = 0; h < G; h++) ms += M[(size_t)g * G + h] * s[h];
        e += s[g] * (ms - 2 * b[g]);
    }
    return e;
}

smelt_err *refit_scales(const float *w, int rows, int cols, const float *Hf, const quant_scheme *s, const void *q, float *scale, const uint8_t *zero,
                        double *gain)
{
    int group = s->bits == 8 ? cols : s->group, G = cols / group;
    size_t n = (size_t)rows * cols;
    float *A = malloc(n * sizeof *A), *HW = malloc(n * sizeof *HW), *Y = malloc(n * sizeof *Y);
    double *M = malloc((size_t)rows * G * G * sizeof *M), *b = malloc((size_t)rows * G * sizeof *b), *wHw = calloc((size_t)rows, sizeof *wHw);
    double *Ms = malloc((size_t)G * G * sizeof *Ms), *x = malloc((size_t)G * sizeof *x);
    float *snew = malloc((size_t)G * sizeof *snew);
    smelt_err *err = NULL;
    if (!A || !HW || !Y || !M || !b || !wHw || !Ms || !x || !snew) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory refitting the scales of %d x %d weights", rows, cols);
    double before = 0, after = 0;
    if (!err) {
        /* a_c = q_c - z_g: the dequantized weight is s_g a_c */
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                A[(size_t)r * cols + c] = (float)(code_at(s, q, cols, r, c) - (zero ? zero[(size_t)r * G + c / group] : 0));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, cols, 1.0f, w, cols, Hf, cols, 0.0f, HW, cols);
        for (int r = 0; r < rows; r++)
            for (int g = 0; g < G; g++) {
                double bg = 0;
                for (int c = g * group; c < (g + 1) * group; c++) {
                    bg += (double)A[(size_t)r * cols + c] * HW[(size_t)r * cols + c];
                    wHw[r] += (double)w[(size_t)r * cols + c] * HW[(size_t)r * cols + c];
                }
                b[(size_t)r * G + g] = bg;
            }
        /* column h of every row's M: Y = A[:, group h] · H[group h, :] */
        for (int h = 0; h < G; h++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, group, 1.0f, A + (size_t)h * group, cols, Hf + (size_t)h * group * cols, cols, 0.0f, Y,
                        cols);
            for (int r = 0; r < rows; r++)
                for (int g = 0; g < G; g++) {
                    double mgh = 0;
                    for (int c = g * group; c < (g + 1) * group; c++) mgh += (double)A[(size_t)r * cols + c] * Y[(size_t)r * cols + c];
                    M[((size_t)r * G + g) * G + h] = mgh;
                }
        }
    }
    for (int r = 0; !err && r < rows; r++) {
        const double *Mr = M + (size_t)r * G * G, *br = b + (size_t)r * G;
        float *sr = scale + (size_t)r * G;
        double e_old = objective(Mr, br, sr, G);
        /* a group whose codes are all at its zero point has no say: its scale stays */
        for (int i = 0; i < G * G; i++) Ms[i] = Mr[i];
        for (int g = 0; g < G; g++) {
            x[g] = br[g];
            if (!(Mr[(size_t)g * G + g] > 0)) {
                for (int h = 0; h < G; h++) Ms[(size_t)g * G + h] = Ms[(size_t)h * G + g] = 0;
                Ms[(size_t)g * G + g] = 1;
                x[g] = sr[g];
            }
        }
        int info = 0, one = 1;
        dposv_("L", &G, &one, Ms, &G, x, &G, &info);
        bool ok = info == 0;
        for (int g = 0; ok && g < G; g++) {
            snew[g] = (float)x[g];
            ok = isfinite(snew[g]) && snew[g] > 0;
        }
        double e_new = ok ? objective(Mr, br, snew, G) : e_old;
        if (ok && e_new < e_old)
            for (int g = 0; g < G; g++) sr[g] = snew[g];
        else e_new = e_old;
        before += wHw[r] + e_old;
        after += wHw[r] + e_new;
    }
    if (gain) *gain = before > 0 ? (before - after) / before : 0;
    free(A), free(HW), free(Y), free(M), free(b), free(wHw), free(Ms), free(x), free(snew);
    return err;
}
