/* Hardware profiles and the cost model (../shared/PRODUCT.md, "How cost is modelled").
 *
 *   {"name": "h100-cloud", "usd_per_hour": 4.0, "memory_gb": 80, "power_w": 700, "accelerators": 1,
 *    "throughput": {"source": "measured" | "roofline" | "fixed", ...},
 *    "min_instances": 1,
 *    "monthly": {"storage_usd": 20, "network_usd_per_gb": 0.09, "bytes_per_token": 4,
 *                "orchestration_usd": 150, "engineering_usd": 2000},
 *    "scenarios": {"best":     {"utilization": 0.8, "batching_efficiency": 1.0, "load_factor": 1.0},
 *                  "expected": {"utilization": 0.6, "batching_efficiency": 0.85, "load_factor": 1.0},
 *                  "burst":    {"utilization": 0.9, "batching_efficiency": 0.6, "load_factor": 2.0}}}
 *
 * Throughput: "measured" takes the replay's prefill and decode tokens/s (this machine); "roofline"
 * derives them from "peak_tflops", "memory_bandwidth_gbs" and "efficiency" with the artifact's
 * weight bytes and parameter count (prefill compute-bound, decode at the workload's max batch bound
 * by the slower of weight reads and compute); "fixed" gives "prefill_tok_s" and "decode_tok_s".
 *
 * Per scenario: effective tokens/s = throughput × utilization × batching efficiency;
 * $ per 1M input (output) tokens = $/hour ÷ (effective prefill (decode) tokens/s × 3600) × 1e6;
 * $ per request = nominal prompt and output lengths of the workload at those prices;
 * monthly requests = the workload's × load factor; accelerator hours = their token-seconds ÷ 3600,
 * at least min_instances × 730; monthly $ = hours × $/hour + storage + network (GB moved × $/GB)
 * + orchestration + engineering; $ per 1K requests = monthly $ ÷ monthly requests × 1000. */
#ifndef SMELT_EVAL_COST_H
#define SMELT_EVAL_COST_H

#include <jansson.h>

#include "evals/workload.h"

typedef struct hardware_profile hardware_profile;

smelt_err *hardware_load(const char *path, hardware_profile **out);
void hardware_free(hardware_profile *h);

/* Prices the replay (the result's "workload" member) of workload w for the artifact described by
 * artifact (the result's "artifact" member) on h; *out is the result's "cost" member. */
smelt_err *cost_run(const hardware_profile *h, const workload_profile *w, const json_t *replay, const json_t *artifact, json_t **out);

#endif
