/* Choosing and running the quantized-product kernels: CPU features decide once (or SMELT_KERNELS
 * forces a set); rows are spread over the thread pool; many rows of x go through sgemm on blocks
 * of dequantized weight rows instead. */
#include "runtime/cpu/qmatmul.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"

/* Weight rows dequantized at a time for the sgemm path (bounds its scratch to this × cols floats). */
#define DEQUANT_BLOCK 256

const qmat_kernels *qmat_kernels_best(void)
{
    const char *force = getenv("SMELT_KERNELS");
    const qmat_kernels *k = NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (force && strcmp(force, "ref") == 0) return qmat_kernels_ref();
    if (force && strcmp(force, "avx2") == 0 && avx2) return qmat_kernels_avx2();
    if (avx512 && !(force && strcmp(force, "avx2") == 0)) k = qmat_kernels_avx512();
    if (!k && avx2) k = qmat_kernels_avx2();
#else
    (void)force;
#endif
    return k ? k : qmat_kernels_ref();
}

size_t qmat_bytes(const qmat *w)
{
    size_t ng = (size_t)w->rows * (size_t)(w->cols / w->group);
    size_t q = w->bits == 8 ? (size_t)w->rows * w->cols : (size_t)w->rows * w->cols / 2;
    return q + ng * sizeof(float) + (w->zero ? ng : 0);
}

bool qmat_can_interleave(const qmat *w) { return !w->interleaved && w->rows >= QMAT_ILV_ROWS && qmat_row_bytes(w) % QMAT_ILV_BYTES == 0; }

void qmat_interleave(const qmat *w, void *dst)
{
    size_t rb = qmat_row_bytes(w), stride, ng = (size_t)(w->cols / w->group);
    qmat out = *w;
    out.q = dst;
    out.interleaved = true;
    for (int r = 0; r < w->rows; r++) {
        const uint8_t *src = (const uint8_t *)w->q + (size_t)r * rb;
        uint8_t *d = (uint8_t *)qmat_row(&out, r, &stride);
        for (size_t j = 0; j < rb; j += QMAT_ILV_BYTES) memcpy(d + j / QMAT_ILV_BYTES * stride, src + j, QMAT_ILV_BYTES);
    }
    for (int r = 0; r < w->rows / QMAT_ILV_ROWS * QMAT_ILV_ROWS; r += QMAT_ILV_ROWS) {
        uint8_t *h = (uint8_t *)qmat_group_header(&out, r);
        memset(h, 0, qmat_ilv_header_bytes(w));
        memcpy(h, w->scale + (size_t)r * ng, QMAT_ILV_ROWS * ng * sizeof(float));
        if (w->zero) memcpy(h + QMAT_ILV_ROWS * ng * sizeof(float), w->zero + (size_t)r * ng, QMAT_ILV_ROWS * ng);
    }
}

typedef struct {
    const qmat_kernels *k;
    const qmat *w;
    const float *x, *xsum;
    int T;
    float *y;
} rows_job;

static void rows_range(void *ctx, int64_t begin, int64_t end)
{
    const rows_job *j = ctx;
    (j->w->bits == 8 ? j->k->rows8 : j->k->rows4)(j->w, (int)begin, (int)end, j->x, j->xsum, j->T, j->y);
}

/* y[:, block] for many rows of x: blocks of DEQUANT_BLOCK weight rows spread over the pool, each
 * dequantized into the task's scratch and multiplied by a single-threaded sgemm */
typedef struct {
    const qmat *w;
    const float *x;
    int T;
    float *y;
    bool oom;
} sgemm_job;

static void sgemm_blocks(void *ctx, int64_t begin, int64_t end)
{
    sgemm_job *j = ctx;
    const qmat *w = j->w;
    float *buf = malloc((size_t)DEQUANT_BLOCK * w->cols * sizeof *buf);
    if (!buf) {
        j->oom = true; /* a benign race: every writer stores true */
        return;
    }
    for (int64_t b = begin; b < end; b++) {
        int r0 = (int)b * DEQUANT_BLOCK, n = w->rows - r0 < DEQUANT_BLOCK ? w->rows - r0 : DEQUANT_BLOCK;
        qmat_dequant_rows(w, r0, r0 + n, buf);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->T, n, w->cols, 1.0f, j->x, w->cols, buf, w->cols, 0.0f, j->y + r0, w->rows);
    }
    free(buf);
}

static bool mul_sgemm(const qmat *w, const float *x, int T, float *y)
{
    sgemm_job j = {w, x, T, y, false};
    smelt_parallel_for((w->rows + DEQUANT_BLOCK - 1) / DEQUANT_BLOCK, 1, sgemm_blocks, &j);
    return !j.oom;
}

bool qmat_mul_with(const qmat_kernels *k, const qmat *w, const float *x, int T, float *y)
{
    /* these kernels read rows one after another; the decode layout (an engine's int8-activation
     * copy, which reaches here only past QMAT_MAX_T rows) goes through the dequantization */
    if (T > QMAT_MAX_T || w->interleaved) return mul_sgemm(w, x, T, y);
    int ng = w->cols / w->group;
    float *xsum = NULL;
    if (w->zero) {
        xsum = malloc((size_t)T * ng * sizeof *xsum);
        if (!xsum) return false;
        for (int t = 0; t < T; t++)
            for (int g = 0; g < ng; g++) {
                float s = 0;
                for (int c = g * w->group; c < (g + 1) * w->group; c++) s += x[(size_t)t * w->cols + c];
                xsum[(size_t)t * ng + g] = s;
            }
    }
    rows_job j = {k, w, x, xsum, T, y};
    smelt_parallel_for(w->rows, 16, rows_range, &j);
    free(xsum);
    return true;
}

bool qmat_mul(const qmat *w, const float *x, int T, float *y)
{
    static const qmat_kernels *best; /* decided once; a benign race (same value) */
    if (!best) best = qmat_kernels_best();
    return qmat_mul_with(best, w, x, T, y);
}
