/* AdamW, the learning-rate schedule and the global gradient norm (see adamw.h). */
#define _POSIX_C_SOURCE 200809L
#include "distill/adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"

smelt_err *adamw_init(adamw_state *s, size_t n)
{
    *s = (adamw_state){0};
    s->m = calloc(n ? n : 1, sizeof(float));
    s->v = calloc(n ? n : 1, sizeof(float));
    s->n = n;
    if (!s->m || !s->v) {
        adamw_free(s);
        return SMELT_ERR(SMELT_E_NOMEM, "out of memory for the optimizer state of %zu parameters", n);
    }
    return NULL;
}

void adamw_free(adamw_state *s)
{
    free(s->m);
    free(s->v);
    *s = (adamw_state){0};
}

float adamw_lr(const adamw_opts *o, int64_t step)
{
    if (step < o->warmup) return o->lr * (float)(step + 1) / (float)o->warmup;
    int64_t span = o->total_steps - o->warmup;
    double p = span > 0 ? (double)(step - o->warmup) / (double)span : 1.0;
    if (p > 1) p = 1;
    double k = o->min_lr_ratio + (1 - o->min_lr_ratio) * 0.5 * (1 + cos(M_PI * p));
    return (float)(o->lr * k);
}

/* Partial sums over fixed blocks of the buffer, added in block order: the same result whatever
 * the thread count. */
#define NORM_BLOCK 65536

typedef struct {
    const float *g;
    size_t n;
    double *part;
} norm_job;

static void norm_blocks(void *ctx, int64_t begin, int64_t end)
{
    const norm_job *j = ctx;
    for (int64_t b = begin; b < end; b++) {
        size_t lo = (size_t)b * NORM_BLOCK, hi = lo + NORM_BLOCK < j->n ? lo + NORM_BLOCK : j->n;
        double s = 0;
        for (size_t i = lo; i < hi; i++) s += (double)j->g[i] * j->g[i];
        j->part[b] = s;
    }
}

double tm_grad_norm(const tm_model *m)
{
    size_t nb = (m->n_params + NORM_BLOCK - 1) / NORM_BLOCK;
    double *part = calloc(nb ? nb : 1, sizeof *part);
    if (!part) abort(); /* one double per 64k parameters */
    norm_job j = {m->g, m->n_params, part};
    smelt_parallel_for((int64_t)nb, 1, norm_blocks, &j);
    double s = 0;
    for (size_t b = 0; b < nb; b++) s += part[b];
    free(part);
    return sqrt(s);
}

typedef struct {
    float *w, *g, *m, *v;
    float lr, b1, b2, eps, wd, mul, c1, c2;
} step_job;

static void step_range(void *ctx, int64_t begin, int64_t end)
{
    const step_job *j = ctx;
    for (int64_t i = begin; i < end; i++) {
        float g = j->g[i] * j->mul;
        j->m[i] = j->b1 * j->m[i] + (1 - j->b1) * g;
        j->v[i] = j->b2 * j->v[i] + (1 - j->b2) * g * g;
        float mh = j->m[i] / j->c1, vh = j->v[i] / j->c2;
        /* decoupled decay: shrinks the weight itself, not through the moments */
        j->w[i] -= j->lr * (mh / (sqrtf(vh) + j->eps) + j->wd * j->w[i]);
    }
}

void adamw_step(tm_model *m, adamw_state *s, const adamw_opts *o, float lr, float grad_mul)
{
    s->t++;
    float c1 = 1.0f - powf(o->beta1, (float)s->t), c2 = 1.0f - powf(o->beta2, (float)s->t);
    for (int i = 0; i < m->n_tensors; i++) {
        const tm_tensor *t = &m->tensors[i];
        step_job j = {m->w + t->off, m->g + t->off, s->m + t->off, s->v + t->off, lr, o->beta1, o->beta2, o->eps, t->decay ? o->weight_decay : 0.0f,
                      grad_mul, c1, c2};
        smelt_parallel_for((int64_t)t->numel, 1 << 15, step_range, &j);
    }
}
