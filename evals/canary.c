/* Greedy decoding for canaries: one prefill, then one token a forward pass. */
#include "evals/canary.h"

#include <stdlib.h>

smelt_err *canary_generate(llm_engine *e, const int32_t *prompt, int n_prompt, int n_new, int32_t *out_ids)
{
    const smelt_llm_config *c = llm_engine_config(e);
    if (n_prompt < 1) return SMELT_ERR(SMELT_E_INVALID, "the prompt encodes to no tokens, expected at least one");
    if (n_prompt + n_new > c->max_pos)
        return SMELT_ERR(SMELT_E_INVALID, "%d prompt + %d new tokens exceed the model's context of %d", n_prompt, n_new, c->max_pos);
    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    llm_seq *s = NULL;
    smelt_err *err = logits ? llm_seq_new(e, &s) : SMELT_ERR(SMELT_E_NOMEM, "out of memory");
    const int32_t *feed = prompt;
    int n_feed = n_prompt;
    for (int i = 0; !err && i < n_new; i++) {
        llm_batch_item it = {s, feed, n_feed, false};
        err = llm_forward(e, &it, 1, logits);
        if (err) break;
        int am = 0;
        for (int v = 1; v < c->vocab_size; v++)
            if (logits[v] > logits[am]) am = v;
        out_ids[i] = am;
        feed = &out_ids[i];
        n_feed = 1;
    }
    llm_seq_free(s);
    free(logits);
    return err;
}

int canary_matching_prefix(const int32_t *got, const int32_t *want, int n)
{
    int k = 0;
    while (k < n && got[k] == want[k]) k++;
    return k;
}
