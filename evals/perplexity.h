/* Perplexity under the project's protocol (data/README.md): a domain file's documents (split on
 * the line "\n\x1e\n") each encoded without special tokens and followed by the end-of-text id,
 * concatenated; windows of `window` tokens with stride `window`, the last partial window dropped;
 * the window-1 next-token predictions of every window scored; ppl = exp(mean NLL), the NLL summed
 * in double precision. */
#ifndef SMELT_PERPLEXITY_H
#define SMELT_PERPLEXITY_H

#include <stddef.h>
#include <stdint.h>

#include "formats/tokenizer.h"
#include "runtime/llm.h"

/* The token stream of a domain text file (len bytes). *ids is malloc'd; the caller frees it. */
smelt_err *ppl_tokens_from_text(const smelt_tokenizer *t, const char *text, size_t len, int32_t eos_id, int32_t **ids, size_t *n_ids);

typedef struct {
    int64_t windows, tokens_scored;
    double mean_nll, ppl;
} ppl_result;

/* Called after each batch of windows with how many are done of how many (may be NULL). */
typedef void (*ppl_progress_fn)(void *ctx, int64_t done, int64_t total);

/* Scores ids under the protocol. Fails when there is not one whole window. */
smelt_err *ppl_evaluate(llm_engine *e, const int32_t *ids, size_t n_ids, int window, ppl_progress_fn progress, void *ctx, ppl_result *out);

#endif
