/* Choosing the next token from logits: greedy (argmax, ties to the lower id) or sampling with
 * temperature, top-k and top-p (nucleus), reproducible for a given seed. */
#ifndef SMELT_SAMPLER_H
#define SMELT_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    float temperature; /* 0 means greedy */
    int top_k;         /* 0 means no limit */
    float top_p;       /* 1 means no limit */
    uint64_t rng;      /* state, seeded by sampler_init */
    struct sampler_cand *cand; /* scratch: vocab (probability, id) pairs */
    int vocab;
} sampler;

/* Returns false on OOM. */
bool sampler_init(sampler *s, int vocab, float temperature, int top_k, float top_p, uint64_t seed);
void sampler_free(sampler *s);
int32_t sampler_next(sampler *s, const float *logits);
int32_t sampler_argmax(const float *logits, int vocab);

#endif
