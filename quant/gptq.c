/* GPTQ on the CPU: Cholesky factors through LAPACK (OpenBLAS ships it), the per-row work on the
 * thread pool, the lazy block updates through sgemm. */
#include "quant/gptq.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "quant/clip.h"

/* LAPACK's Fortran interface (OpenBLAS exports it; Debian has no LAPACKE in the same package) */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda, double *b, const int *ldb, int *info);

#define GPTQ_BLOCK 128

/* H^-1 as its upper Cholesky factor U (H^-1 = U^T U), in f32, row-major [cols][cols]: row j of U
 * from the diagonal on is how column j's error spreads over the later columns. */
static smelt_err *inverse_cholesky(double *H, int n, float *U)
{
    int info = 0;
    /* H is symmetric, so row-major and column-major are the same matrix; 'L' in column-major is
     * the upper triangle in row-major */
    dpotrf_("L", &n, H, &n, &info);
    if (info == 0) dpotri_("L", &n, H, &n, &info);
    if (info != 0) return SMELT_ERR(SMELT_E_INVALID, "the calibration Hessian is not positive definite (LAPACK info %d); use more calibration data or a larger damp", info);
    /* the inverse is in the upper triangle (row-major); mirror it, factor again */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) H[(size_t)i * n + j] = H[(size_t)j * n + i];
    dpotrf_("L", &n, H, &n, &info);
    if (info != 0) return SMELT_ERR(SMELT_E_INVALID, "the inverse Hessian is not positive definite (LAPACK info %d)", info);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) U[(size_t)i * n + j] = j >= i ? (float)H[(size_t)i * n + j] : 0.0f;
    return NULL;
}

typedef struct {
    float *W;
    int rows, cols;
    const float *U;
    const quant_scheme *s;
    void *q;
    float *scale;
    uint8_t *zero;
    const int *perm; /* act-order: position -> original column (NULL: in order) */
    bool clip;       /* group ranges searched (see group_params) */
    bool oom;
} gptq_job;

static void put_q(const gptq_job *j, int r, int c, int v)
{
    if (j->s->bits == 8) ((int8_t *)j->q)[(size_t)r * j->cols + c] = (int8_t)v;
    else ((uint8_t *)j->q)[((size_t)r * j->cols + c) / 2] |= (uint8_t)((v & 15) << ((c & 1) * 4));
}

/* A group's range from its weights as they stand: RTN's min/max, or with clip the shrink of it
 * (clip.h's grid) with the least rounding error, each column's error weighted by 1 / U_cc^2, the
 * weight GPTQ's own loss gives a column's error before it is spread. */
static void group_params(const gptq_job *j, const float *w, int c0, int group, float *scale, int *zero)
{
    if (!j->clip) {
        rtn_group_params(w, group, j->s, scale, zero);
        return;
    }
    double best = INFINITY;
    for (int k = 0; k < 21; k++) {
        float sc;
        int z;
        rtn_group_params_shrunk(w, group, j->s, 1.0f - 0.025f * (float)k, &sc, &z);
        double err = 0;
        for (int i = 0; i < group; i++) {
            double d = w[i] - (double)sc * (rtn_quantize_value(w[i], sc, z, j->s) - z), u = j->U[(size_t)(c0 + i) * j->cols + c0 + i];
            err += d * d / (u * u);
        }
        if (err < best) best = err, *scale = sc, *zero = z;
    }
}

static void gptq_rows(void *ctx, int64_t begin, int64_t end)
{
    gptq_job *j = ctx;
    int n = j->cols, R = (int)(end - begin);
    int group = j->s->bits == 8 ? n : j->s->group, ng = n / group;
    float *E = malloc((size_t)R * GPTQ_BLOCK * sizeof *E); /* the block's scaled errors [R][B] */
    float *sc = malloc((size_t)R * sizeof *sc);
    int *zp = malloc((size_t)R * sizeof *zp);
    if (!E || !sc || !zp) {
        free(E), free(sc), free(zp);
        j->oom = true;
        return;
    }
    float *W = j->W + (size_t)begin * n;
    for (int i1 = 0; i1 < n; i1 += GPTQ_BLOCK) {
        int i2 = i1 + GPTQ_BLOCK < n ? i1 + GPTQ_BLOCK : n, B = i2 - i1;
        for (int c = i1; c < i2; c++) {
            const float *u = j->U + (size_t)c * n;
            float d = u[c];
            int oc = j->perm ? j->perm[c] : c; /* the column in the stored layout */
            for (int r = 0; r < R; r++) {
                float *w = W + (size_t)r * n;
                int gr = (int)begin + r, g = oc / group;
                if (j->perm) {
                    /* static groups: set from the original weights before the pass */
                    sc[r] = j->scale[(size_t)gr * ng + g];
                    zp[r] = j->zero ? j->zero[(size_t)gr * ng + g] : 0;
                } else if (c % group == 0) {
                    group_params(j, w + c, c, group, &sc[r], &zp[r]);
                    j->scale[(size_t)gr * ng + g] = sc[r];
                    if (j->zero) j->zero[(size_t)gr * ng + g] = (uint8_t)zp[r];
                }
                int v = rtn_quantize_value(w[c], sc[r], zp[r], j->s);
                put_q(j, gr, oc, v);
                float deq = sc[r] * (float)(v - zp[r]), err = (w[c] - deq) / d;
                w[c] = deq;
                E[(size_t)r * GPTQ_BLOCK + (c - i1)] = err;
                for (int k = c + 1; k < i2; k++) w[k] -= err * u[k];
            }
        }
        /* the block's errors reach every later column at once: W[:, i2:] -= E · U[i1:i2, i2:] */
        if (i2 < n)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, n - i2, B, -1.0f, E, GPTQ_BLOCK, j->U + (size_t)i1 * n + i2, n, 1.0f, W + i2, n);
    }
    free(E), free(sc), free(zp);
}

/* act-order: columns by decreasing H diagonal (the most informative first), ties by index */
typedef struct {
    double d;
    int i;
} diag_entry;
static int by_diag_desc(const void *a, const void *b)
{
    const diag_entry *x = a, *y = b;
    return x->d > y->d ? -1 : x->d < y->d ? 1 : (x->i > y->i) - (x->i < y->i);
}

smelt_err *gptq_quantize(float *W, int rows, int cols, double *H, double damp, bool act_order, bool clip, const quant_scheme *s, void *q,
                         float *scale, uint8_t *zero)
{
    /* a column no calibration input ever touched carries no information: keep it at zero */
    double mean_diag = 0;
    for (int i = 0; i < cols; i++) {
        double *h = &H[(size_t)i * cols + i];
        if (*h == 0) {
            *h = 1;
            for (int r = 0; r < rows; r++) W[(size_t)r * cols + i] = 0;
        }
        mean_diag += *h;
    }
    mean_diag /= cols;
    for (int i = 0; i < cols; i++) H[(size_t)i * cols + i] += damp * mean_diag;
    int group = s->bits == 8 ? cols : s->group, ng = cols / group;
    int *perm = NULL;
    double *Hp = NULL;
    float *Wp = NULL;
    if (act_order) {
        perm = malloc((size_t)cols * sizeof *perm);
        diag_entry *diag = malloc((size_t)cols * sizeof *diag);
        Hp = malloc((size_t)cols * cols * sizeof *Hp);
        Wp = malloc((size_t)rows * cols * sizeof *Wp);
        if (!perm || !diag || !Hp || !Wp) {
            free(perm), free(diag), free(Hp), free(Wp);
            return SMELT_ERR(SMELT_E_NOMEM, "out of memory for act-order (%d columns)", cols);
        }
        for (int i = 0; i < cols; i++) diag[i] = (diag_entry){H[(size_t)i * cols + i], i};
        qsort(diag, (size_t)cols, sizeof *diag, by_diag_desc);
        for (int i = 0; i < cols; i++) perm[i] = diag[i].i;
        free(diag);
        /* static groups: every group's range from the weights as they are, before any update */
        for (int r = 0; r < rows; r++)
            for (int g = 0; g < ng; g++) {
                float sc;
                int z;
                rtn_group_params(W + (size_t)r * cols + (size_t)g * group, group, s, &sc, &z);
                scale[(size_t)r * ng + g] = sc;
                if (zero) zero[(size_t)r * ng + g] = (uint8_t)z;
            }
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < cols; j++) Hp[(size_t)i * cols + j] = H[(size_t)perm[i] * cols + perm[j]];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < cols; i++) Wp[(size_t)r * cols + i] = W[(size_t)r * cols + perm[i]];
    }
    float *U = malloc((size_t)cols * cols * sizeof *U);
    if (!U) {
        free(perm), free(Hp), free(Wp);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory for a %d x %d inverse Hessian", cols, cols);
    }
    smelt_err *err = inverse_cholesky(act_order ? Hp : H, cols, U);
    if (!err) {
        if (s->bits == 4) memset(q, 0, (size_t)rows * cols / 2);
        gptq_job j = {act_order ? Wp : W, rows, cols, U, s, q, scale, zero, perm, clip, false};
        smelt_parallel_for(rows, 8, gptq_rows, &j);
        if (j.oom) err = SMELT_ERR(SMELT_E_NOMEM, "out of memory");
        if (act_order) /* the dequantized result back in the stored column order */
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < cols; i++) W[(size_t)r * cols + perm[i]] = Wp[(size_t)r * cols + i];
    }
    free(U), free(perm), free(Hp), free(Wp);
    return err;
}

smelt_err *gptq_float_target(float *W, int rows, int cols, const double *H, const double *G, double damp)
{
    size_t nn = (size_t)cols * cols, nw = (size_t)rows * cols;
    double *Hd = malloc(nn * sizeof *Hd), *Wd = malloc(nw * sizeof *Wd), *B = malloc(nw * sizeof *B);
    if (!Hd || !Wd || !B) {
        free(Hd), free(Wd), free(B);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory for a %d x %d float-target solve", rows, cols);
    }
    memcpy(Hd, H, nn * sizeof *Hd);
    double mean_diag = 0;
    for (int i = 0; i < cols; i++) {
        double *h = &Hd[(size_t)i * cols + i];
        if (*h == 0) *h = 1; /* an input never seen: G's row is zero too, so V's column is zero */
        mean_diag += *h;
    }
    mean_diag /= cols;
    for (int i = 0; i < cols; i++) Hd[(size_t)i * cols + i] += damp * mean_diag;
    for (size_t i = 0; i < nw; i++) Wd[i] = W[i];
    /* V = W + W (G - H)^T (H + damp)^-1: the dampening shrinks the correction, not the weights (V =
     * W G^T (H + damp)^-1 would pull every weight towards zero along H's weak directions).
     * B = W (G - H)^T, [rows][cols]: read column-major it is the [cols][rows] right-hand side. */
    double *D = malloc(nn * sizeof *D);
    if (!D) {
        free(Hd), free(Wd), free(B);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory for a %d x %d float-target solve", rows, cols);
    }
    for (size_t i = 0; i < nn; i++) D[i] = G[i] - H[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, cols, 1.0, Wd, cols, D, cols, 0.0, B, cols);
    free(D);
    int info = 0;
    dpotrf_("L", &cols, Hd, &cols, &info);
    if (info == 0) dpotrs_("L", &cols, &rows, Hd, &cols, B, &cols, &info);
    smelt_err *err = NULL;
    if (info != 0) err = SMELT_ERR(SMELT_E_INVALID, "the calibration Hessian is not positive definite (LAPACK info %d); use more calibration data or a larger damp", info);
    for (size_t i = 0; !err && i < nw; i++) W[i] = (float)(Wd[i] + B[i]);
    free(Hd), free(Wd), free(B);
    return err;
}
