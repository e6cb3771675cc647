/* A measured cost model of one forward pass, for the replay's simulated clock.
 *
 * Wall time on a shared machine swings with other processes' load (2x between runs here), so
 * latencies timed step by step are not reproducible. Instead the engine is timed on a few fixed
 * step shapes, each repeated and the minimum taken (interference only ever adds time), and a step
 * of the replay costs
 *     t = t0 + tp * prefill_tokens + td * decode_seqs + tc * (context summed over decode seqs)
 * with t0 the fixed cost of a pass, tp a prompt token, td a decoded token, tc a cached token read by
 * attention. The replay still runs every forward pass for real; only its clock uses the model. */
#ifndef SMELT_EVAL_STEPCOST_H
#define SMELT_EVAL_STEPCOST_H

#include <jansson.h>

#include "runtime/llm.h"

typedef struct {
    double t0, tp, td, tc; /* seconds */
    int reps;
} step_cost;

/* Calibrates on prompts of prompt_len tokens and decode batches of up to max_batch sequences. */
smelt_err *stepcost_calibrate(llm_engine *e, int prompt_len, int max_batch, step_cost *out);
double stepcost_predict(const step_cost *c, long prefill_tokens, long decode_seqs, long decode_context);
json_t *stepcost_json(const step_cost *c);

#endif
