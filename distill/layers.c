/* Training kernels (see layers.h). */
#define _POSIX_C_SOURCE 200809L
#include "distill/layers.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "runtime/graph/gx.h"

typedef struct {
    bool ta, tb, rows;
    int M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_block(void *ctx, int64_t begin, int64_t end)
{
    const gemm_job *j = ctx;
    int n = (int)(end - begin);
    CBLAS_TRANSPOSE ta = j->ta ? CblasTrans : CblasNoTrans, tb = j->tb ? CblasTrans : CblasNoTrans;
    if (j->rows) {
        const float *A = j->ta ? j->A + begin : j->A + (size_t)begin * j->lda;
        cblas_sgemm(CblasRowMajor, ta, tb, n, j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb, j->beta, j->C + (size_t)begin * j->ldc, j->ldc);
    } else {
        const float *B = j->tb ? j->B + (size_t)begin * j->ldb : j->B + begin;
        cblas_sgemm(CblasRowMajor, ta, tb, j->M, n, j->K, j->alpha, j->A, j->lda, B, j->ldb, j->beta, j->C + begin, j->ldc);
    }
}

void tl_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    gemm_job j = {ta, tb, M >= N, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
    /* blocks of at least 64 rows (or columns) keep each sgemm call efficient; the split never
     * changes which products an output element sums, so results do not depend on the thread count */
    smelt_parallel_for(j.rows ? M : N, 64, gemm_block, &j);
}

typedef struct {
    float *y;
    const float *b;
    int out;
} bias_job;

static void bias_fill_rows(void *ctx, int64_t begin, int64_t end)
{
    const bias_job *j = ctx;
    for (int64_t t = begin; t < end; t++) memcpy(j->y + (size_t)t * j->out, j->b, (size_t)j->out * sizeof(float));
}

void tl_linear_forward(float *y, const float *x, const float *W, const float *b, int N, int in, int out)
{
    /* a bias is written first and the product added onto it (beta 1): no second pass over y */
    if (b) {
        bias_job j = {y, b, out};
        smelt_parallel_for(N, 64, bias_fill_rows, &j);
    }
    tl_gemm(false, true, N, out, in, 1.0f, x, in, W, in, b ? 1.0f : 0.0f, y, out);
}

typedef struct {
    const float *dy;
    int out;
} colsum_ctx;

static void colsum_row(const void *ctx, int64_t t, float *acc)
{
    const colsum_ctx *c = ctx;
    const float *d = c->dy + (size_t)t * c->out;
    for (int i = 0; i < c->out; i++) acc[i] += d[i];
}

void tl_linear_backward(float *dx, bool acc_dx, float *dW, float *db, const float *dy, const float *x, const float *W, int N, int in, int out)
{
    tl_gemm(false, false, N, in, out, 1.0f, dy, out, W, in, acc_dx ? 1.0f : 0.0f, dx, in);
    tl_gemm(true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in);
    if (db) {
        colsum_ctx c = {dy, out};
        tl_reduce_rows(db, out, N, colsum_row, &c);
    }
}

/* rows a block of tl_reduce_rows */
#define REDUCE_ROWS 128

typedef struct {
    float *part;
    int W;
    int64_t N;
    tl_row_fn fn;
    const void *ctx;
} reduce_job;

static void reduce_blocks(void *ctx, int64_t begin, int64_t end)
{
    const reduce_job *j = ctx;
    for (int64_t b = begin; b < end; b++) {
        float *part = j->part + (size_t)b * j->W;
        memset(part, 0, (size_t)j->W * sizeof(float));
        int64_t t1 = (b + 1) * REDUCE_ROWS < j->N ? (b + 1) * REDUCE_ROWS : j->N;
        for (int64_t t = b * REDUCE_ROWS; t < t1; t++) j->fn(j->ctx, t, part);
    }
}

void tl_reduce_rows(float *dst, int W, int64_t N, tl_row_fn fn, const void *ctx)
{
    int64_t nb = (N + REDUCE_ROWS - 1) / REDUCE_ROWS;
    float *part = malloc((size_t)(nb ? nb : 1) * W * sizeof *part);
    if (!part) abort(); /* W floats a block of rows */
    reduce_job j = {part, W, N, fn, ctx};
    smelt_parallel_for(nb, 1, reduce_blocks, &j);
    for (int64_t b = 0; b < nb; b++)
        for (int i = 0; i < W; i++) dst[i] += part[(size_t)b * W + i];
    free(part);
}

void tl_embed_forward(float *out, const int32_t *ids, const float *embed, int N, int C)
{
    for (int t = 0; t < N; t++) memcpy(out + (size_t)t * C, embed + (size_t)ids[t] * C, (size_t)C * sizeof(float));
}

void tl_embed_backward(float *dembed, const float *dout, const int32_t *ids, int N, int C)
{
    /* serial: two tokens may share an id */
    for (int t = 0; t < N; t++) {
        float *d = dembed + (size_t)ids[t] * C;
        const float *s = dout + (size_t)t * C;
        for (int i = 0; i < C; i++) d[i] += s[i];
    }
}

typedef struct {
    float *out, *rstd, *dx, *dw;
    const float *x, *w, *dout;
    int N, C;
    float eps;
} norm_job;

static void rms_fwd_rows(void *ctx, int64_t begin, int64_t end)
{
    const norm_job *j = ctx;
    for (int64_t t = begin; t < end; t++) {
        const float *x = j->x + (size_t)t * j->C;
        float *o = j->out + (size_t)t * j->C;
        float ss = 0;
        for (int i = 0; i < j->C; i++) ss += x[i] * x[i];
        float r = 1.0f / sqrtf(ss / (float)j->C + j->eps);
        j->rstd[t] = r;
        for (int i = 0; i < j->C; i++) o[i] = j->w[i] * (x[i] * r);
    }
}

void tl_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps)
{
    norm_job j = {.out = out, .rstd = rstd, .x = x, .w = w, .N = N, .C = C, .eps = eps};
    smelt_parallel_for(N, 16, rms_fwd_rows, &j);
}

static void rms_bwd_rows(void *ctx, int64_t begin, int64_t end)
{
    const norm_job *j = ctx;
    for (int64_t t = begin; t < end; t++) {
        const float *x = j->x + (size_t)t * j->C, *dy = j->dout + (size_t)t * j->C;
        float *dx = j->dx + (size_t)t * j->C, r = j->rstd[t], dot = 0;
        for (int i = 0; i < j->C; i++) dot += dy[i] * j->w[i] * x[i];
        /* d/dx of w * x * r with r = (mean(x^2) + eps)^-1/2: w dy r - x r^3 (dy.w.x) / C */
        float k = r * r * r * dot / (float)j->C;
        for (int i = 0; i < j->C; i++) dx[i] += dy[i] * j->w[i] * r - x[i] * k;
    }
}

static void rms_dw_row(const void *ctx, int64_t t, float *acc)
{
    const norm_job *j = ctx;
    const float *dy = j->dout + (size_t)t * j->C, *x = j->x + (size_t)t * j->C;
    float r = j->rstd[t];
    for (int i = 0; i < j->C; i++) acc[i] += dy[i] * x[i] * r;
}

void tl_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int N, int C)
{
    norm_job j = {.rstd = (float *)rstd, .dx = dx, .dw = dw, .x = x, .w = w, .dout = dout, .N = N, .C = C};
    smelt_parallel_for(N, 16, rms_bwd_rows, &j);
    tl_reduce_rows(dw, C, N, rms_dw_row, &j);
}

void tl_rope_tables(float *cs, float *sn, int T, int hd, float theta)
{
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float f = 1.0f / powf(theta, (float)(2 * i) / (float)hd);
        for (int t = 0; t < T; t++) {
            float a = (float)t * f;
            cs[(size_t)t * half + i] = cosf(a);
            sn[(size_t)t * half + i] = sinf(a);
        }
    }
}

typedef struct {
    float *x;
    const float *cs, *sn;
    int T, nh, hd;
    float sign;
} rope_job;

static void rope_rows(void *ctx, int64_t begin, int64_t end)
{
    const rope_job *j = ctx;
    int half = j->hd / 2;
    for (int64_t t = begin; t < end; t++) {
        const float *c = j->cs + (size_t)(t % j->T) * half, *s = j->sn + (size_t)(t % j->T) * half;
        for (int h = 0; h < j->nh; h++) {
            float *v = j->x + ((size_t)t * j->nh + h) * j->hd;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half], si = j->sign * s[i];
                v[i] = a * c[i] - b * si;
                v[i + half] = b * c[i] + a * si;
            }
        }
    }
}

void tl_rope(float *x, const float *cs, const float *sn, int B, int T, int nh, int hd, bool inverse)
{
    /* the rotation is orthogonal: its backward is the rotation by the opposite angle */
    rope_job j = {x, cs, sn, T, nh, hd, inverse ? -1.0f : 1.0f};
    smelt_parallel_for((int64_t)B * T, 16, rope_rows, &j);
}

typedef struct {
    float *out, *P, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout, *Pc;
    int B, T, nh, nkv, hd;
} attn_job;

/* Query rows a block: block i only needs keys 0..its last row, so the products skip most of the
 * masked upper triangle. */
#define ATTN_QB 64

/* one (sequence, head) pair a task: S = Q K^T / sqrt(hd), causal softmax, O = P V */
static void attn_fwd_tasks(void *ctx, int64_t begin, int64_t end)
{
    const attn_job *j = ctx;
    int T = j->T, hd = j->hd, qd = j->nh * hd, kvd = j->nkv * hd, group = j->nh / j->nkv;
    float scale = 1.0f / sqrtf((float)hd);
    for (int64_t task = begin; task < end; task++) {
        int b = (int)(task / j->nh), h = (int)(task % j->nh), kh = h / group;
        const float *Q = j->q + (size_t)b * T * qd + (size_t)h * hd;
        const float *K = j->k + (size_t)b * T * kvd + (size_t)kh * hd, *V = j->v + (size_t)b * T * kvd + (size_t)kh * hd;
        float *P = j->P + ((size_t)b * j->nh + h) * T * T, *O = j->out + (size_t)b * T * qd + (size_t)h * hd;
        for (int r0 = 0; r0 < T; r0 += ATTN_QB) {
            int rows = T - r0 < ATTN_QB ? T - r0 : ATTN_QB, n = r0 + rows;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, hd, scale, Q + (size_t)r0 * qd, qd, K, kvd, 0.0f, P + (size_t)r0 * T, T);
            for (int r = r0; r < n; r++) {
                float *row = P + (size_t)r * T;
                gx_softmax_row_f32(row, row, r + 1); /* vectorized exp */
                memset(row + r + 1, 0, (size_t)(T - r - 1) * sizeof *row);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, n, 1.0f, P + (size_t)r0 * T, T, V, kvd, 0.0f, O + (size_t)r0 * qd, qd);
        }
    }
}

void tl_attention_forward(float *out, float *P, const float *q, const float *k, const float *v, int B, int T, int nh, int nkv, int hd)
{
    attn_job j = {.out = out, .P = P, .q = q, .k = k, .v = v, .B = B, .T = T, .nh = nh, .nkv = nkv, .hd = hd};
    smelt_parallel_for((int64_t)B * nh, 1, attn_fwd_tasks, &j);
}

/* one (sequence, kv head) pair a task, so the query heads sharing K and V accumulate their
 * gradients without racing */
static void attn_bwd_tasks(void *ctx, int64_t begin, int64_t end)
{
    const attn_job *j = ctx;
    int T = j->T, hd = j->hd, qd = j->nh * hd, kvd = j->nkv * hd, group = j->nh / j->nkv;
    float scale = 1.0f / sqrtf((float)hd);
    for (int64_t task = begin; task < end; task++) {
        int b = (int)(task / j->nkv), kh = (int)(task % j->nkv);
        const float *K = j->k + (size_t)b * T * kvd + (size_t)kh * hd, *V = j->v + (size_t)b * T * kvd + (size_t)kh * hd;
        float *dK = j->dk + (size_t)b * T * kvd + (size_t)kh * hd, *dV = j->dv + (size_t)b * T * kvd + (size_t)kh * hd;
        float *dS = j->scratch + (size_t)task * T * T;
        for (int t = 0; t < T; t++) {
            memset(dK + (size_t)t * kvd, 0, (size_t)hd * sizeof(float));
            memset(dV + (size_t)t * kvd, 0, (size_t)hd * sizeof(float));
        }
        for (int g = 0; g < group; g++) {
            int h = kh * group + g;
            const float *P = j->Pc + ((size_t)b * j->nh + h) * T * T;
            const float *Q = j->q + (size_t)b * T * qd + (size_t)h * hd, *dO = j->dout + (size_t)b * T * qd + (size_t)h * hd;
            float *dQ = j->dq + (size_t)b * T * qd + (size_t)h * hd;
            for (int r0 = 0; r0 < T; r0 += ATTN_QB) {
                int rows = T - r0 < ATTN_QB ? T - r0 : ATTN_QB, n = r0 + rows;
                const float *Pb = P + (size_t)r0 * T, *dOb = dO + (size_t)r0 * qd;
                float *dSb = dS + (size_t)r0 * T;
                /* dV[0:n] += P^T dO; dP = dO V^T */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hd, rows, 1.0f, Pb, T, dOb, qd, 1.0f, dV, kvd);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, hd, 1.0f, dOb, qd, V, kvd, 0.0f, dSb, T);
                /* softmax backward: dS = P (dP - sum_c P dP) per row; masked entries have P = 0 */
                for (int r = r0; r < n; r++) {
                    const float *p = P + (size_t)r * T;
                    float *d = dS + (size_t)r * T, dot = 0;
                    for (int c = 0; c <= r; c++) dot += p[c] * d[c];
                    for (int c = 0; c <= r; c++) d[c] = p[c] * (d[c] - dot);
                    for (int c = r + 1; c < n; c++) d[c] = 0;
                }
                /* dQ = scale dS K; dK[0:n] += scale dS^T Q */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, n, scale, dSb, T, K, kvd, 0.0f, dQ + (size_t)r0 * qd, qd);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hd, rows, scale, dSb, T, Q + (size_t)r0 * qd, qd, 1.0f, dK, kvd);
            }
        }
    }
}

void tl_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *P, const float *q, const float *k,
                           const float *v, int B, int T, int nh, int nkv, int hd)
{
    attn_job j = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .dout = dout, .Pc = P, .q = q, .k = k, .v = v,
                  .B = B, .T = T, .nh = nh, .nkv = nkv, .hd = hd};
    smelt_parallel_for((int64_t)B * nkv, 1, attn_bwd_tasks, &j);
}

typedef struct {
    float *s, *dg, *du;
    const float *g, *u, *ds;
} swiglu_job;

/* elements a vectorized sigmoid call (a stack buffer) */
#define ACT_CHUNK 1024

static void swiglu_fwd_range(void *ctx, int64_t begin, int64_t end)
{
    const swiglu_job *j = ctx;
    float sig[ACT_CHUNK];
    for (int64_t i0 = begin; i0 < end; i0 += ACT_CHUNK) {
        int n = (int)(end - i0 < ACT_CHUNK ? end - i0 : ACT_CHUNK);
        const float *g = j->g + i0, *u = j->u + i0;
        float *s = j->s + i0;
        gx_sigmoid_f32(g, sig, n);
        for (int i = 0; i < n; i++) s[i] = g[i] * sig[i] * u[i];
    }
}

void tl_swiglu_forward(float *s, const float *g, const float *u, int64_t n)
{
    swiglu_job j = {.s = s, .g = g, .u = u};
    smelt_parallel_for(n, 1 << 14, swiglu_fwd_range, &j);
}

static void swiglu_bwd_range(void *ctx, int64_t begin, int64_t end)
{
    const swiglu_job *j = ctx;
    float sig[ACT_CHUNK];
    for (int64_t i0 = begin; i0 < end; i0 += ACT_CHUNK) {
        int n = (int)(end - i0 < ACT_CHUNK ? end - i0 : ACT_CHUNK);
        const float *g = j->g + i0, *u = j->u + i0, *ds = j->ds + i0;
        float *dg = j->dg + i0, *du = j->du + i0;
        gx_sigmoid_f32(g, sig, n);
        /* silu'(g) = sig (1 + g (1 - sig)) */
        for (int i = 0; i < n; i++) {
            float sg = sig[i], gi = g[i], d = ds[i];
            dg[i] = d * u[i] * sg * (1.0f + gi * (1.0f - sg));
            du[i] = d * gi * sg;
        }
    }
}

void tl_swiglu_backward(float *dg, float *du, const float *ds, const float *g, const float *u, int64_t n)
{
    swiglu_job j = {.dg = dg, .du = du, .g = g, .u = u, .ds = ds};
    smelt_parallel_for(n, 1 << 14, swiglu_bwd_range, &j);
}

typedef struct {
    float *y;
    const float *a, *b;
} add_job;

static void add_range(void *ctx, int64_t begin, int64_t end)
{
    const add_job *j = ctx;
    for (int64_t i = begin; i < end; i++) j->y[i] = j->a[i] + j->b[i];
}

void tl_add(float *y, const float *a, const float *b, int64_t n)
{
    add_job j = {y, a, b};
    smelt_parallel_for(n, 1 << 14, add_range, &j);
}
