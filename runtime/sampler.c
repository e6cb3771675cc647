/* Token sampling. The random numbers come from splitmix64, so a seed gives the same tokens on
 * every machine. */
#include "core/rng.h"
#include "runtime/sampler.h"

#include <math.h>
#include <stdlib.h>

struct sampler_cand {
    float p;
    int32_t id;
};

bool sampler_init(sampler *s, int vocab, float temperature, int top_k, float top_p, uint64_t seed)
{
    *s = (sampler){temperature, top_k, top_p, seed, NULL, vocab};
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
    return s->cand != NULL;
}

void sampler_free(sampler *s)
{
    free(s->cand);
    s->cand = NULL;
}

int32_t sampler_argmax(const float *logits, int vocab)
{
    int32_t best = 0;
    for (int i = 1; i < vocab; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* most probable first; equal probabilities by id, so the order never depends on qsort */
static int by_prob_desc(const void *a, const void *b)
{
    const struct sampler_cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : 1;
}

int32_t sampler_next(sampler *s, const float *logits)
{
    if (s->temperature <= 0) return sampler_argmax(logits, s->vocab);
    float mx = logits[sampler_argmax(logits, s->vocab)];
    double sum = 0;
    for (int i = 0; i < s->vocab; i++) {
        s->cand[i] = (struct sampler_cand){expf((logits[i] - mx) / s->temperature), i};
        sum += s->cand[i].p;
    }
    for (int i = 0; i < s->vocab; i++) s->cand[i].p = (float)(s->cand[i].p / sum);
    qsort(s->cand, (size_t)s->vocab, sizeof *s->cand, by_prob_desc);
    /* keep the top k, then the smallest prefix whose mass reaches top_p */
    int n = s->top_k > 0 && s->top_k < s->vocab ? s->top_k : s->vocab;
    double mass = 0;
    for (int i = 0; i < n; i++) {
        mass += s->cand[i].p;
        if (s->top_p < 1 && mass >= s->top_p) {
            n = i + 1;
            break;
        }
    }
    double kept = 0;
    for (int i = 0; i < n; i++) kept += s->cand[i].p;
    double r = (double)(smelt_splitmix64(&s->rng) >> 11) / 9007199254740992.0 * kept, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->cand[i].p;
        if (r < acc) return s->cand[i].id;
    }
    return s->cand[n - 1].id;
}
