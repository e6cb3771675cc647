/* Products with int8 activations: choosing the kernels by CPU features, quantizing x once a call
 * into the kernels' layout (block scales a lane, lane sums), and spreading weight rows over the
 * thread pool. */
#include "runtime/cpu/qmatmul_x8.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"

const qx_kernels *qx_kernels_best(void)
{
    static const qx_kernels *best; /* decided once; a benign race (same value) */
    if (best) return best;
    const char *force = getenv("SMELT_KERNELS");
    const qx_kernels *k = NULL;
    if (force && strcmp(force, "ref") == 0) k = qx_kernels_ref();
    else if (force && strcmp(force, "avx2") == 0) k = qx_kernels_avx2();
    if (!k) k = qx_kernels_vnni();
    if (!k) k = qx_kernels_avx2();
    if (!k) k = qx_kernels_ref();
    best = k;
    return k;
}

bool qmat_x8_supported(const qmat *w)
{
    if (w->bits == 8) return true;
    return w->bits == 4 && (w->group == 32 || w->group == 64 || (w->group > 0 && w->group % 128 == 0)) && w->cols % w->group == 0;
}

bool qmat_x8_wanted(void)
{
    const char *a = getenv("SMELT_QMAT_ACT");
    return !(a && strcmp(a, "f32") == 0);
}

void qx_layout(int cols_p, int bits, const int8_t *plain, int8_t *q, const float *s, float *lane, int32_t *nsum, int32_t *nsum8)
{
    int lanes = cols_p / (bits == 4 ? 8 : 4), lanes_block = QX_BLOCK / (bits == 4 ? 8 : 4);
    for (int i = 0; i < lanes; i++) lane[i] = s[i / lanes_block];
    if (bits != 4) return;
    for (int i = 0; i < lanes; i++) {
        int32_t sum = 0;
        for (int c = 8 * i; c < 8 * i + 8; c++) sum += plain[c];
        nsum[i] = -sum;
        nsum8[i] = -8 * sum;
    }
    for (int c0 = 0; c0 < cols_p; c0 += QX_CHUNK)
        for (int j = 0; j < QX_CHUNK / 2; j++) q[c0 + j] = plain[c0 + 2 * j], q[c0 + 64 + j] = plain[c0 + 2 * j + 1];
}

void qxvec_free(qxvec *v)
{
    free(v->buf);
    v->buf = NULL;
}

bool qxvec_make(qxvec *v, const qx_kernels *k, const float *x, int T, int cols, int bits)
{
    if (!k) k = qx_kernels_best();
    int cols_p = (cols + QX_CHUNK - 1) / QX_CHUNK * QX_CHUNK, nb = cols_p / QX_BLOCK, lanes = cols_p / (bits == 4 ? 8 : 4);
    size_t n_q = (size_t)T * cols_p, n_s = (size_t)T * nb, n_l = (size_t)T * lanes;
    /* floats and ints first (aligned by malloc), then the bytes, then a row of scratch */
    char *buf = malloc(n_s * sizeof(float) + n_l * sizeof(float) + 2 * n_l * sizeof(int32_t) + n_q + (size_t)cols_p);
    if (!buf) return false;
    *v = (qxvec){T, bits, cols, cols_p, lanes, NULL, NULL, NULL, NULL, NULL, buf};
    v->s = (float *)buf;
    v->lane = v->s + n_s;
    v->nsum = (int32_t *)(v->lane + n_l);
    v->nsum8 = v->nsum + n_l;
    v->q = (int8_t *)(v->nsum8 + n_l);
    int8_t *scratch = v->q + n_q;
    for (int t = 0; t < T; t++)
        k->quant(x + (size_t)t * cols, cols, cols_p, bits, v->q + (size_t)t * cols_p, v->s + (size_t)t * nb, v->lane + (size_t)t * lanes,
                 v->nsum + (size_t)t * lanes, v->nsum8 + (size_t)t * lanes, scratch);
    return true;
}

/* Rows are handed out in blocks from a shared counter rather than one fixed share a thread: on a
 * machine shared with other work a thread that starts late (or is preempted) takes fewer blocks
 * instead of holding the product up. A block is a stream the kernels' prefetches run ahead in; each
 * block a thread takes starts cold (its neighbour belongs to another thread), so blocks are long:
 * ROWS_BLOCK_BYTES of weights, less only where the matrix would give each thread fewer than
 * BLOCKS_PER_THREAD (measured, 2 threads, cold 4096 x 4096 and 11008 x 4096: 64 KiB blocks
 * 27-28 GB/s for int4, 256 KiB 30-32 GB/s; in the machine's faster phases 22 against 30; with
 * the decode layout, 2 to 16 blocks to the 4096 x 4096 int4 matrix all within the noise). */
#define ROWS_BLOCK_BYTES (256 << 10)
#define BLOCKS_PER_THREAD 4

typedef struct {
    const qx_kernels *k;
    const qmat *w;
    const qxvec *x;
    float *y;
    int blk, n_blk;
    atomic_int next;
} rows_job;

static void rows_blocks(void *ctx, int64_t begin, int64_t end)
{
    (void)begin, (void)end;
    rows_job *j = ctx;
    qx_rows_fn fn = j->w->bits == 8 ? j->k->rows8 : j->k->rows4;
    for (;;) {
        int b = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (b >= j->n_blk) return;
        int r0 = b * j->blk, r1 = r0 + j->blk < j->w->rows ? r0 + j->blk : j->w->rows;
        fn(j->w, r0, r1, j->x, j->y);
    }
}

bool qmat_mul_x8_with(const qx_kernels *k, const qmat *w, const float *x, int T, float *y)
{
    if (T > QMAT_MAX_T || !qmat_x8_supported(w)) return qmat_mul(w, x, T, y);
    if (!k) k = qx_kernels_best();
    qxvec v;
    if (!qxvec_make(&v, k, x, T, w->cols, w->bits)) return false;
    size_t row_bytes = w->bits == 8 ? (size_t)w->cols : (size_t)w->cols / 2;
    int threads = smelt_thread_count();
    size_t block_bytes = (size_t)w->rows * row_bytes / ((size_t)BLOCKS_PER_THREAD * threads);
    block_bytes = block_bytes < ROWS_BLOCK_BYTES ? block_bytes : ROWS_BLOCK_BYTES;
    int blk = (int)(block_bytes / row_bytes);
    blk = blk < 16 ? 16 : blk / QMAT_ILV_ROWS * QMAT_ILV_ROWS; /* whole groups of the decode layout */
    rows_job j = {k, w, &v, y, blk, (w->rows + blk - 1) / blk, 0};
    smelt_parallel_for(j.n_blk < threads ? j.n_blk : threads, 1, rows_blocks, &j);
    qxvec_free(&v);
    return true;
}

bool qmat_mul_x8(const qmat *w, const float *x, int T, float *y) { return qmat_mul_x8_with(NULL, w, x, T, y); }
