/* Workload profiles and their replay against the engine (placeholder, filled below). */
#ifndef SMELT_EVAL_REPLAY_H
#define SMELT_EVAL_REPLAY_H
#include <jansson.h>
#include "runtime/llm.h"
typedef struct workload_profile workload_profile;
smelt_err *workload_load(const char *path, workload_profile **out);
void workload_free(workload_profile *w);
smelt_err *replay_run(const workload_profile *w, llm_engine *e, json_t **out);
#endif
