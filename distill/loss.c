/* Cross-entropy and distillation loss with their gradients (see loss.h). */
#define _POSIX_C_SOURCE 200809L
#include "distill/loss.h"

#include <math.h>
#include <stdlib.h>

#include "core/threads.h"
#include "runtime/graph/gx.h"

typedef struct {
    float *z;
    const int32_t *y;
    const float *t;
    int V;
    float alpha, temp, scale;
    double *ce, *kl; /* per row, summed in row order afterwards so results do not depend on threads */
} loss_job;

/* Reductions over a row of the vocabulary in LANES independent partial results combined in a
 * fixed order: no long dependency chain (a single double accumulator costs an add latency an
 * element), and the same result on every run. */
#define LANES 8

static float row_max(const float *x, int n)
{
    float m[LANES];
    for (int k = 0; k < LANES; k++) m[k] = -INFINITY;
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
    for (int k = 1; k < LANES; k++) m[0] = m[k] > m[0] ? m[k] : m[0];
    return m[0];
}

static double row_sum(const float *x, int n)
{
    double s[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) s[k] += x[i + k];
    for (; i < n; i++) s[0] += x[i];
    double t = 0;
    for (int k = 0; k < LANES; k++) t += s[k];
    return t;
}

/* e[i] = exp((x[i] - mx) * k) (vectorized) with mx = max x, and returns log sum_i e[i] + mx * k:
 * the log-sum-exp of x * k, with e left holding the unnormalized probabilities */
static double lse_exp(const float *x, int V, float k, float mx, float *e)
{
    for (int i = 0; i < V; i++) e[i] = (x[i] - mx) * k;
    gx_exp_f32(e, e, V);
    return (double)mx * k + log(row_sum(e, V));
}

static void loss_rows(void *ctx, int64_t begin, int64_t end)
{
    const loss_job *j = ctx;
    int V = j->V;
    float *ez = malloc((size_t)V * 4 * sizeof *ez), *ezT = ez + V, *etT = ez + 2 * V;
    if (!ez) abort(); /* four rows of the vocabulary */
    for (int64_t r = begin; r < end; r++) {
        float *z = j->z + (size_t)r * V;
        j->ce[r] = j->kl[r] = 0;
        if (j->y[r] < 0) {
            if (j->scale != 0)
                for (int i = 0; i < V; i++) z[i] = 0;
            continue;
        }
        float mz = row_max(z, V);
        double lz = lse_exp(z, V, 1.0f, mz, ez);
        j->ce[r] = lz - z[j->y[r]];
        const float *t = j->t ? j->t + (size_t)r * V : NULL;
        float invT = 1.0f / j->temp, izT = 0, itT = 0;
        if (t) {
            float mt = row_max(t, V);
            double lzT = lse_exp(z, V, invT, mz, ezT), ltT = lse_exp(t, V, invT, mt, etT);
            /* ezT / sum = softmax(z/T): the sums are exp(lse - max k) */
            izT = (float)exp((double)mz * invT - lzT);
            itT = (float)exp((double)mt * invT - ltT);
            float dl = (float)(lzT - ltT);
            /* the KL terms in the fourth row, summed like the others */
            float *terms = ez + 3 * (size_t)V;
            for (int i = 0; i < V; i++) terms[i] = etT[i] * itT * ((t[i] - z[i]) * invT + dl);
            j->kl[r] = row_sum(terms, V);
        }
        if (j->scale == 0) continue;
        float a = t ? j->alpha : 0.0f, wce = (1.0f - a) * j->scale, wkl = a * j->temp * j->scale;
        float iz = (float)exp((double)mz - lz);
        int y = j->y[r];
        if (t)
            for (int i = 0; i < V; i++) z[i] = wce * ez[i] * iz + wkl * (ezT[i] * izT - etT[i] * itT);
        else
            for (int i = 0; i < V; i++) z[i] = wce * ez[i] * iz;
        z[y] -= wce;
    }
    free(ez);
}

void tl_loss(float *logits, const int32_t *targets, const float *teacher, int N, int V, float alpha, float temp, float grad_scale, tl_loss_sums *out)
{
    double *ce = malloc((size_t)N * 2 * sizeof *ce);
    if (!ce) abort(); /* two doubles a token */
    loss_job j = {logits, targets, teacher, V, alpha, temp, grad_scale, ce, ce + N};
    smelt_parallel_for(N, 4, loss_rows, &j);
    for (int r = 0; r < N; r++) {
        if (targets[r] < 0) continue;
        out->ce += ce[r];
        out->kl += ce[N + r];
        out->n++;
    }
    free(ce);
}

double tl_loss_value(const tl_loss_sums *s, float alpha, float temp, int has_teacher)
{
    if (s->n == 0) return 0;
    if (!has_teacher) return s->ce / (double)s->n;
    return (1.0 - alpha) * s->ce / (double)s->n + (double)alpha * temp * temp * s->kl / (double)s->n;
}
