#include "evals/cost.h"
#include <stdlib.h>
struct hardware_profile { int x; };
smelt_err *hardware_load(const char *path, hardware_profile **out) { *out = NULL; return SMELT_ERR(SMELT_E_UNSUPPORTED, "%s: not yet", path); }
void hardware_free(hardware_profile *h) { (void)h; }
smelt_err *cost_run(const hardware_profile *h, const workload_profile *w, const json_t *replay, json_t **out) { (void)h; (void)w; (void)replay; *out = NULL; return NULL; }
