/* Cross-entropy and distillation loss with their gradients (see loss.h). */
#define _POSIX_C_SOURCE 200809L
#include "distill/loss.h"

#include <math.h>
#include <stdlib.h>

#include "core/threads.h"

typedef struct {
    float *z;
    const int32_t *y;
    const float *t;
    int V;
    float alpha, temp, scale;
    double *ce, *kl; /* per row, summed in row order afterwards so results do not depend on threads */
} loss_job;

/* log-sum-exp of x[i] * k over V values, and the max */
static double lse(const float *x, int V, float k)
{
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = x[i] * k > mx ? x[i] * k : mx;
    double s = 0;
    for (int i = 0; i < V; i++) s += expf(x[i] * k - mx);
    return mx + log(s);
}

static void loss_rows(void *ctx, int64_t begin, int64_t end)
{
    const loss_job *j = ctx;
    int V = j->V;
    for (int64_t r = begin; r < end; r++) {
        float *z = j->z + (size_t)r * V;
        j->ce[r] = j->kl[r] = 0;
        if (j->y[r] < 0) {
            if (j->scale != 0)
                for (int i = 0; i < V; i++) z[i] = 0;
            continue;
        }
        double lz = lse(z, V, 1.0f);
        j->ce[r] = lz - z[j->y[r]];
        const float *t = j->t ? j->t + (size_t)r * V : NULL;
        double lzT = 0, ltT = 0;
        float invT = 1.0f / j->temp;
        if (t) {
            lzT = lse(z, V, invT);
            ltT = lse(t, V, invT);
            double kl = 0;
            for (int i = 0; i < V; i++) {
                double lpt = t[i] * invT - ltT, lps = z[i] * invT - lzT;
                kl += exp(lpt) * (lpt - lps);
            }
            j->kl[r] = kl;
        }
        if (j->scale == 0) continue;
        float a = t ? j->alpha : 0.0f, wce = (1.0f - a) * j->scale, wkl = a * j->temp * j->scale;
        for (int i = 0; i < V; i++) {
            float g = wce * expf((float)(z[i] - lz));
            if (t) g += wkl * (expf((float)(z[i] * invT - lzT)) - expf((float)(t[i] * invT - ltT)));
            z[i] = g;
        }
        z[j->y[r]] -= wce;
    }
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
