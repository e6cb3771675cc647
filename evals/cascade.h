/* Cascades: a student artifact serves first and hands a request to the reference model when its
 * confidence is low. Evaluated offline on a suite's windows, each window standing for a request:
 * the window goes to the reference when the student's mean max probability over it is below the
 * threshold (confidence "max_prob") or its mean entropy is above it ("entropy"). For each threshold
 * of the sweep: the share routed to the reference, the cascade's perplexity (each window scored by
 * the model that served it), its increase over the reference alone, and top-1 agreement.
 * Blended cost (cost.h): the student always runs, so $ = student + share × reference. */
#ifndef SMELT_EVAL_CASCADE_H
#define SMELT_EVAL_CASCADE_H

#include <jansson.h>
#include <stdbool.h>

#include "evals/agreement.h"

typedef struct {
    bool entropy; /* else max probability */
    double *thresholds;
    int n_thresholds;
} cascade_spec;

/* {"confidence", "points": [{"threshold", "windows", "windows_routed", "fallback_share", "ppl",
 * "ppl_increase_pct", "top1"}]} for one domain's windows (window tokens each). */
json_t *cascade_sweep(const cascade_spec *c, const agree_window *w, int n_win, int window);



/* The sweep pooled over every domain of domains (the result's "domains") and priced: for each
 * threshold the pooled fallback share f and $ per 1M input and output tokens and per request of
 * student + f × reference, from the two "cost" members (expected scenario). */
json_t *cascade_blend(const json_t *domains, const json_t *student_cost, const json_t *ref_cost);
#endif
