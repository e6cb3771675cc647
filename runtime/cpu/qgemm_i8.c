/* w8a8 products: packing the weights into VNNI panels, quantizing activations per token, choosing
 * the kernels by CPU features and spreading tiles of tokens × rows over the thread pool. */
#include "runtime/cpu/qgemm_i8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"

bool i8mat_pack(i8mat *m, const int8_t *q, const float *scale, int rows, int cols)
{
    *m = (i8mat){rows, cols, (rows + 15) & ~15, (cols + 3) & ~3, NULL, NULL, scale};
    m->w = calloc((size_t)m->rows_p * m->cols_p, 1);
    m->rowsum = calloc((size_t)m->rows_p, sizeof *m->rowsum);
    if (!m->w || !m->rowsum) {
        i8mat_free(m);
        return false;
    }
    int kb = m->cols_p / 4;
    for (int r = 0; r < rows; r++) {
        const int8_t *row = q + (size_t)r * cols;
        int8_t *panel = m->w + (size_t)(r / 16) * kb * 64 + (r % 16) * 4;
        int32_t s = 0;
        for (int c = 0; c < cols; c++) {
            int8_t v = row[c] == -128 ? -127 : row[c]; /* the AVX2 sign trick needs -v to fit */
            panel[(size_t)(c / 4) * 64 + c % 4] = v;
            s += v;
        }
        m->rowsum[r] = s;
    }
    return true;
}

void i8mat_free(i8mat *m)
{
    free(m->w);
    free(m->rowsum);
    m->w = NULL;
    m->rowsum = NULL;
}

const i8_kernels *i8_kernels_best(void)
{
    static const i8_kernels *best; /* decided once; a benign race (same value) */
    if (best) return best;
    const char *force = getenv("SMELT_KERNELS");
    const i8_kernels *k = NULL;
    if (force && strcmp(force, "ref") == 0) k = i8_kernels_ref();
    else if (force && strcmp(force, "avx2") == 0) k = i8_kernels_avx2();
    if (!k) k = i8_kernels_vnni();
    if (!k) k = i8_kernels_avx2();
    if (!k) k = i8_kernels_ref();
    best = k;
    return k;
}

void i8_quantize_rows(const float *x, int T, int cols, int cols_p, bool offset, uint8_t *xq, float *xs)
{
    for (int t = 0; t < T; t++) {
        const float *r = x + (size_t)t * cols;
        uint8_t *q = xq + (size_t)t * cols_p;
        float amax = 0;
        for (int c = 0; c < cols; c++) amax = fmaxf(amax, fabsf(r[c]));
        /* an all-zero row: every q is 0 and so is its output */
        float inv = amax > 0 ? 127.0f / amax : 0.0f, off = offset ? 128.0f : 0.0f;
        for (int c = 0; c < cols; c++) {
            float v = nearbyintf(r[c] * inv);
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            q[c] = (uint8_t)(int)(v + off); /* offset: 1..255; else the two's complement byte */
        }
        for (int c = cols; c < cols_p; c++) q[c] = offset ? 128 : 0;
        xs[t] = amax / 127.0f;
    }
}

/* Tiles of TOK_BLOCK tokens by ROW_BLOCK rows: enough work a task, and a block of weight panels
 * (ROW_BLOCK × cols bytes) that stays in cache while the task's tokens go past it. */
#define TOK_BLOCK 64
#define ROW_BLOCK 64

typedef struct {
    const i8_kernels *k;
    const i8mat *w;
    const uint8_t *xq;
    const float *xs;
    int T, n_rb;
    float *y;
} mul_job;

static void mul_tiles(void *ctx, int64_t begin, int64_t end)
{
    const mul_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        int tb = (int)(i / j->n_rb), rb = (int)(i % j->n_rb);
        int t0 = tb * TOK_BLOCK, nt = j->T - t0 < TOK_BLOCK ? j->T - t0 : TOK_BLOCK;
        int r0 = rb * ROW_BLOCK, r1 = r0 + ROW_BLOCK < j->w->rows ? r0 + ROW_BLOCK : j->w->rows;
        j->k->gemm(j->w, j->xq + (size_t)t0 * j->w->cols_p, j->xs + t0, nt, r0, r1, j->y + (size_t)t0 * j->w->rows);
    }
}

typedef struct {
    const i8_kernels *k;
    const float *x;
    int cols, cols_p;
    uint8_t *xq;
    float *xs;
} quant_job;

static void quant_tokens(void *ctx, int64_t begin, int64_t end)
{
    const quant_job *j = ctx;
    j->k->quant(j->x + (size_t)begin * j->cols, (int)(end - begin), j->cols, j->cols_p, j->xq + (size_t)begin * j->cols_p, j->xs + begin);
}

bool i8_mul(const i8_kernels *k, const i8mat *w, const float *x, int T, float *y)
{
    if (!k) k = i8_kernels_best();
    uint8_t *xq = malloc((size_t)T * w->cols_p);
    float *xs = malloc((size_t)T * sizeof *xs);
    if (!xq || !xs) {
        free(xq);
        free(xs);
        return false;
    }
    quant_job qj = {k, x, w->cols, w->cols_p, xq, xs};
    smelt_parallel_for(T, 16, quant_tokens, &qj);
    int n_rb = (w->rows + ROW_BLOCK - 1) / ROW_BLOCK, n_tb = (T + TOK_BLOCK - 1) / TOK_BLOCK;
    mul_job j = {k, w, xq, xs, T, n_rb, y};
    smelt_parallel_for((int64_t)n_rb * n_tb, 1, mul_tiles, &j);
    free(xq);
    free(xs);
    return true;
}
