/* Perplexity: windows scored a batch at a time, each window a fresh sequence, so the engine runs
 * several windows' tokens through one sgemm per projection. */
#define _GNU_SOURCE /* memmem */
#include "evals/perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DOC_SEP "\n\x1e\n"
/* Windows a forward pass: enough rows for sgemm to run near its peak, logits still small. */
#define WINDOWS_PER_BATCH 4

smelt_err *ppl_tokens_from_text(const smelt_tokenizer *t, const char *text, size_t len, int32_t eos_id, int32_t **ids, size_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    int32_t *all = NULL;
    size_t n = 0, cap = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *sep = memmem(p, (size_t)(end - p), DOC_SEP, 3);
        const char *doc_end = sep ? sep : end;
        int32_t *doc;
        size_t nd;
        smelt_err *err = smelt_tokenizer_encode(t, p, (size_t)(doc_end - p), &doc, &nd);
        if (err) {
            free(all);
            return err;
        }
        if (n + nd + 1 > cap) {
            size_t nc = (n + nd + 1) * 2;
            int32_t *g = realloc(all, nc * sizeof *g);
            if (!g) {
                free(doc);
                free(all);
                return SMELT_ERR(SMELT_E_NOMEM, "out of memory");
            }
            all = g;
            cap = nc;
        }
        memcpy(all + n, doc, nd * sizeof *doc);
        n += nd;
        all[n++] = eos_id;
        free(doc);
        p = sep ? sep + 3 : end;
    }
    *ids = all;
    *n_ids = n;
    return NULL;
}

/* -log softmax(row)[target], in double */
static double nll_of(const float *row, int vocab, int target)
{
    float mx = row[0];
    for (int i = 1; i < vocab; i++)
        if (row[i] > mx) mx = row[i];
    double sum = 0;
    for (int i = 0; i < vocab; i++) sum += exp((double)row[i] - mx);
    return log(sum) + mx - row[target];
}

smelt_err *ppl_evaluate(llm_engine *e, const int32_t *ids, size_t n_ids, int window, ppl_progress_fn progress, void *ctx, ppl_result *out)
{
    memset(out, 0, sizeof *out);
    const smelt_llm_config *c = llm_engine_config(e);
    if (window < 2 || window > c->max_pos)
        return SMELT_ERR(SMELT_E_INVALID, "window %d, expected 2 to the model's context of %d tokens", window, c->max_pos);
    int64_t n_windows = (int64_t)(n_ids / (size_t)window);
    if (n_windows == 0) return SMELT_ERR(SMELT_E_INVALID, "%zu tokens, fewer than one window of %d", n_ids, window);
    llm_seq *seqs[WINDOWS_PER_BATCH] = {0};
    float *logits = malloc((size_t)WINDOWS_PER_BATCH * window * c->vocab_size * sizeof *logits);
    smelt_err *err = logits ? NULL : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    for (int i = 0; !err && i < WINDOWS_PER_BATCH; i++) err = llm_seq_new(e, &seqs[i]);
    double total = 0;
    for (int64_t w0 = 0; !err && w0 < n_windows; w0 += WINDOWS_PER_BATCH) {
        int nb = (int)(n_windows - w0 < WINDOWS_PER_BATCH ? n_windows - w0 : WINDOWS_PER_BATCH);
        llm_batch_item items[WINDOWS_PER_BATCH];
        for (int b = 0; b < nb; b++) {
            llm_seq_truncate(seqs[b], 0);
            items[b] = (llm_batch_item){seqs[b], ids + (w0 + b) * window, window, true};
        }
        err = llm_forward(e, items, nb, logits);
        for (int b = 0; !err && b < nb; b++) {
            const int32_t *w = items[b].tokens;
            for (int t = 0; t + 1 < window; t++) total += nll_of(logits + ((size_t)b * window + t) * c->vocab_size, c->vocab_size, w[t + 1]);
        }
        if (!err && progress) progress(ctx, w0 + nb, n_windows);
    }
    for (int i = 0; i < WINDOWS_PER_BATCH; i++) llm_seq_free(seqs[i]);
    free(logits);
    if (err) return err;
    out->windows = n_windows;
    out->tokens_scored = n_windows * (window - 1);
    out->mean_nll = total / (double)out->tokens_scored;
    out->ppl = exp(out->mean_nll);
    return NULL;
}
