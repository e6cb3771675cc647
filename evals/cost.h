#ifndef SMELT_EVAL_COST_H
#define SMELT_EVAL_COST_H
#include <jansson.h>
#include "evals/replay.h"
#include "evals/workload.h"
typedef struct hardware_profile hardware_profile;
smelt_err *hardware_load(const char *path, hardware_profile **out);
void hardware_free(hardware_profile *h);
smelt_err *cost_run(const hardware_profile *h, const workload_profile *w, const json_t *replay, json_t **out);
#endif
