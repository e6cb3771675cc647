/* Shared by the benchmark programs (one translation unit each, so static functions in a header):
 * min/median timing, the memory-bandwidth roofline (threaded read-only sum and STREAM triad over
 * buffers far larger than the caches), token streams, and batch decode timing through llm_forward. */
#ifndef SMELT_BENCH_UTIL_H
#define SMELT_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/threads.h"
#include "runtime/llm.h"

static const char *bench_name = "bench";

#define MAX_RUNS 32

static inline int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts t[0..n) and returns the median; t[0] is then the minimum. */
static inline double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return t[n / 2];
}

static inline void die(smelt_err *err)
{
    if (!err) return;
    fprintf(stderr, "%s: %s\n", bench_name, smelt_err_msg(err));
    exit(1);
}

/* ---- memory bandwidth ---- */

#define BW_CHUNK (1 << 17) /* uint64 words a task: 1 MiB */

typedef struct {
    uint64_t *a;
    double *b, *c, *d;
    int64_t n; /* words */
    uint64_t *sums;
} bw_ctx;

static inline void bw_init(void *p, int64_t begin, int64_t end)
{
    bw_ctx *x = p;
    for (int64_t k = begin; k < end; k++)
        for (int64_t i = k * BW_CHUNK; i < (k + 1) * BW_CHUNK && i < x->n; i++) {
            x->a[i] = (uint64_t)i;
            x->b[i] = 1.0, x->c[i] = 2.0, x->d[i] = 0;
        }
}

static inline void bw_sum(void *p, int64_t begin, int64_t end)
{
    bw_ctx *x = p;
    for (int64_t k = begin; k < end; k++) {
        int64_t i0 = k * BW_CHUNK, i1 = i0 + BW_CHUNK < x->n ? i0 + BW_CHUNK : x->n;
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const uint64_t *a = x->a;
        for (int64_t i = i0; i + 4 <= i1; i += 4) s0 += a[i], s1 += a[i + 1], s2 += a[i + 2], s3 += a[i + 3];
        x->sums[k] = s0 + s1 + s2 + s3;
    }
}

static inline void bw_triad(void *p, int64_t begin, int64_t end)
{
    bw_ctx *x = p;
    for (int64_t k = begin; k < end; k++) {
        int64_t i1 = (k + 1) * BW_CHUNK < x->n ? (k + 1) * BW_CHUNK : x->n;
        for (int64_t i = k * BW_CHUNK; i < i1; i++) x->d[i] = x->b[i] + 3.0 * x->c[i];
    }
}

/* Buffers of `mib` MiB each for bw_pass, first touched on the threads that read them. */
static inline bw_ctx bw_open(int mib)
{
    bw_ctx x = {.n = (int64_t)mib << 17};
    int64_t chunks = (x.n + BW_CHUNK - 1) / BW_CHUNK;
    x.a = malloc((size_t)x.n * 8), x.b = malloc((size_t)x.n * 8), x.c = malloc((size_t)x.n * 8), x.d = malloc((size_t)x.n * 8);
    x.sums = calloc((size_t)chunks, sizeof *x.sums);
    if (!x.a || !x.b || !x.c || !x.d || !x.sums) die(SMELT_ERR(SMELT_E_NOMEM, "bandwidth buffers of %d MiB", mib));
    smelt_parallel_for(chunks, 1, bw_init, &x);
    return x;
}

static inline void bw_close(bw_ctx *x) { free(x->a), free(x->b), free(x->c), free(x->d), free(x->sums); }

/* One read-only pass and one triad pass (GB/s); returns the larger, the roofline. */
static inline double bw_pass(bw_ctx *x, double *read_gbs, double *triad_gbs)
{
    int64_t chunks = (x->n + BW_CHUNK - 1) / BW_CHUNK;
    double t0 = smelt_now();
    smelt_parallel_for(chunks, 1, bw_sum, x);
    double t1 = smelt_now();
    smelt_parallel_for(chunks, 1, bw_triad, x);
    double t2 = smelt_now();
    volatile uint64_t sink = x->sums[chunks - 1] + (uint64_t)x->d[x->n / 2];
    (void)sink;
    *read_gbs = (double)x->n * 8 / (t1 - t0) / 1e9;
    *triad_gbs = (double)x->n * 8 * 3 / (t2 - t1) / 1e9; /* STREAM's count: 2 reads + 1 write */
    return *read_gbs > *triad_gbs ? *read_gbs : *triad_gbs;
}

/* Best read-only and triad bandwidth (GB/s) over `runs` passes of buffers of `mib` MiB each. */
static inline void bandwidth(int runs, int mib, double *read_gbs, double *triad_gbs)
{
    bw_ctx x = bw_open(mib);
    *read_gbs = *triad_gbs = 0;
    for (int r = 0; r < runs; r++) {
        double rd, tr;
        bw_pass(&x, &rd, &tr);
        *read_gbs = rd > *read_gbs ? rd : *read_gbs;
        *triad_gbs = tr > *triad_gbs ? tr : *triad_gbs;
    }
    bw_close(&x);
}

static inline void tokens(int32_t *tok, int n, int vocab, int salt)
{
    for (int t = 0; t < n; t++) tok[t] = (int32_t)(((int64_t)t * 7919 + salt * 104729 + 13) % vocab);
}

static inline double bench_decode(llm_engine *e, const char *label, int B, int steps, int runs)
{
    const smelt_llm_config *c = llm_engine_config(e);
    enum { PROMPT = 16 };
    float *logits = malloc((size_t)B * c->vocab_size * sizeof *logits);
    int32_t prompt[PROMPT * 16], *next = malloc((size_t)B * sizeof *next);
    llm_seq **s = calloc((size_t)B, sizeof *s);
    llm_batch_item *it = calloc((size_t)B, sizeof *it);
    double t[MAX_RUNS];
    for (int r = -1; r < runs; r++) {
        for (int b = 0; b < B; b++) {
            die(llm_seq_new(e, &s[b]));
            tokens(prompt + PROMPT * (b % 16), PROMPT, c->vocab_size, b + 1);
            it[b] = (llm_batch_item){s[b], prompt + PROMPT * (b % 16), PROMPT, false};
        }
        die(llm_forward(e, it, B, logits));
        double t0 = smelt_now();
        for (int k = 0; k < steps; k++) {
            for (int b = 0; b < B; b++) {
                next[b] = (int32_t)((k * 31 + b * 17 + 5) % c->vocab_size);
                it[b] = (llm_batch_item){s[b], &next[b], 1, false};
            }
            die(llm_forward(e, it, B, logits));
        }
        double dt = smelt_now() - t0;
        if (r >= 0) t[r] = dt;
        for (int b = 0; b < B; b++) llm_seq_free(s[b]);
    }
    double med = median(t, runs);
    printf("decode %-26s batch %2d: step min %7.2f ms  median %7.2f ms  %8.1f tok/s (median; best %.1f)\n", label, B, t[0] / steps * 1e3, med / steps * 1e3,
           B * steps / med, B * steps / t[0]);
    free(logits), free(next), free(s), free(it);
    return B * steps / med;
}

#endif
