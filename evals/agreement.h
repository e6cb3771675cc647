/* A domain's quality numbers for a candidate model against a reference, on the same windows:
 * perplexity of both under the protocol of evals/perplexity.h, and per scored position the
 * KL divergence KL(reference || candidate) of the next-token distributions and whether their
 * most likely tokens agree (top-1 agreement). */
#ifndef SMELT_EVAL_AGREEMENT_H
#define SMELT_EVAL_AGREEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "evals/perplexity.h"
#include "runtime/llm.h"

typedef struct {
    int64_t windows, windows_total, tokens_scored;
    double mean_nll, ppl;         /* candidate */
    double ref_mean_nll, ref_ppl; /* reference, same windows (0 without a reference) */
    double kl;                    /* mean KL(reference || candidate) in nats a position */
    double top1;                  /* share of positions whose argmax agrees */
} agree_result;

/* Per-window numbers, for cascades (evals/cascade.h): NLL sums of both models, the candidate's
 * mean max probability and mean entropy (nats) over the window's scored positions, and how many
 * of them agree with the reference's argmax. */
typedef struct {
    double nll, ref_nll, max_prob, entropy;
    int agree;
} agree_window;

/* Scores the windows of `window` tokens in ids (stride = window, the partial tail dropped). With
 * max_windows > 0 and fewer windows than the stream holds, window i of the max_windows is stream
 * window floor(i * total / max_windows), spread evenly. ref may be NULL (candidate perplexity only)
 * or the candidate itself (its logits are reused: KL 0, top-1 1). Both engines need the same
 * vocabulary. */
smelt_err *agree_score(llm_engine *cand, llm_engine *ref, const int32_t *ids, size_t n_ids, int window, int max_windows, ppl_progress_fn progress,
                       void *ctx, agree_result *out);
/* The same, also filling *windows (malloc'd, out->windows entries; caller frees) when not NULL. */
smelt_err *agree_score_windows(llm_engine *cand, llm_engine *ref, const int32_t *ids, size_t n_ids, int window, int max_windows, ppl_progress_fn progress,
                               void *ctx, agree_result *out, agree_window **windows);

#endif
