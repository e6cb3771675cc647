/* GPT-2's training kernels (see layers_gpt2.h). */
#define _POSIX_C_SOURCE 200809L
#include "distill/layers_gpt2.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "distill/layers.h"

typedef struct {
    float *out, *mean, *rstd, *dx;
    const float *x, *w, *b, *dout, *cmean, *crstd;
    int C;
    float eps;
} ln_job;

static void ln_fwd_rows(void *ctx, int64_t begin, int64_t end)
{
    const ln_job *j = ctx;
    int C = j->C;
    for (int64_t t = begin; t < end; t++) {
        const float *x = j->x + (size_t)t * C;
        float *o = j->out + (size_t)t * C, mean = 0, var = 0;
        for (int i = 0; i < C; i++) mean += x[i];
        mean /= (float)C;
        for (int i = 0; i < C; i++) var += (x[i] - mean) * (x[i] - mean);
        float r = 1.0f / sqrtf(var / (float)C + j->eps);
        j->mean[t] = mean;
        j->rstd[t] = r;
        for (int i = 0; i < C; i++) o[i] = (x[i] - mean) * r * j->w[i] + j->b[i];
    }
}

void tl_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N, int C, float eps)
{
    ln_job j = {.out = out, .mean = mean, .rstd = rstd, .x = x, .w = w, .b = b, .C = C, .eps = eps};
    smelt_parallel_for(N, 16, ln_fwd_rows, &j);
}

static void ln_bwd_rows(void *ctx, int64_t begin, int64_t end)
{
    const ln_job *j = ctx;
    int C = j->C;
    for (int64_t t = begin; t < end; t++) {
        const float *x = j->x + (size_t)t * C, *dy = j->dout + (size_t)t * C;
        float *dx = j->dx + (size_t)t * C, mean = j->cmean[t], r = j->crstd[t], s1 = 0, s2 = 0;
        /* with xhat = (x - mean) r and g = dy w: dx = r (g - mean(g) - xhat mean(g xhat)) */
        for (int i = 0; i < C; i++) {
            float g = dy[i] * j->w[i];
            s1 += g;
            s2 += g * (x[i] - mean) * r;
        }
        s1 /= (float)C;
        s2 /= (float)C;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - mean) * r;
            dx[i] += r * (dy[i] * j->w[i] - s1 - xh * s2);
        }
    }
}

/* acc[0:C] += dy xhat (the weight's gradient), acc[C:2C] += dy (the bias's) */
static void ln_param_row(const void *ctx, int64_t t, float *acc)
{
    const ln_job *j = ctx;
    int C = j->C;
    const float *x = j->x + (size_t)t * C, *dy = j->dout + (size_t)t * C;
    float mean = j->cmean[t], r = j->crstd[t];
    for (int i = 0; i < C; i++) {
        acc[i] += dy[i] * ((x[i] - mean) * r);
        acc[C + i] += dy[i];
    }
}

void tl_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w, const float *mean, const float *rstd, int N,
                           int C)
{
    ln_job j = {.dx = dx, .x = x, .w = w, .dout = dout, .cmean = mean, .crstd = rstd, .C = C};
    smelt_parallel_for(N, 16, ln_bwd_rows, &j);
    float *acc = calloc((size_t)2 * C, sizeof *acc);
    if (!acc) abort(); /* two rows of the width */
    tl_reduce_rows(acc, 2 * C, N, ln_param_row, &j);
    for (int i = 0; i < C; i++) dw[i] += acc[i], db[i] += acc[C + i];
    free(acc);
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

typedef struct {
    float *y;
    const float *x, *dy;
} gelu_job;

static void gelu_fwd_range(void *ctx, int64_t begin, int64_t end)
{
    const gelu_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        float v = j->x[i];
        j->y[i] = 0.5f * v * (1.0f + tanhf(GELU_K * (v + GELU_C * v * v * v)));
    }
}

void tl_gelu_forward(float *y, const float *x, int64_t n)
{
    gelu_job j = {y, x, NULL};
    smelt_parallel_for(n, 1 << 14, gelu_fwd_range, &j);
}

static void gelu_bwd_range(void *ctx, int64_t begin, int64_t end)
{
    const gelu_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        float v = j->x[i], th = tanhf(GELU_K * (v + GELU_C * v * v * v));
        /* d/dv of 0.5 v (1 + tanh(u)), u = k (v + c v^3): 0.5 (1 + tanh u) + 0.5 v (1 - tanh^2 u) k (1 + 3 c v^2) */
        float d = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_C * v * v);
        j->y[i] = j->dy[i] * d;
    }
}

void tl_gelu_backward(float *dx, const float *dy, const float *x, int64_t n)
{
    gelu_job j = {dx, x, dy};
    smelt_parallel_for(n, 1 << 14, gelu_bwd_range, &j);
}

typedef struct {
    float *x, *dwpe;
    const float *wpe, *dx;
    int B, T, C;
} pos_job;

static void pos_fwd_rows(void *ctx, int64_t begin, int64_t end)
{
    const pos_job *j = ctx;
    for (int64_t r = begin; r < end; r++) {
        float *x = j->x + (size_t)r * j->C;
        const float *p = j->wpe + (size_t)(r % j->T) * j->C;
        for (int i = 0; i < j->C; i++) x[i] += p[i];
    }
}

void tl_pos_forward(float *x, const float *wpe, int B, int T, int C)
{
    pos_job j = {.x = x, .wpe = wpe, .B = B, .T = T, .C = C};
    smelt_parallel_for((int64_t)B * T, 16, pos_fwd_rows, &j);
}

/* one position a task: its row of dwpe sums the B sequences in order, no two tasks share a row */
static void pos_bwd_rows(void *ctx, int64_t begin, int64_t end)
{
    const pos_job *j = ctx;
    for (int64_t t = begin; t < end; t++) {
        float *d = j->dwpe + (size_t)t * j->C;
        for (int b = 0; b < j->B; b++) {
            const float *s = j->dx + ((size_t)b * j->T + (size_t)t) * j->C;
            for (int i = 0; i < j->C; i++) d[i] += s[i];
        }
    }
}

void tl_pos_backward(float *dwpe, const float *dx, int B, int T, int C)
{
    pos_job j = {.dwpe = dwpe, .dx = dx, .B = B, .T = T, .C = C};
    smelt_parallel_for(T, 16, pos_bwd_rows, &j);
}
