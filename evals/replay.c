#include "evals/replay.h"
struct workload_profile { int x; };
smelt_err *workload_load(const char *path, workload_profile **out) { *out = NULL; return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: not yet", path); }
void workload_free(workload_profile *w) { (void)w; }
smelt_err *replay_run(const workload_profile *w, llm_engine *e, json_t **out) { (void)w; (void)e; *out = NULL; return NULL; }
