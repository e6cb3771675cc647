/* Candidate and reference run on the same batch of windows; each scored position's two logit rows
 * are reduced to NLLs, KL and an argmax comparison on the thread pool, then summed in position
 * order in double precision so the numbers do not depend on the thread count. */
#include "evals/agreement.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"

/* As in evals/perplexity.c: rows enough for sgemm to run near peak, logits still small. */
#define WINDOWS_PER_BATCH 4

typedef struct {
    const float *cand, *ref; /* [rows, vocab] */
    const int32_t *targets;  /* [rows] */
    int vocab;
    double *nll, *ref_nll, *kl; /* [rows] */
    uint8_t *agree;
    double *max_prob, *entropy; /* [rows], NULL unless per-window numbers are wanted */
} rows_job;

/* log-sum-exp of a row and its argmax */
static double lse_argmax(const float *row, int vocab, int *argmax)
{
    int am = 0;
    for (int i = 1; i < vocab; i++)
        if (row[i] > row[am]) am = i;
    double mx = row[am], sum = 0;
    for (int i = 0; i < vocab; i++) sum += exp((double)row[i] - mx);
    *argmax = am;
    return log(sum) + mx;
}

static void score_rows(void *ctx, int64_t begin, int64_t end)
{
    rows_job *j = ctx;
    for (int64_t r = begin; r < end; r++) {
        const float *c = j->cand + (size_t)r * j->vocab;
        int ac;
        double lc = lse_argmax(c, j->vocab, &ac);
        j->nll[r] = lc - c[j->targets[r]];
        if (j->max_prob) {
            double h = 0;
            for (int i = 0; i < j->vocab; i++) {
                double lp = (double)c[i] - lc;
                h -= exp(lp) * lp;
            }
            j->max_prob[r] = exp((double)c[ac] - lc);
            j->entropy[r] = h;
        }
        if (!j->ref) continue;
        const float *f = j->ref + (size_t)r * j->vocab;
        int af;
        double lf = lse_argmax(f, j->vocab, &af);
        j->ref_nll[r] = lf - f[j->targets[r]];
        double kl = 0;
        for (int i = 0; i < j->vocab; i++) {
            double lp = (double)f[i] - lf, lq = (double)c[i] - lc;
            kl += exp(lp) * (lp - lq);
        }
        j->kl[r] = kl > 0 ? kl : 0; /* rounding can leave -1e-17 for identical rows */
        j->agree[r] = ac == af;
    }
}

smelt_err *agree_score(llm_engine *cand, llm_engine *ref, const int32_t *ids, size_t n_ids, int window, int max_windows, ppl_progress_fn progress,
                       void *ctx, agree_result *out)
{
    return agree_score_windows(cand, ref, ids, n_ids, window, max_windows, progress, ctx, out, NULL);
}

smelt_err *agree_score_windows(llm_engine *cand, llm_engine *ref, const int32_t *ids, size_t n_ids, int window, int max_windows, ppl_progress_fn progress,
                               void *ctx, agree_result *out, agree_window **windows)
{
    if (windows) *windows = NULL;
    memset(out, 0, sizeof *out);
    const smelt_llm_config *c = llm_engine_config(cand);
    if (window < 2 || window > c->max_pos)
        return SMELT_ERR(SMELT_E_INVALID, "window %d, expected 2 to the model's context of %d tokens", window, c->max_pos);
    if (ref && ref != cand) {
        const smelt_llm_config *rc = llm_engine_config(ref);
        if (rc->vocab_size != c->vocab_size)
            return SMELT_ERR(SMELT_E_INVALID, "the reference has a vocabulary of %d tokens, the candidate %d: expected the same tokenizer", rc->vocab_size,
                             c->vocab_size);
        if (window > rc->max_pos) return SMELT_ERR(SMELT_E_INVALID, "window %d, expected at most the reference's context of %d tokens", window, rc->max_pos);
    }
    int64_t total = (int64_t)(n_ids / (size_t)window);
    if (total == 0) return SMELT_ERR(SMELT_E_INVALID, "%zu tokens, fewer than one window of %d", n_ids, window);
    int64_t n_win = max_windows > 0 && max_windows < total ? max_windows : total;
    bool two = ref && ref != cand;
    size_t vocab = (size_t)c->vocab_size, rows = (size_t)WINDOWS_PER_BATCH * window;
    float *lc = malloc(rows * vocab * sizeof *lc);
    float *lr = two ? malloc(rows * vocab * sizeof *lr) : NULL;
    double *stats = malloc(rows * 5 * sizeof *stats);
    agree_window *aw = windows ? calloc((size_t)n_win, sizeof *aw) : NULL;
    uint8_t *agree = malloc(rows);
    int32_t *targets = malloc(rows * sizeof *targets);
    llm_seq *sc[WINDOWS_PER_BATCH] = {0}, *sr[WINDOWS_PER_BATCH] = {0};
    smelt_err *err = lc && (!two || lr) && stats && agree && targets && (!windows || aw) ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; !err && i < WINDOWS_PER_BATCH; i++) {
        err = llm_seq_new(cand, &sc[i]);
        if (!err && two) err = llm_seq_new(ref, &sr[i]);
    }
    double nll = 0, ref_nll = 0, kl = 0;
    int64_t agreed = 0;
    for (int64_t w0 = 0; !err && w0 < n_win; w0 += WINDOWS_PER_BATCH) {
        int nb = (int)(n_win - w0 < WINDOWS_PER_BATCH ? n_win - w0 : WINDOWS_PER_BATCH);
        llm_batch_item ic[WINDOWS_PER_BATCH], ir[WINDOWS_PER_BATCH];
        for (int b = 0; b < nb; b++) {
            int64_t w = n_win == total ? w0 + b : (w0 + b) * total / n_win;
            const int32_t *tok = ids + w * window;
            llm_seq_truncate(sc[b], 0);
            ic[b] = (llm_batch_item){sc[b], tok, window, true};
            if (two) {
                llm_seq_truncate(sr[b], 0);
                ir[b] = (llm_batch_item){sr[b], tok, window, true};
            }
        }
        err = llm_forward(cand, ic, nb, lc);
        if (!err && two) err = llm_forward(ref, ir, nb, lr);
        if (err) break;
        /* Row b*window+t predicts token t+1 of window b; the last row of each window has no target
         * and is scored as a dummy (target 0) then skipped below. */
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < window; t++) targets[b * window + t] = t + 1 < window ? ic[b].tokens[t + 1] : 0;
        rows_job job = {lc,    two ? lr : NULL, targets, (int)vocab, stats, stats + rows, stats + 2 * rows, agree, aw ? stats + 3 * rows : NULL,
                        aw ? stats + 4 * rows : NULL};
        smelt_parallel_for((int64_t)nb * window, 16, score_rows, &job);
        for (int b = 0; b < nb; b++)
            for (int t = 0; t + 1 < window; t++) {
                size_t r = (size_t)b * window + t;
                if (aw) {
                    agree_window *x = &aw[w0 + b];
                    x->nll += stats[r];
                    x->ref_nll += ref && two ? stats[rows + r] : stats[r];
                    x->max_prob += stats[3 * rows + r] / (window - 1);
                    x->entropy += stats[4 * rows + r] / (window - 1);
                    x->agree += ref && two ? agree[r] : 1;
                }
                nll += stats[r];
                if (ref && !two) { /* the candidate is its own reference */
                    ref_nll += stats[r];
                    agreed++;
                } else if (ref) {
                    ref_nll += stats[rows + r];
                    kl += stats[2 * rows + r];
                    agreed += agree[r];
                }
            }
        if (progress) progress(ctx, w0 + nb, n_win);
    }
    for (int i = 0; i < WINDOWS_PER_BATCH; i++) {
        llm_seq_free(sc[i]);
        llm_seq_free(sr[i]);
    }
    free(lc);
    free(lr);
    free(stats);
    free(agree);
    free(targets);
    if (err) {
        free(aw);
        return err;
    }
    if (windows) *windows = aw;
    out->windows = n_win;
    out->windows_total = total;
    out->tokens_scored = n_win * (window - 1);
    double n = (double)out->tokens_scored;
    out->mean_nll = nll / n;
    out->ppl = exp(out->mean_nll);
    if (ref) {
        out->ref_mean_nll = ref_nll / n;
        out->ref_ppl = exp(out->ref_mean_nll);
        out->kl = kl / n;
        out->top1 = (double)agreed / n;
    }
    return NULL;
}
