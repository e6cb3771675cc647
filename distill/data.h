/* Training batches from domain text files with mixture weights.
 *
 * Each file is tokenized as the perplexity protocol does (documents split on "\n\x1e\n", each
 * followed by the end-of-text id) and cut into windows of T+1 tokens at stride T (inputs are the
 * first T, targets the last T). A sample picks its domain by weight from a seeded generator, then
 * takes that domain's next window in a shuffled order (a fresh permutation, seeded by the seed, the
 * domain and the epoch, each time a domain's windows are used up). The loader's whole position is a
 * few integers (dd_state), which checkpoints save so a resumed run sees the same batches.
 */
#ifndef SMELT_DISTILL_DATA_H
#define SMELT_DISTILL_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "formats/tokenizer.h"

#define DD_MAX_DOMAINS 16

typedef struct {
    uint64_t rng;
    int64_t cursor[DD_MAX_DOMAINS], epoch[DD_MAX_DOMAINS];
} dd_state;

typedef struct dd_loader dd_loader;

/* specs: "FILE" or "FILE:WEIGHT" (weight > 0, default 1). Errors name the file: unreadable, no
 * whole window of T+1 tokens, a bad weight. */
smelt_err *dd_open(const char *const *specs, int n, const smelt_tokenizer *tok, int32_t eos, int T, uint64_t seed, dd_loader **out);
void dd_free(dd_loader *l);

/* The next B samples: ids[B*T] inputs and targets[B*T]. */
void dd_next(dd_loader *l, int B, int32_t *ids, int32_t *targets);

int dd_n_domains(const dd_loader *l);
/* Tokens in domain i's file. */
size_t dd_domain_tokens(const dd_loader *l, int i);

dd_state dd_get_state(const dd_loader *l);
void dd_set_state(dd_loader *l, const dd_state *s);

#endif
