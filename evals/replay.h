/* Replaying a workload profile (evals/workload.h) against the engine.
 *
 * Requests arrive (Poisson or closed loop), wait in a queue, and are served in ragged batches by
 * llm_forward: with dynamic batching a request joins at the next step boundary when a slot of
 * max_batch is free (its prefill runs in the same forward pass as the others' decode steps) and
 * leaves as soon as it has its tokens; with static batching a batch is formed, run until its
 * longest request ends, and only then is the next batch formed. Either way an idle engine waits up
 * to max_wait_ms for the batch to fill. Prompts are random token ids, outputs greedy tokens forced
 * to the drawn length.
 *
 * The clock is simulated: it advances by the measured wall time of each forward pass and jumps over
 * idle gaps, so a replay takes as long as its compute (not its arrival span) and its latencies are
 * what the schedule would give on this machine. */
#ifndef SMELT_EVAL_REPLAY_H
#define SMELT_EVAL_REPLAY_H

#include <jansson.h>

#include "evals/workload.h"
#include "runtime/llm.h"

/* Runs the replay; *out is the result's "workload" member (docs/results.md). */
smelt_err *replay_run(const workload_profile *w, llm_engine *e, json_t **out);

#endif
