/* Canary prompts: the greedy continuation of a prompt compared token by token with the expected
 * ids (the reference model's greedy output), exact over the first N tokens. */
#ifndef SMELT_EVAL_CANARY_H
#define SMELT_EVAL_CANARY_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/llm.h"

/* Greedy-decodes n_new tokens after the prompt (end-of-text does not stop it: the expected ids were
 * made the same way), into out_ids[n_new]. */
smelt_err *canary_generate(llm_engine *e, const int32_t *prompt, int n_prompt, int n_new, int32_t *out_ids);

/* Leading tokens of got that equal want (up to n). */
int canary_matching_prefix(const int32_t *got, const int32_t *want, int n);

#endif
