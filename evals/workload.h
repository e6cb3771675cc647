/* Workload profiles: the human-written JSON file describing the traffic an artifact must serve.
 *
 *   {"name": "chat",
 *    "prompt_tokens": {"dist": "normal", "mean": 300, "std": 60, "min": 32, "max": 600},
 *    "output_tokens": {"dist": "normal", "mean": 120, "std": 30, "min": 16, "max": 240},
 *    "arrival": {"process": "poisson", "rate_per_s": 4}   or {"process": "closed", "concurrency": 4},
 *    "requests": 24, "max_duration_s": 120,
 *    "batching": {"mode": "dynamic", "max_batch": 8, "max_wait_ms": 20},
 *    "fit_context": true, "memory_budget_gb": 8, "monthly_requests": 1000000, "seed": 1}
 *
 * Length distributions are "fixed" (mean), "uniform" (min..max) or "normal" (mean, std, clipped to
 * min..max). With fit_context, lengths that would pass the model's context are scaled down together
 * (prompt and output keep their ratio) so long-input workloads still run on small models; the
 * replay reports the factor. */
#ifndef SMELT_EVAL_WORKLOAD_H
#define SMELT_EVAL_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

typedef enum { DIST_FIXED, DIST_UNIFORM, DIST_NORMAL } length_dist;

typedef struct {
    length_dist dist;
    double mean, std;
    long min, max;
} length_spec;

typedef enum { ARRIVAL_POISSON, ARRIVAL_CLOSED } arrival_process;
typedef enum { BATCH_STATIC, BATCH_DYNAMIC } batching_mode;

typedef struct workload_profile {
    char *path, *name;
    length_spec prompt, output;
    arrival_process arrival;
    double rate_per_s; /* poisson */
    long concurrency;  /* closed loop */
    long requests;
    double max_duration_s; /* simulated seconds after which no new request is admitted */
    batching_mode batching;
    long max_batch;
    double max_wait_ms;
    bool fit_context;
    double memory_budget_gb;
    double monthly_requests;
    uint64_t seed;
} workload_profile;

smelt_err *workload_load(const char *path, workload_profile **out);
void workload_free(workload_profile *w);

/* One generated request: its arrival offset (poisson; closed-loop arrivals come from completions)
 * and lengths, already fitted to the context. */
typedef struct {
    double arrival_s;
    int n_prompt, n_output;
} workload_request;

/* Draws the profile's requests (deterministic for its seed). *scale is the fit_context factor (1
 * when nothing was scaled). Fails when a request cannot fit max_pos even scaled, or fit_context is
 * false and one does not fit. Caller frees *out. */
smelt_err *workload_requests(const workload_profile *w, int max_pos, workload_request **out, double *scale);

/* A deterministic 64-bit generator (splitmix64) for lengths, arrivals and prompt ids. */
uint64_t workload_rand(uint64_t *state);
/* Uniform in [0, 1). */
double workload_uniform(uint64_t *state);

#endif
