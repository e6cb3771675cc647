/* The decoder's kernels besides the matrix products: norms, RoPE, activations and attention over
 * the KV cache. Plain C loops the compiler vectorizes; attention runs on the thread pool, one task
 * a (token, head) pair. Shapes are given as [rows, width], row-major. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "runtime/llm_internal.h"

/* Float projections: the output features are split across the thread pool, each thread running a
 * single-threaded sgemm (sgemv for one row of x) on its share, so one pool drives every core
 * (OpenBLAS's own threads are turned off by llm_engine_new: two pools on the same cores spend their
 * time yielding to each other). */
typedef struct {
    const llm_linear *l;
    const float *x;
    int T;
    float *y;
} linear_job;

static void linear_rows(void *ctx, int64_t begin, int64_t end)
{
    const linear_job *j = ctx;
    const llm_linear *l = j->l;
    int n = (int)(end - begin);
    const float *w = l->w + (size_t)begin * l->in;
    if (j->T == 1) cblas_sgemv(CblasRowMajor, CblasNoTrans, n, l->in, 1.0f, w, l->in, j->x, 1, 0.0f, j->y + begin, 1);
    else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->T, n, l->in, 1.0f, j->x, l->in, w, l->in, 0.0f, j->y + begin, l->out);
}

void llm_linear_apply(const llm_linear *l, const float *x, int T, float *y)
{
    if (l->a8) {
        if (!i8_mul(NULL, &l->a8m, x, T, y)) abort(); /* the quantized activations: T x in bytes */
    } else if (l->quantized) {
        /* the dequantization scratch (256 rows of weights) or the quantized x (T x in bytes) */
        if (!(l->x8 ? qmat_mul_x8 : qmat_mul)(&l->qm, x, T, y)) abort();
    } else {
        linear_job j = {l, x, T, y};
        /* blocks of at least 64 output features keep each sgemm efficient */
        smelt_parallel_for(l->out, 64, linear_rows, &j);
    }
    if (!l->b) return;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < l->out; i++) y[(size_t)t * l->out + i] += l->b[i];
}

/* x / sqrt(mean(x^2) + eps) * w, per row; rows spread over the thread pool */
typedef struct {
    float *out;
    const float *x, *w, *b;
    int dim;
    float eps;
} norm_args;

static void rmsnorm_rows(void *ctx, int64_t begin, int64_t end)
{
    const norm_args *a = ctx;
    for (int64_t t = begin; t < end; t++) {
        const float *r = a->x + (size_t)t * a->dim;
        float *o = a->out + (size_t)t * a->dim;
        float ss = 0;
        for (int i = 0; i < a->dim; i++) ss += r[i] * r[i];
        float inv = 1.0f / sqrtf(ss / (float)a->dim + a->eps);
        for (int i = 0; i < a->dim; i++) o[i] = a->w[i] * (r[i] * inv);
    }
}

void llm_rmsnorm(float *out, const float *x, const float *w, int T, int dim, float eps)
{
    norm_args a = {out, x, w, NULL, dim, eps};
    smelt_parallel_for(T, 8, rmsnorm_rows, &a);
}

/* (x - mean) / sqrt(var + eps) * w + b, per row, biased variance */
void llm_layernorm(float *out, const float *x, const float *w, const float *b, int T, int dim, float eps)
{
    for (int t = 0; t < T; t++) {
        const float *r = x + (size_t)t * dim;
        float *o = out + (size_t)t * dim;
        float mean = 0, var = 0;
        for (int i = 0; i < dim; i++) mean += r[i];
        mean /= (float)dim;
        for (int i = 0; i < dim; i++) var += (r[i] - mean) * (r[i] - mean);
        float inv = 1.0f / sqrtf(var / (float)dim + eps);
        for (int i = 0; i < dim; i++) o[i] = (r[i] - mean) * inv * w[i] + b[i];
    }
}

void llm_rope(float *x, int T, int n_heads, int head_dim, const int *pos, const float *inv_freq)
{
    int half = head_dim / 2;
    float *cs = malloc((size_t)head_dim * sizeof *cs);
    if (!cs) abort(); /* a few hundred bytes */
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < half; i++) {
            float a = (float)pos[t] * inv_freq[i];
            cs[i] = cosf(a);
            cs[half + i] = sinf(a);
        }
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * cs[i] - b * cs[half + i];
                v[i + half] = b * cs[i] + a * cs[half + i];
            }
        }
    }
    free(cs);
}

/* gate = silu(gate) * up */
typedef struct {
    float *g;
    const float *u;
} swiglu_args;

static void swiglu_range(void *ctx, int64_t begin, int64_t end)
{
    const swiglu_args *a = ctx;
    for (int64_t i = begin; i < end; i++) a->g[i] = a->g[i] / (1.0f + expf(-a->g[i])) * a->u[i];
}

void llm_swiglu(float *g, const float *u, size_t n)
{
    swiglu_args a = {g, u};
    smelt_parallel_for((int64_t)n, 1 << 14, swiglu_range, &a);
}

static void gelu_range(void *ctx, int64_t begin, int64_t end)
{
    float *x = ctx;
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int64_t i = begin; i < end; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

/* element by element, so the split cannot change a result: the same bits on any thread count */
void llm_gelu_tanh(float *x, size_t n) { smelt_parallel_for((int64_t)n, 1 << 14, gelu_range, x); }

/* Runs shorter than this attend token by token; longer ones through sgemm. */
#define ATTN_SGEMM_MIN 8
/* Query rows a sgemm block, bounding the score matrix to ATTN_QBLOCK x context floats. */
#define ATTN_QBLOCK 128

/* One query against an int8 cache (kv8): scores are q · k8 times the key's scale, the output sums
 * p · scale · v8 (the same values the dequantized prefill path sees). */
static void attend_kv8(const llm_attn_args *a, const llm_seq *s, const float *q, int kvh, int n, float *score, float *o)
{
    int hd = a->head_dim, nkv = a->n_kv_heads;
    size_t kvdim = (size_t)nkv * hd;
    const int8_t *K = s->k8[a->layer] + (size_t)kvh * hd, *V = s->v8[a->layer] + (size_t)kvh * hd;
    const float *ks = s->ks[a->layer] + kvh, *vs = s->vs[a->layer] + kvh;
    float scale = 1.0f / sqrtf((float)hd), mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        const int8_t *k = K + j * kvdim;
        float acc = 0;
        for (int d = 0; d < hd; d++) acc += q[d] * (float)k[d];
        score[j] = acc * ks[(size_t)j * nkv] * scale;
        if (score[j] > mx) mx = score[j];
    }
    float sum = 0;
    for (int j = 0; j < n; j++) sum += score[j] = expf(score[j] - mx);
    memset(o, 0, (size_t)hd * sizeof *o);
    for (int j = 0; j < n; j++) {
        const int8_t *v = V + j * kvdim;
        float p = score[j] / sum * vs[(size_t)j * nkv];
        for (int d = 0; d < hd; d++) o[d] += p * (float)v[d];
    }
}

static void attention_range(void *ctx, int64_t begin, int64_t end)
{
    const llm_attn_args *a = ctx;
    int hd = a->head_dim, kvdim = a->n_kv_heads * hd, group = a->n_heads / a->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    int max_len = 0;
    for (int64_t i = begin; i < end; i++) {
        int t = (int)(i / a->n_heads);
        if (a->pos[t] + 1 > max_len) max_len = a->pos[t] + 1;
    }
    float *score = malloc((size_t)max_len * sizeof *score);
    if (!score) abort(); /* bounded by the context length */
    for (int64_t i = begin; i < end; i++) {
        int t = (int)(i / a->n_heads), h = (int)(i % a->n_heads), kvh = h / group, n = a->pos[t] + 1;
        if (a->seqs[t] == NULL) continue; /* a token of a long run: done by sgemm */
        const float *q = a->q + ((size_t)t * a->n_heads + h) * hd;
        if (a->seqs[t]->k8) {
            attend_kv8(a, a->seqs[t], q, kvh, n, score, a->out + ((size_t)t * a->n_heads + h) * hd);
            continue;
        }
        const float *K = a->seqs[t]->k[a->layer] + (size_t)kvh * hd, *V = a->seqs[t]->v[a->layer] + (size_t)kvh * hd;
        float mx = -INFINITY;
        for (int j = 0; j < n; j++) {
            const float *k = K + (size_t)j * kvdim;
            float s = 0;
            for (int d = 0; d < hd; d++) s += q[d] * k[d];
            score[j] = s * scale;
            if (score[j] > mx) mx = score[j];
        }
        float sum = 0;
        for (int j = 0; j < n; j++) sum += score[j] = expf(score[j] - mx);
        float *o = a->out + ((size_t)t * a->n_heads + h) * hd;
        memset(o, 0, (size_t)hd * sizeof *o);
        for (int j = 0; j < n; j++) {
            const float *v = V + (size_t)j * kvdim;
            float p = score[j] / sum;
            for (int d = 0; d < hd; d++) o[d] += p * v[d];
        }
    }
    free(score);
}

/* Causal softmax of score rows in place: row r (query at position first_pos + r) sees keys
 * 0..first_pos + r; later keys get probability 0. */
typedef struct {
    float *s;
    int ctx, first_pos;
} softmax_args;

static void softmax_rows(void *ctx, int64_t begin, int64_t end)
{
    const softmax_args *a = ctx;
    for (int64_t r = begin; r < end; r++) {
        float *row = a->s + (size_t)r * a->ctx;
        int n = a->first_pos + (int)r + 1;
        float mx = -INFINITY, sum = 0;
        for (int j = 0; j < n; j++) mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j < n; j++) sum += row[j] = expf(row[j] - mx);
        float inv = 1.0f / sum;
        for (int j = 0; j < n; j++) row[j] *= inv;
        for (int j = n; j < a->ctx; j++) row[j] = 0;
    }
}

/* One head of one long run: S = Q K^T / sqrt(d), causal softmax, O = P V, a block of query rows at
 * a time. Q and O rows are n_heads*head_dim apart, K and V rows kv_dim apart. */
static void attention_sgemm(const llm_attn_args *a, const llm_attn_seg *g, int h, float *S, float *KV)
{
    int hd = a->head_dim, qd = a->n_heads * hd, kvdim = a->n_kv_heads * hd, kvh = h / (a->n_heads / a->n_kv_heads);
    const float *K, *V;
    if (g->seq->k8) {
        /* kv8: the head's keys and values up to the run's last token, dequantized into KV */
        int n = g->pos0 + g->n;
        llm_kv8_dequant_head(g->seq->k8[a->layer], g->seq->ks[a->layer], n, a->n_kv_heads, hd, kvh, KV);
        llm_kv8_dequant_head(g->seq->v8[a->layer], g->seq->vs[a->layer], n, a->n_kv_heads, hd, kvh, KV + (size_t)n * hd);
        K = KV, V = KV + (size_t)n * hd, kvdim = hd;
    } else {
        K = g->seq->k[a->layer] + (size_t)kvh * hd, V = g->seq->v[a->layer] + (size_t)kvh * hd;
    }
    for (int r0 = 0; r0 < g->n; r0 += ATTN_QBLOCK) {
        int rows = g->n - r0 < ATTN_QBLOCK ? g->n - r0 : ATTN_QBLOCK, ctx = g->pos0 + r0 + rows;
        const float *Q = a->q + (size_t)(g->row0 + r0) * qd + (size_t)h * hd;
        float *O = a->out + (size_t)(g->row0 + r0) * qd + (size_t)h * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, ctx, hd, 1.0f / sqrtf((float)hd), Q, qd, K, kvdim, 0.0f, S, ctx);
        softmax_args sa = {S, ctx, g->pos0 + r0};
        smelt_parallel_for(rows, 16, softmax_rows, &sa);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, ctx, 1.0f, S, ctx, V, kvdim, 0.0f, O, qd);
    }
}

/* The long runs' (segment, head) pairs, spread over the pool; each task has its own score block. */
typedef struct {
    const llm_attn_args *a;
    const int *seg_of; /* long segments, by index into a->segs */
} attn_sgemm_job;

static void attention_sgemm_range(void *ctx, int64_t begin, int64_t end)
{
    const attn_sgemm_job *j = ctx;
    const llm_attn_args *a = j->a;
    size_t cap = 0, kv_cap = 0;
    float *S = NULL, *KV = NULL;
    for (int64_t i = begin; i < end; i++) {
        const llm_attn_seg *g = &a->segs[j->seg_of[i / a->n_heads]];
        int block = g->n < ATTN_QBLOCK ? g->n : ATTN_QBLOCK;
        size_t need = (size_t)block * (size_t)(g->pos0 + g->n);
        if (need > cap) {
            free(S);
            S = malloc(need * sizeof *S);
            if (!S) abort(); /* a block of query rows by the context */
            cap = need;
        }
        size_t kv_need = g->seq->k8 ? 2 * (size_t)(g->pos0 + g->n) * a->head_dim : 0;
        if (kv_need > kv_cap) {
            free(KV);
            KV = malloc(kv_need * sizeof *KV);
            if (!KV) abort(); /* the context's keys and values for one head */
            kv_cap = kv_need;
        }
        attention_sgemm(a, g, (int)(i % a->n_heads), S, KV);
    }
    free(S);
    free(KV);
}

void llm_attention(const llm_attn_args *a, int T)
{
    /* long runs first, through sgemm; their tokens are then skipped by the per-token loop */
    llm_seq **seqs = malloc((size_t)T * sizeof *seqs);
    int *seg_of = malloc((size_t)a->n_segs * sizeof *seg_of);
    if (!seqs || !seg_of) abort(); /* T pointers */
    memcpy(seqs, a->seqs, (size_t)T * sizeof *seqs);
    int n_long = 0;
    bool any_short = false;
    for (int i = 0; i < a->n_segs; i++) {
        const llm_attn_seg *g = &a->segs[i];
        if (g->n < ATTN_SGEMM_MIN) {
            any_short = true;
            continue;
        }
        seg_of[n_long++] = i;
        for (int t = g->row0; t < g->row0 + g->n; t++) seqs[t] = NULL;
    }
    if (n_long) {
        attn_sgemm_job j = {a, seg_of};
        smelt_parallel_for((int64_t)n_long * a->n_heads, 1, attention_sgemm_range, &j);
    }
    if (any_short) {
        llm_attn_args rest = *a;
        rest.seqs = seqs;
        smelt_parallel_for((int64_t)T * a->n_heads, 1, attention_range, &rest);
    }
    free(seg_of);
    free(seqs);
}
