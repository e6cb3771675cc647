/* A suite's quality measurements for one candidate: every domain's perplexity and agreement with
 * the reference (evals/agreement.h) and every canary (evals/canary.h), as the result JSON's
 * "domains" and "canaries" members (docs/results.md). Progress is drawn on a terminal. */
#ifndef SMELT_EVAL_QUALITY_H
#define SMELT_EVAL_QUALITY_H

#include <jansson.h>

#include "evals/suite.h"
#include "formats/tokenizer.h"
#include "runtime/llm.h"

typedef struct {
    llm_engine *engine;
    const smelt_tokenizer *tok;
    int32_t eos_id;
} eval_model;

/* ref may be NULL (perplexity only) or share cand's engine (the candidate is the reference).
 * *domains: {"NAME": {...}}, *canaries: [{...}] (caller decrefs both). */
smelt_err *quality_run(const eval_suite *s, const eval_model *cand, const eval_model *ref, json_t **domains, json_t **canaries);

#endif
